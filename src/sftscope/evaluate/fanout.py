"""A data-parallel sweep: checkpoints spread over several backends (one vLLM engine per GPU lane).

Each lane takes the next checkpoint as soon as it is free, so a lane that drew the short early
checkpoints does not wait for one that drew the long late ones, and sweeps it with `run_sweep`. All
lanes write to one store, one call at a time; a lane that fails stops the others after their
current checkpoint, and an interrupt closes every backend (ending their workers) at once.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

from sftscope.evaluate.backends.base import Backend
from sftscope.evaluate.store import ResultsStore
from sftscope.evaluate.sweep import SweepStats, Task, run_sweep
from sftscope.evaluate.targets import Target


class _Locked:
    """The store, one call at a time: a DuckDB connection is not for concurrent use."""

    def __init__(self, store: ResultsStore) -> None:
        self._store = store
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._store, name)
        if not callable(value):
            return value

        def locked(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return value(*args, **kwargs)

        return locked


def run_sweep_lanes(
    targets: list[Target],
    tasks: list[Task],
    store: ResultsStore,
    backends: list[Backend],
    *,
    retry_errors: bool = False,
    show_progress: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> SweepStats:
    """`run_sweep` with the targets shared out over `backends`; the stats of all lanes together."""
    if len(backends) == 1:
        return run_sweep(
            targets,
            tasks,
            store,
            backends[0],
            retry_errors=retry_errors,
            show_progress=show_progress,
            log=log,
        )
    todo: queue.SimpleQueue[Target] = queue.SimpleQueue()
    for target in targets:
        todo.put(target)
    failed = threading.Event()
    shared: Any = _Locked(store)

    def lane(backend: Backend) -> list[SweepStats]:
        done = []
        while not failed.is_set():
            try:
                target = todo.get_nowait()
            except queue.Empty:
                break
            try:
                # One progress display at a time is all a terminal shows: lanes log instead.
                done.append(
                    run_sweep(
                        [target],
                        tasks,
                        shared,
                        backend,
                        retry_errors=retry_errors,
                        show_progress=False,
                        log=log,
                    )
                )
            except BaseException:
                failed.set()
                raise
            log(f"{target.run} step {target.step}: done on {backend.name} lane {backends.index(backend)}")
        return done

    pool = ThreadPoolExecutor(max_workers=len(backends), thread_name_prefix="sweep-lane")
    futures = [pool.submit(lane, backend) for backend in backends]
    try:
        wait(futures)
    except BaseException:  # Ctrl-C: end the engines so the lanes stop now, not after their checkpoint
        failed.set()
        for backend in backends:
            backend.close()
        raise
    finally:
        pool.shutdown(wait=True)
    lanes = [future.result() for future in futures]  # the first lane's failure is raised here
    return merge_stats(lanes)


def merge_stats(lanes: list[list[SweepStats]]) -> SweepStats:
    """The lanes' stats summed; `generate_s` is the busiest lane's, the wall time the lanes shared."""
    merged = SweepStats()
    for stats in (s for lane in lanes for s in lane):
        for entry in dataclasses.fields(SweepStats):
            ours, theirs = getattr(merged, entry.name), getattr(stats, entry.name)
            if isinstance(ours, dict):
                for key, value in theirs.items():
                    ours[key] = ours.get(key, 0) + value
            else:
                setattr(merged, entry.name, ours + theirs)
    merged.generate_s = max((sum(s.generate_s for s in lane) for lane in lanes), default=0.0)
    return merged
