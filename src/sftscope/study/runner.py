"""`study run`: drive the job graph through an executor, resumably, with a live view; then report.

The driver is the only process that writes state files and the study store; jobs only write their own
outputs. A job runs once all its dependencies are done; a failed job blocks its dependents and the
rest of the grid goes on. Ready jobs start in priority order: sweeps first, so cells finish one after
another rather than all at the end; then the short data builds and conversions that unblock training;
then base sweeps and training.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import TypeAdapter, ValidationError
from rich.live import Live

from sftscope.config.specfile import validation_error
from sftscope.errors import SftscopeError
from sftscope.models.loading import gguf_source
from sftscope.outdir import claim, mark
from sftscope.progress import console
from sftscope.rundir import write_json_atomic
from sftscope.study import commands
from sftscope.study.bases import check_bases
from sftscope.study.cells import Cell, expand_cells
from sftscope.study.executors import Executor, Job, JobResult, make_executor
from sftscope.study.graph import Node, StudyGraph
from sftscope.study.live import StudyView, report_path
from sftscope.study.manifest import write_manifest
from sftscope.study.spec import AnyExecutorSpec, ExecutorSpec, StudySpec, load_study_spec
from sftscope.study.state import StudyDir, read_json, train_progress
from sftscope.study.stores import keep_runs

PRIORITY = {"eval": 0, "data": 1, "base": 1, "train": 2, "baseline": 2}


@dataclass
class StudyOutcome:
    """What `study run` leaves behind."""

    root: Path
    cells: list[Cell]
    failed: list[str] = field(default_factory=list)
    """Jobs that failed (their dependents were blocked)."""
    report: Path | None = None
    """The study report, when one was written."""


@contextmanager
def study_lock(study: StudyDir) -> Iterator[None]:
    """One `study run` per directory; the kernel drops the lock when the process dies, even by SIGKILL."""
    study.root.mkdir(parents=True, exist_ok=True)
    with study.lock.open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise SftscopeError(f"another `sftscope study run` is working in {study.root}") from exc
        yield


def is_locked(study: StudyDir) -> bool:
    """Whether a `study run` is working in this directory right now."""
    if not study.lock.exists():
        return False
    with study.lock.open("r") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        fcntl.flock(handle, fcntl.LOCK_UN)
    return False


def with_executor_options(
    spec: StudySpec, kind: str | None, workers: int | None, address: str | None
) -> StudySpec:
    """Command-line options win over the spec's executor section; another kind keeps only the options
    every executor has."""
    update = {
        k: v for k, v in {"kind": kind, "workers": workers, "address": address}.items() if v is not None
    }
    if not update:
        return spec
    keep = set(ExecutorSpec.model_fields) if kind not in (None, spec.executor.kind) else None
    values = {**spec.executor.model_dump(include=keep), **update}
    try:
        executor = TypeAdapter(AnyExecutorSpec).validate_python(values)
    except ValidationError as exc:
        raise validation_error("command line", None, exc, values=values) from exc
    return spec.model_copy(update={"executor": executor})


def write_runs(study: StudyDir, cells: list[Cell], done: set[str]) -> None:
    """runs.json: the analysis's run metadata, for the cells whose sweep is in the study store."""
    runs = {
        cell.id: {
            "condition": cell.condition.name,
            "base": cell.base.name,
            "capability": cell.base.capability,
            "preset": cell.preset.name,
            "seed": cell.seed,
            "blocks": list(cell.blocks),
            "run_dir": str(study.run_dir(cell.id)),
        }
        for cell in cells
        if f"eval:{cell.id}" in done
    }
    write_json_atomic(study.runs, runs, sort_keys=True)


