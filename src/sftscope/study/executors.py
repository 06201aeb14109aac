"""Executors run stage jobs (one `sftscope` command each) and hand back futures.

- local: N worker threads, each waiting on one subprocess (so N jobs at once);
- ray: each job is a Ray task with declared `num_cpus` / `num_gpus`, on a cluster or a local one;
- slurm: each job is a SLURM job through submitit (optional dependency).

Every executor runs the same `run_job`, so a job behaves the same everywhere: output appended to its
log file, exit code returned. Jobs need the study directory on a filesystem shared with the driver.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sftscope.errors import SftscopeError
from sftscope.study.spec import AnyExecutorSpec, RayExecutorSpec, SlurmExecutorSpec


@dataclass(frozen=True)
class Job:
    """One stage command."""

    name: str
    """Unique job name, e.g. 'train:<cell id>'."""
    argv: list[str]
    """The command line."""
    log: Path
    """File receiving the command's stdout and stderr (appended: attempts stay readable)."""
    cpus: int = 1
    """CPUs to reserve (Ray, SLURM)."""
    gpus: int = 0
    """GPUs to reserve (Ray, SLURM)."""
    env: dict[str, str] = field(default_factory=dict)
    """Environment variables over the worker's own."""


@dataclass(frozen=True)
class JobResult:
    returncode: int
    seconds: float
    tail: str
    """The end of the log, to show why a job failed."""


def _die_with_parent() -> None:
    # A job must not outlive the study process that started it: after a kill of `study run`, a
    # resumed study would otherwise race an orphaned trainer writing into the same run directory.
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def run_job(job: Job) -> JobResult:
    """Run one job to completion in a subprocess; used by every executor."""
    job.log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    with job.log.open("ab") as log:
        log.write(f"\n$ {' '.join(job.argv)}\n".encode())
        log.flush()
        preexec = _die_with_parent if os.uname().sysname == "Linux" else None
        try:
            process = subprocess.Popen(
                job.argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **job.env},
                preexec_fn=preexec,
            )
        except OSError as exc:
            log.write(f"cannot start: {exc}\n".encode())
            return JobResult(127, time.monotonic() - start, str(exc))
        returncode = process.wait()
    return JobResult(returncode, time.monotonic() - start, log_tail(job.log))


def log_tail(path: Path, lines: int = 15) -> str:
    text = path.read_text(encoding="utf-8", errors="replace") if path.exists() else ""
    return "\n".join(text.splitlines()[-lines:])


class Executor(Protocol):
    """Starts jobs; the driver waits on the futures and decides what runs next."""

    def submit(self, job: Job) -> Future[JobResult]: ...

    def shutdown(self) -> None: ...


class LocalExecutor:
    """Jobs as subprocesses of this machine, `workers` at a time."""

    def __init__(self, workers: int, run: Any = run_job):
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="study-job")
        self._run = run

    def submit(self, job: Job) -> Future[JobResult]:
        return self._pool.submit(self._run, job)

    def shutdown(self) -> None:
        self._pool.shutdown(wait=True)


class RayExecutor:
    """Each job is a Ray task declaring its CPUs and GPUs; Ray places it on a node that has them."""

    def __init__(self, address: str | None = None):
        try:
            import ray
        except ImportError as exc:
            raise SftscopeError("the ray executor needs Ray: pip install 'ray[default]'") from exc
        self._ray = ray
        self._started = False
        if not ray.is_initialized():
            # log_to_driver=False: jobs write their own logs; Ray's echo would scramble the live view.
            ray.init(address=address, log_to_driver=False, include_dashboard=False)
            self._started = True
        self._task = ray.remote(run_job)

    def submit(self, job: Job) -> Future[JobResult]:
        task = self._task.options(num_cpus=job.cpus, num_gpus=job.gpus, max_retries=0, name=job.name)
        return task.remote(job).future()

    def shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()


class SlurmExecutor:
    """Each job is a SLURM job through submitit; a thread per job turns its result into a future."""

    def __init__(
        self,
        folder: Path,
        *,
        partition: str | None,
        timeout_min: int,
        extra: dict[str, Any],
        cluster: str | None = None,
        workers: int = 1,
    ):
        try:
            import submitit
        except ImportError as exc:
            raise SftscopeError("the slurm executor needs submitit: pip install submitit") from exc
        self._executor = submitit.AutoExecutor(folder=str(folder), cluster=cluster)
        self._common: dict[str, Any] = {"timeout_min": timeout_min}
        self._common.update({f"slurm_{key}": value for key, value in extra.items()})
        if partition:
            self._common["slurm_partition"] = partition
        self._waiters = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="study-slurm")

    def submit(self, job: Job) -> Future[JobResult]:
        self._executor.update_parameters(
            **self._common, name=job.name.replace(":", "-"), cpus_per_task=job.cpus, gpus_per_node=job.gpus
        )
        submitted = self._executor.submit(run_job, job)
        return self._waiters.submit(submitted.result)

    def shutdown(self) -> None:
        self._waiters.shutdown(wait=True)


def make_executor(spec: AnyExecutorSpec, *, slurm_folder: Path) -> Executor:
    """The executor of the spec's `executor:` section (with the command line's options applied)."""
    if isinstance(spec, RayExecutorSpec):
        return RayExecutor(spec.address)
    if isinstance(spec, SlurmExecutorSpec):
        return SlurmExecutor(
            slurm_folder,
            partition=spec.partition,
            timeout_min=spec.timeout_min,
            extra=spec.extra,
            workers=spec.workers,
        )
    return LocalExecutor(spec.workers)
