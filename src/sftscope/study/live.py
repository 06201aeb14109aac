"""What a study looks like while it runs (rich live view) and afterwards (`study status`).

Both read only files: the manifest's cell list, the state files, and each run's metrics.jsonl and
manifest.json for the training step, so `status` works from another shell during a run.
"""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Group
from rich.table import Table
from rich.text import Text

from sftscope.study.state import STAGES, StateFile, StudyDir, cell_status, read_json, train_progress

STYLE = {"done": "green", "running": "yellow", "failed": "red", "blocked": "red", "interrupted": "magenta"}


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = int(seconds)
    hours, minutes = f"{seconds // 3600}:" if seconds >= 3600 else "", seconds % 3600 // 60
    return f"{hours}{minutes:02d}:{seconds % 60:02d}" if hours else f"{minutes}:{seconds % 60:02d}"


def _train_cell(study: StudyDir, cell_id: str, state: StateFile, *, running: bool) -> tuple[str, str]:
    """'step/total' and, while a study runs, the training ETA, from the run's own files."""
    step, total = train_progress(study.run_dir(cell_id))
    record = state.stages.get("train", {})
    if total is None:
        return (f"{step}" if step else "-"), "-"
    eta = "-"
    if running and record.get("status") == "running" and step:
        # Steps logged since this attempt started (a resume starts mid-run) over time since then.
        elapsed = time.time() - record["started"]
        start_step = record.get("start_step", 0)
        if step > start_step and elapsed > 0:
            eta = duration((total - step) * elapsed / (step - start_step))
    return f"{step}/{total}", eta


def cells_table(study: StudyDir, *, interrupted: bool = False) -> Table:
    """One row per cell: its stages, training step, ETA and total time so far."""
    manifest = read_json(study.manifest) or {}
    table = Table(
        title=f"study {study.root}",
        title_justify="left",
        caption="cell = base__condition__recipe__seed-hash",
        caption_justify="left",
        expand=False,
    )
    # In a narrow terminal the long cell ids fold onto more lines; the short status columns keep
    # their width, or the table would shrink them to "d…" and say nothing.
    table.add_column("cell", overflow="fold")
    for column in (*STAGES, "step", "eta", "time"):
        table.add_column(column, no_wrap=True, min_width=max(len(column), 7))
    for cell_id in manifest.get("cells", {}):
        state = StateFile(study.cell_state(cell_id), cell_id)
        stages = []
        for stage in STAGES:
            status = state.status(stage)
            if status == "running" and interrupted:
                status = "interrupted"
            stages.append(Text(status, style=STYLE.get(status, "")))
        step, eta = _train_cell(study, cell_id, state, running=not interrupted)
        seconds = sum(r.get("seconds", 0.0) for r in state.stages.values())
        table.add_row(cell_id, *stages, step, eta, duration(seconds or None))
    return table


def shared_lines(study: StudyDir, *, interrupted: bool = False) -> list[Text]:
    """Failed or running study-level jobs (data builds, base sweeps), one line each."""
    lines = []
    shared = StateFile(study.state_file, "study")
    for name, record in shared.stages.items():
        status = record.get("status")
        if status == "running" and interrupted:
            status = "interrupted"
        if status != "done":
            lines.append(
                Text(f"{name}: {status} {record.get('error', '')}", style=STYLE.get(status or "", ""))
            )
    return lines


class StudyView:
    """The live view: the cells table and one line of overall progress with an ETA."""

    def __init__(self, study: StudyDir, total_jobs: int, workers: int):
        self.study, self.total, self.workers = study, total_jobs, workers
        self.started = time.time()
        self.durations: list[float] = []

    def job_done(self, seconds: float) -> None:
        self.durations.append(seconds)

    def render(self, done: int, running: int, failed: int) -> Group:
        remaining = self.total - done - failed
        eta = None
        if self.durations and remaining:
            # Mean job time of this session over the worker count: rough, as jobs differ in kind.
            eta = sum(self.durations) / len(self.durations) * remaining / self.workers
        summary = Text(
            f"jobs {done}/{self.total} done, {running} running, {failed} failed · "
            f"elapsed {duration(time.time() - self.started)} · eta {duration(eta)}"
        )
        return Group(cells_table(self.study), *shared_lines(self.study), summary)


def cell_statuses(study: StudyDir) -> dict[str, str]:
    """Every cell's one-word status (for summaries and tests)."""
    manifest = read_json(study.manifest) or {}
    return {
        cell_id: cell_status(StateFile(study.cell_state(cell_id), cell_id))
        for cell_id in manifest.get("cells", {})
    }


def report_path(study: StudyDir) -> Path | None:
    path = study.root / "report.html"
    return path if path.is_file() else None
