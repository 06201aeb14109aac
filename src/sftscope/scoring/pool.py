"""Run a check over many items in worker processes, each item under its own wall-clock limit.

Why not math-verify's timeout: it uses SIGALRM, which only works in the main thread
(Math-Verify#55). Why not `concurrent.futures.ProcessPoolExecutor`: it cannot cancel one running
item, so a single hung sympy call would stall the batch. Here each worker is a process we own:
a worker that overruns its item's deadline is killed and replaced, and the item becomes `timeout`.
The workers outlive a batch (`_Pool`): a sweep scores every commit as a batch of its own, and
starting workers cost ten times what scoring a commit does.
An exception becomes `error` with its message, a worker that dies mid-item becomes `error` too, and
the batch always returns one outcome per item, in order.

Workers are plain ``python -c`` subprocesses talking over a socket pair, not `multiprocessing`
processes: *fork* can deadlock a child of a parent that holds torch's thread pools, and *spawn* /
*forkserver* re-run the caller's main script in every worker (a script without an
``if __name__ == "__main__"`` guard would recurse). `workers=0` runs inline (no processes, no
timeout) for checks known to be cheap. `run_threaded` is for checks that enforce their own time
limit (subprocess sandboxes, HTTP calls).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any, Literal, cast

from sftscope.errors import SftscopeError

# Generous: a spawned worker re-imports the check's module (math-verify, reasoning-gym) first.
STARTUP_TIMEOUT_S = 120.0
_WORKER_CODE = "import sys; from sftscope.scoring.pool import worker_main; worker_main(int(sys.argv[1]))"


@dataclass(frozen=True)
class PoolOutcome:
    """What happened to one item."""

    status: Literal["ok", "timeout", "error"]
    """ok: the check returned `value`; timeout: it overran and its worker was killed; error: it raised."""
    value: Any = None
    """The check's return value when ok."""
    error: str | None = None
    """'ExceptionType: message' for errors, the limit for timeouts."""


def describe(exc: BaseException) -> str:
    """'ValueError: bad gold' - the type matters as much as the message when reading error rows."""
    return f"{type(exc).__name__}: {exc}"


def _call(fn: Callable[[Any], Any], item: Any) -> PoolOutcome:
    try:
        return PoolOutcome("ok", fn(item))
    # BaseException too: a SystemExit or RecursionError inside one check must stay that item's error.
    except BaseException as exc:
        return PoolOutcome("error", error=describe(exc))


def worker_main(fd: int) -> None:
    """A worker's life: load a check, run items, load another check..., until the parent closes the socket."""
    # Ctrl-C goes to the whole foreground group; the parent handles it and kills us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _exit_with_parent()
    conn = Connection(fd)
    fn: Callable[[Any], Any] | None = None
    try:
        while True:
            try:
                message = conn.recv()
            except EOFError:  # the parent closed the socket: shut down
                return
            if message[0] == "check":  # unpickling imports the check's module (slow for math-verify)
                fn = pickle.loads(message[1])
                conn.send("ready")
                continue
            index, item = message
            outcome = _call(cast(Callable[[Any], Any], fn), item)
            try:
                conn.send((index, outcome))
            except (BrokenPipeError, ConnectionResetError):
                raise  # the parent is gone (handled below), not a result that could not be pickled
            except Exception as exc:  # an unpicklable return value is the check's bug, not a crash
                conn.send((index, PoolOutcome("error", error=f"result could not be sent: {describe(exc)}")))
    except (BrokenPipeError, ConnectionResetError):
        # The parent closed the socket before reading us: its batch finished while we were starting
        # (a replacement for a killed worker) or stopped waiting. That is a shutdown, not an error.
        return


