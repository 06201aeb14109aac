"""A real SIGKILL mid-run, then `sftscope train --resume`: the per-step losses are bitwise those of an
uninterrupted run (CPU, same seed, same thread count), and so are the final weights."""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from sftscope.train.checkpoints import read_manifest
from sftscope.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import cli_env, launcher, run_cli, toy_data_dir

STEPS = 120
KEYS = ("step", "loss", "lr", "grad_norm", "entropy", "tokens_seen")


def _logged_steps(run: Path) -> list[int]:
    path = run / "metrics.jsonl"
    steps = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError, KeyError):  # the row being written now
                steps.append(json.loads(line)["step"])
    return steps


def _saved_steps(run: Path) -> list[int]:
    try:
        return [c["step"] for c in read_manifest(run)["checkpoints"]]
    except Exception:  # not written yet, or being replaced
        return []


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
    reference_process = subprocess.Popen(
        [sys.executable, str(launcher(tmp_path)), "train", str(config), f"out={reference_run}"],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    killed_run = tmp_path / "killed"
    process = subprocess.Popen(
        [sys.executable, str(launcher(tmp_path)), "train", str(config), f"out={killed_run}"],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        saved, logged = _saved_steps(killed_run), _logged_steps(killed_run)
        if saved and logged and logged[-1] > saved[-1] + 1:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read().decode() if process.stderr else ""
    logged = _logged_steps(killed_run)
    assert logged[-1] < STEPS, "the run finished before it could be killed"

    _, reference_errors = reference_process.communicate(timeout=120)
    assert reference_process.returncode == 0, reference_errors.decode()
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
