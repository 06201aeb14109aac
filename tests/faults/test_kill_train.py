"""SIGKILL at seeded random points of `sftscope train`, resumed after each: no step logged twice or
skipped, every scheduled checkpoint saved once and whole, nothing half-written left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from faults_support import kill_when, rng
from test_train_support import cli_env, launcher, logged_steps, run_cli, toy_data_dir

from sftscope.train.checkpoints import content_hash, read_manifest

STEPS, EVERY, KILLS = 30, 5, 3


def test_train_survives_kills_at_random_points(tiny_model_dir: Path, tmp_path: Path) -> None:
    points = rng("train")
    config = tmp_path / "train.yaml"
    values = {
        "model": str(tiny_model_dir),
        "data": str(toy_data_dir(tmp_path / "data", count=24)),
        "out": str(tmp_path / "run"),
        "batch_size": 2,
        "steps": STEPS,
        "max_length": 256,
        "schedule": {"every": EVERY, "log_spaced": False},
        "progress": False,
        "report_to": [],
    }
    config.write_text(yaml.safe_dump(values))
    run = tmp_path / "run"
    for kill in range(KILLS):
        args = ["train", str(config)] if kill == 0 else ["train", "--resume", str(run)]
        process = subprocess.Popen(
            [sys.executable, str(launcher(tmp_path)), *args],
            env=cli_env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        # A later step each time (a resume rolls back to its checkpoint), a random moment inside it.
        step = points.randint(EVERY * kill + 2, EVERY * (kill + 2) + 2)
        kill_when(
            process,
            lambda step=step: bool(logged_steps(run)) and logged_steps(run)[-1] >= step,
            points.uniform(0.0, 0.05),
        )
    finished = run_cli(tmp_path, "--resume", str(run), timeout=300)
    assert finished.returncode == 0, finished.stderr
    assert "resuming after step" in finished.stderr

    assert logged_steps(run) == list(range(1, STEPS + 1))
    manifest = read_manifest(run)
    assert [c["step"] for c in manifest["checkpoints"]] == list(range(EVERY, STEPS + 1, EVERY))
    for checkpoint in manifest["checkpoints"]:
        assert content_hash(run / checkpoint["path"]) == checkpoint["content_hash"]
    leftovers = [p.name for p in (run / "checkpoints").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []
