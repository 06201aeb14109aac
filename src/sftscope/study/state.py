"""The study directory and the per-cell state files that make a study resumable.

Layout:
    STUDY/spec.yaml, manifest.json, runs.json, results.duckdb (merged), report.html/.md
    STUDY/state.json                study-level jobs (base conversions, data builds, base sweeps)
    STUDY/bases/<key>/              converted GGUF bases
    STUDY/baselines/<base>/         each base model's own sweep (step 0), swept once per study
    STUDY/data/<key>/               data builds, shared by every cell with the same spec content
    STUDY/cells/<id>/state.json     the cell's stages: status, fingerprint, times, error
    STUDY/cells/<id>/results.duckdb the cell's own results store (one writer per DuckDB file)
    STUDY/runs/<id>/                the cell's training run directory (named by the cell id)
    STUDY/logs/<job>.log            every job's stdout and stderr

A state file is rewritten atomically (temporary file, then rename) after every stage transition,
so a kill at any moment leaves either the old or the new state, never a torn one.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from sftscope.evaluate.store import STORE_FILE
from sftscope.rundir import MANIFEST, write_json_atomic

STAGES = ("data", "train", "eval")
"""The stages of one cell, in order."""

Status = Literal["pending", "running", "done", "failed", "blocked"]


def read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


@dataclass(frozen=True)
class StudyDir:
    """Paths inside one study directory."""

    root: Path

    @property
    def spec(self) -> Path:
        return self.root / "spec.yaml"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def runs(self) -> Path:
        return self.root / "runs.json"

    @property
    def store(self) -> Path:
        return self.root / STORE_FILE

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def lock(self) -> Path:
        return self.root / ".lock"

    def base_dir(self, key: str) -> Path:
        return self.root / "bases" / key

    def base_store(self, base: str) -> Path:
        # A folder per base: the sweep writes aggregates.parquet/.json beside its store.
        return self.root / "baselines" / base / STORE_FILE

    def data_dir(self, key: str) -> Path:
        return self.root / "data" / key

    def cell_dir(self, cell_id: str) -> Path:
        return self.root / "cells" / cell_id

    def run_dir(self, cell_id: str) -> Path:
        return self.root / "runs" / cell_id

    def cell_store(self, cell_id: str) -> Path:
        return self.cell_dir(cell_id) / STORE_FILE

    def cell_state(self, cell_id: str) -> Path:
        return self.cell_dir(cell_id) / "state.json"

    def log(self, job: str) -> Path:
        return self.root / "logs" / f"{job.replace(':', '-')}.log"


class StateFile:
    """Stage records (of one cell, or of the study's shared jobs), persisted after every change."""

    def __init__(self, path: Path, owner: str):
        self.path = path
        loaded = read_json(path) or {}
        self.owner = owner
        self.stages: dict[str, dict[str, Any]] = loaded.get("stages", {})

    def status(self, stage: str) -> Status:
        return self.stages.get(stage, {}).get("status", "pending")

    def is_done(self, stage: str, fingerprint: str) -> bool:
        """Done with the same inputs: a changed fingerprint (e.g. another eval suite) redoes the stage."""
        record = self.stages.get(stage, {})
        return record.get("status") == "done" and record.get("fingerprint") == fingerprint

    def mark(self, stage: str, status: Status, **info: Any) -> None:
        record = self.stages.setdefault(stage, {})
        now = time.time()
        if status == "running":
            record.pop("error", None)
            record["started"] = now
            record["attempts"] = record.get("attempts", 0) + 1
        else:
            record["finished"] = now
        record.update(status=status, **info)
        write_json_atomic(
            self.path, {"owner": self.owner, "stages": self.stages, "updated": now}, sort_keys=True
        )


def cell_status(state: StateFile) -> str:
    """One word for a cell: 'done', 'failed (stage)', 'blocked (stage)', the running stage, or 'pending'."""
    statuses = [state.status(stage) for stage in STAGES]
    if all(s == "done" for s in statuses):
        return "done"
    for stage, status in zip(STAGES, statuses, strict=True):
        if status in ("failed", "blocked"):
            return f"{status} ({stage})"
        if status == "running":
            return stage
    return "pending"


def train_progress(run_dir: Path) -> tuple[int, int | None]:
    """(last logged optimizer step, total steps if the manifest says) of a run, read from its files."""
    step = 0
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        with metrics.open("rb") as handle:
            # Only the last complete line matters; reading backwards keeps this cheap on long runs.
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - 4096))
            for line in handle.read().splitlines()[::-1]:
                try:
                    step = int(json.loads(line)["step"])
                    break
                except (ValueError, KeyError, TypeError):
                    continue
    try:
        manifest = read_json(run_dir / MANIFEST) or {}
    except json.JSONDecodeError:
        # A trainer that is not sftscope's (or a copied run) may write the manifest in place; a
        # progress display must show "unknown" for a moment rather than take the study down.
        manifest = {}
    return step, manifest.get("total_steps")
