"""A real SIGKILL mid-run, then `sftscope train --resume`: the per-step losses are bitwise those of an
uninterrupted run (CPU, same seed, same thread count), and so are the final weights."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from sftscope.train.checkpoints import read_manifest
from sftscope.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import kill_past_a_checkpoint, logged_steps, run_cli, start_train, toy_data_dir

STEPS = 120
KEYS = ("step", "loss", "lr", "grad_norm", "entropy", "tokens_seen")


def test_sigkill_then_resume_reproduces_the_uninterrupted_run(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = toy_data_dir(tmp_path / "data", count=48)
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_model_dir),
                "data": str(data),
                "out": str(tmp_path / "unused"),
                "batch_size": 2,
                "steps": STEPS,
                "lr": 1e-3,
                "warmup_ratio": 0.1,
                "max_length": 256,
                "schedule": {"every": 10},
                "progress": False,
            }
        )
    )
    # The reference runs alongside the run that gets killed (one thread each, 2 cores).
    reference_run = tmp_path / "reference"
    reference_process = start_train(tmp_path, str(config), f"out={reference_run}")
    killed_run = tmp_path / "killed"
    process = start_train(tmp_path, str(config), f"out={killed_run}")
    kill_past_a_checkpoint(process, killed_run, timeout=120)
    logged = logged_steps(killed_run)
    assert logged[-1] < STEPS, "the run finished before it could be killed"

    _, reference_errors = reference_process.communicate(timeout=120)
    assert reference_process.returncode == 0, reference_errors
    resumed = run_cli(tmp_path, "--resume", str(killed_run))
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after step" in resumed.stderr

    reference, after = read_metrics(reference_run), read_metrics(killed_run)
    assert [r["step"] for r in after] == list(range(1, STEPS + 1))
    assert [[r[k] for k in KEYS] for r in after] == [[r[k] for k in KEYS] for r in reference]
    hashes = [
        [c["content_hash"] for c in read_manifest(run)["checkpoints"]] for run in (killed_run, reference_run)
    ]
    assert hashes[0] == hashes[1]