def run_study(
    spec_path: str | Path,
    out: str | Path | None = None,
    *,
    executor: str | None = None,
    workers: int | None = None,
    address: str | None = None,
    executor_factory: Callable[[StudySpec, StudyDir], Executor] | None = None,
    overwrite: bool = False,
) -> StudyOutcome:
    """Run (or resume) every cell of a study, then write the study report.

    The study directory may be new, empty or this study's (resumed); a folder of other files only
    with `overwrite` (the study is then written among them; nothing in it is removed but the
    study's own outputs)."""
    spec_path = Path(spec_path)
    spec = with_executor_options(load_study_spec(spec_path), executor, workers, address)
    cells = expand_cells(spec, spec_path)
    check_bases(cells, spec_path)
    for base in {cell.base.model for cell in cells if cell.base.model.startswith("gguf:")}:
        gguf_source(base.removeprefix("gguf:"))  # fail before any job starts when a GGUF is missing
    study = StudyDir(Path(out) if out is not None else Path("runs") / spec.name)
    ex = spec.executor
    threads = ex.threads_per_job or (
        max(1, (os.cpu_count() or 1) // ex.workers) if ex.kind == "local" else ex.cpus_per_job
    )
    claim(study.root, "study run", overwrite=overwrite, legacy=_is_study_dir)
    with study_lock(study):
        mark(study.root, "study run")
        shutil.copyfile(spec_path, study.spec)
        write_manifest(study, spec_path, cells, ex.model_dump(), finished=False)
        graph = StudyGraph(spec, cells, study, threads=threads)
        factory = executor_factory or _default_executor
        runner = factory(spec, study)
        try:
            outcome = _drive(graph, runner, ex.workers)
            write_runs(study, cells, outcome.done)
            keep_runs(study.store, {cell.id for cell in cells})
            if outcome.done & {f"eval:{cell.id}" for cell in cells}:
                title = f"sftscope study: {spec.name}"
                for name, argv in (
                    ("analyze", commands.analyze(graph.cli, study.root, spec.report)),
                    ("report", commands.report(graph.cli, study.root, spec.report, title)),
                ):
                    job = Job(name, argv, study.log(name), env=graph.env)
                    result = runner.submit(job).result()
                    if result.returncode != 0:
                        outcome.failed.append("report")
                        console.print(f"[red]{name} failed[/red] (log: {job.log})\n{result.tail}")
                        break
        finally:
            runner.shutdown()
        write_manifest(study, spec_path, cells, ex.model_dump(), finished=True)
    report = None if "report" in outcome.failed else report_path(study)  # not a stale one
    return StudyOutcome(study.root, cells, sorted(outcome.failed), report)


def _is_study_dir(root: Path) -> bool:
    """A study directory written before output folders were marked."""
    try:
        manifest = read_json(StudyDir(root).manifest)
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and "cells" in manifest


def _default_executor(spec: StudySpec, study: StudyDir) -> Executor:
    return make_executor(spec.executor, slurm_folder=study.root / "slurm")


@dataclass
class _Progress:
    done: set[str]
    failed: list[str] = field(default_factory=list)


def _drive(graph: StudyGraph, executor: Executor, workers: int) -> _Progress:
    """Start ready jobs up to `workers` at a time until every job is done, failed or blocked."""
    progress = _Progress(graph.done_nodes())
    order = list(graph.nodes)
    pending = sorted(
        (n for n in order if n not in progress.done),
        key=lambda n: (PRIORITY[graph.nodes[n].kind], order.index(n)),
    )
    running: dict[Future[JobResult], Node] = {}
    view = StudyView(graph.study, len(graph.nodes), workers)
    skipped = len(progress.done)
    if skipped:
        console.print(f"resuming: {skipped} of {len(graph.nodes)} jobs already done")

    def frame() -> object:
        return view.render(len(progress.done), len(running), len(progress.failed))

    with Live(frame(), console=console, refresh_per_second=2, transient=False) as screen:
        while pending or running:
            for name in list(pending):
                node = graph.nodes[name]
                if any(dep in progress.failed for dep in node.deps):
                    pending.remove(name)
                    progress.failed.append(name)
                    graph.mark(node, "blocked", error="a job it needs failed")
                elif len(running) < workers and all(dep in progress.done for dep in node.deps):
                    pending.remove(name)
                    running[_start(graph, executor, node)] = node
            finished, _ = wait(list(running), timeout=1.0, return_when=FIRST_COMPLETED)
            for future in finished:
                node = running.pop(future)
                try:
                    result = future.result()
                except Exception as exc:  # the executor itself failed (e.g. a lost Ray worker)
                    result = JobResult(returncode=1, seconds=0.0, tail=f"{type(exc).__name__}: {exc}")
                graph.finish(node, result)
                view.job_done(result.seconds)
                if result.returncode == 0:
                    progress.done.add(node.name)
                    screen.console.print(f"[green]done[/green] {node.name} ({result.seconds:.0f}s)")
                else:
                    progress.failed.append(node.name)
                    log = graph.study.log(node.name)
                    screen.console.print(f"[red]failed[/red] {node.name} (log: {log})\n{result.tail}")
            screen.update(frame())
    if not console.is_terminal:  # rich ends the view's last line on a terminal only; a log needs it too
        console.line()
    return progress


def _start(graph: StudyGraph, executor: Executor, node: Node) -> Future[JobResult]:
    job = graph.job(node)
    info = {}
    if node.kind == "train":  # lets the live view compute this attempt's rate (a resume starts mid-run)
        info["start_step"] = train_progress(graph.study.run_dir(node.subject.id))[0]
    graph.mark(node, "running", **info)
    return executor.submit(job)