def _exit_with_parent() -> None:
    """A worker stuck in a hung check never reads EOF; this thread ends it if the parent is gone."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


class _Worker:
    def __init__(self) -> None:
        ours, theirs = socket.socketpair()
        # The child resolves imports exactly as we do, even when sftscope is not installed.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self.process = subprocess.Popen(
            [sys.executable, "-c", _WORKER_CODE, str(theirs.fileno())], pass_fds=[theirs.fileno()], env=env
        )
        # Close our copy of the child's end, so the child's death shows up as EOF on self.conn.
        theirs.close()
        self.conn = Connection(ours.detach())
        self.check: bytes | None = None
        self.loading = 0  # checks sent and not yet acknowledged ("ready")
        self.asked = time.monotonic()
        self.index: int | None = None
        self.deadline = 0.0

    def load(self, check: bytes) -> None:
        """Switch to another check (a pickled callable); the worker says "ready" once it is loaded."""
        self._send(("check", check))
        self.check, self.asked = check, time.monotonic()
        self.loading += 1

    @property
    def ready(self) -> bool:
        return self.loading == 0

    def give(self, index: int, item: Any, timeout_s: float) -> None:
        self.index = index
        self.deadline = time.monotonic() + timeout_s
        self._send((index, item))

    def _send(self, message: object) -> None:
        # A dead worker's socket reads EOF next, and `_Pool._receive` handles that.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.conn.send(message)

    def stop(self) -> None:
        self.conn.close()
        try:
            self.process.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        self.process.kill()
        self.process.wait()
        self.conn.close()


class _Pool:
    """Worker processes kept from one batch to the next. Starting one (a Python process importing
    the check's module, math-verify's sympy) costs seconds, far more than scoring a commit's rows,
    and the sweep scores every commit as its own batch. A worker is killed only when its item
    overruns or the batch is abandoned.
    """

    def __init__(self) -> None:
        self.workers: list[_Worker] = []
        self.owner = os.getpid()
        self.lock = threading.Lock()  # one batch at a time: the workers' sockets carry one conversation

    def run(
        self, fn: Callable[[Any], Any], items: Sequence[Any], *, timeout_s: float, workers: int
    ) -> list[PoolOutcome]:
        check = pickle.dumps(fn)
        with self.lock:
            if self.owner != os.getpid():  # a forked child must not talk to its parent's workers
                self.workers, self.owner = [], os.getpid()
            for extra in self.workers[workers:]:  # this call wants fewer
                extra.stop()
            del self.workers[workers:]
            want = min(workers, len(items))
            self.workers += [_Worker() for _ in range(want - len(self.workers))]
            try:
                return self._batch(check, items, timeout_s, want)
            except BaseException:
                # Ctrl-C or a worker that cannot start: workers may be mid-item, and their late
                # answers must not reach the next batch.
                self.close()
                raise

    def _batch(self, check: bytes, items: Sequence[Any], timeout_s: float, want: int) -> list[PoolOutcome]:
        # `pool[:want]` is taken afresh each time: `_replace` swaps a dead worker's slot in place.
        pool = self.workers
        for position, worker in enumerate(pool[:want]):
            if worker.process.poll() is not None:  # died since the last batch (OOM killer, a signal)
                worker.kill()
                self._replace(position, check)
            elif worker.check != check:
                worker.load(check)
        results: list[PoolOutcome | None] = [None] * len(items)
        pending = deque(range(len(items)))
        while pending or any(w.index is not None for w in pool[:want]):
            for worker in pool[:want]:
                if worker.ready and worker.index is None and pending:
                    index = pending.popleft()
                    worker.give(index, items[index], timeout_s)
            for conn in wait([w.conn for w in pool[:want]], timeout=_wait_time(pool[:want])):
                position = next(i for i, w in enumerate(pool) if w.conn is conn)
                self._receive(position, results, check)
            now = time.monotonic()
            for position, worker in enumerate(pool[:want]):
                if worker.index is not None and now >= worker.deadline:
                    results[worker.index] = PoolOutcome("timeout", error=f"check exceeded {timeout_s:g} s")
                    worker.kill()
                    self._replace(position, check)
                elif not worker.ready and now - worker.asked > STARTUP_TIMEOUT_S:
                    raise SftscopeError(f"a scoring worker did not start within {STARTUP_TIMEOUT_S:g} s")
        # Every slot is filled: the loop ends only when no item is pending or in flight.
        return cast(list[PoolOutcome], results)

    def _replace(self, position: int, check: bytes) -> None:
        self.workers[position] = _Worker()
        self.workers[position].load(check)

    def _receive(self, position: int, results: list[PoolOutcome | None], check: bytes) -> None:
        worker = self.workers[position]
        try:
            message = worker.conn.recv()
        except (EOFError, OSError):
            # The worker died: a crash in C code, os._exit, the OOM killer. Blame its item, replace it.
            try:
                code: int | None = worker.process.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                code = None
            worker.kill()
            if not worker.ready:
                raise SftscopeError(f"a scoring worker exited while starting (exit code {code})") from None
            if worker.index is not None:
                results[worker.index] = PoolOutcome("error", error=f"worker process died (exit code {code})")
            self._replace(position, check)
            return
        if message == "ready":
            worker.loading -= 1
            return
        index, outcome = message
        results[index] = outcome
        worker.index = None

    def close(self) -> None:
        """Stop every worker (they exit on EOF; a hung one is killed)."""
        for worker in self.workers:
            if worker.index is not None or not worker.ready:
                worker.kill()
            else:
                worker.stop()
        self.workers = []


_SHARED = _Pool()
atexit.register(_SHARED.close)


def run_checks(
    fn: Callable[[Any], Any], items: Sequence[Any], *, timeout_s: float, workers: int
) -> list[PoolOutcome]:
    """Apply `fn` to every item; one `PoolOutcome` per item, in order. Never raises for an item.

    `fn` and the items must be picklable (a module-level function, or a `functools.partial` of one).
    The worker processes stay up for the next call (see `_Pool`), and stop when this process exits.
    Raises `SftscopeError` only when a worker cannot start at all (a setup error, not an item's).
    """
    if workers <= 0:
        return [_call(fn, item) for item in items]
    return _SHARED.run(fn, items, timeout_s=timeout_s, workers=workers)


def _wait_time(pool: list[_Worker]) -> float:
    """Sleep until the earliest item deadline or startup limit; any message wakes us earlier."""
    limits = [w.deadline for w in pool if w.index is not None]
    limits += [w.asked + STARTUP_TIMEOUT_S for w in pool if not w.ready]
    return max(0.0, min(limits) - time.monotonic()) if limits else STARTUP_TIMEOUT_S


def run_threaded(fn: Callable[[Any], Any], items: Sequence[Any], *, workers: int) -> list[PoolOutcome]:
    """Apply `fn` in threads: for checks that bound their own time (they wait on a subprocess or a socket).

    Threads are enough there and cost nothing to start; the check's own limit is the timeout.
    """
    with ThreadPoolExecutor(max_workers=max(1, workers)) as executor:
        return list(executor.map(lambda item: _call(fn, item), items))
