"""Per-step metrics: RUN/metrics.jsonl always, TensorBoard / W&B next to it when asked for and installed."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from typing import Any

from sftscope.errors import InputError
from sftscope.outdir import atomic_file

METRICS = "metrics.jsonl"


def truncate_metrics(run_dir: Path, last_step: int) -> None:
    """Drop rows after `last_step` (the resumed-from checkpoint), so a resumed run has one row per step."""
    path = run_dir / METRICS
    if not path.exists():
        return
    kept = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:  # the half-written last line of a killed run
            continue
        if row.get("step", 0) <= last_step:
            kept.append(line + "\n")
    with atomic_file(path) as tmp:
        tmp.write_text("".join(kept), encoding="utf-8")


def read_metrics(run_dir: str | Path) -> list[dict[str, Any]]:
    """All rows of a run's metrics.jsonl."""
    path = Path(run_dir) / METRICS
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _trackers(report_to: list[str] | str) -> list[str]:
    if report_to == "auto":
        return ["tensorboard"] if importlib.util.find_spec("tensorboard") else []
    for name in report_to:
        if importlib.util.find_spec(name) is None:
            raise InputError("config", f"{name} is not installed (pip install {name})", field="report_to")
    return list(report_to)


class MetricsLog:
    """Appends one JSON row per optimizer step (flushed, so a kill loses at most the row being written)."""

    def __init__(self, run_dir: Path, report_to: list[str] | str, config: dict[str, Any]):
        trackers = _trackers(report_to)  # first: a missing tracker fails before any file is opened
        self.handle = (run_dir / METRICS).open("a", encoding="utf-8")
        self.tensorboard: Any = None
        self.wandb: Any = None
        if "tensorboard" in trackers:
            from torch.utils.tensorboard import SummaryWriter

            self.tensorboard = SummaryWriter(str(run_dir / "tensorboard"))
        if "wandb" in trackers:
            import wandb

            # resume="allow" with the run dir's name keeps one W&B run across kills and resumes.
            self.wandb = wandb.init(
                dir=str(run_dir), name=run_dir.name, id=run_dir.name, resume="allow", config=config
            )

    def log(self, row: dict[str, Any]) -> None:
        self.handle.write(json.dumps(row) + "\n")
        self.handle.flush()
        step = row["step"]
        numbers = {k: v for k, v in row.items() if k != "step" and isinstance(v, (int, float))}
        if self.tensorboard is not None:
            for key, value in numbers.items():
                self.tensorboard.add_scalar(f"train/{key}", value, step)
        if self.wandb is not None:
            self.wandb.log({f"train/{k}": v for k, v in numbers.items()}, step=step)

    def close(self) -> None:
        self.handle.close()
        if self.tensorboard is not None:
            self.tensorboard.close()
        if self.wandb is not None:
            self.wandb.finish()
