"""FSDP2 over gloo with 2 CPU processes: a run SIGKILLed mid-way resumes from its sharded state
(torch.distributed.checkpoint) and gives per-step losses bitwise those of an FSDP run never killed,
and the same losses as one process up to float rounding; a resume without that state is refused."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from sftscope.errors import InputError
from sftscope.train.checkpoints import read_manifest
from sftscope.train.loop import _resume_point
from sftscope.train.metrics import read_metrics
from sftscope.train.sharding import RESUME_DIR, latest

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import launch_train, logged_steps, toy_data_dir

STEPS = 16
KEYS = ("step", "loss", "lr", "grad_norm", "entropy", "tokens_seen")


def _fsdp(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    return launch_train(tmp_path, "fsdp-cpu.yaml", *args)


def _resume_step(run: Path) -> int:
    state = latest(run)
    return int(state.name.removeprefix("step-")) if state else 0


def test_a_killed_fsdp_run_resumes_from_its_sharded_state(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_model_dir),
                "data": str(toy_data_dir(tmp_path / "data", count=48)),
                "out": str(tmp_path / "unused"),
                "batch_size": 4,
                "steps": STEPS,
                "lr": 1e-3,
                "warmup_ratio": 0.1,
                "max_length": 256,
                "schedule": {"every": 5},
                "resume_every": 3,
                "loss_chunk_tokens": 16,  # the chunked loss under FSDP too
                "progress": False,
                "report_to": [],
            }
        )
    )
    reference_run, killed_run = tmp_path / "reference", tmp_path / "killed"
    reference = _fsdp(tmp_path, str(config), f"out={reference_run}")
    killed = _fsdp(tmp_path, str(config), f"out={killed_run}")
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and killed.poll() is None:
        logged = logged_steps(killed_run)
        if logged and _resume_step(killed_run) and logged[-1] > _resume_step(killed_run) + 1:
            os.killpg(killed.pid, signal.SIGKILL)  # the launcher and both workers
            break
        time.sleep(0.01)
    killed.wait(timeout=30)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.read() if killed.stderr else ""
    assert logged_steps(killed_run)[-1] < STEPS, "the run finished before it could be killed"
    # Only the newest complete state is kept (a kill mid-save may leave the next one's .tmp too).
    assert len([p for p in (killed_run / RESUME_DIR).iterdir() if not p.name.endswith(".tmp")]) == 1
    _, errors = reference.communicate(timeout=240)
    assert reference.returncode == 0, errors[-3000:]

    resumed = _fsdp(tmp_path, "--resume", str(killed_run))
    _, errors = resumed.communicate(timeout=240)
    assert resumed.returncode == 0, errors[-3000:]
    assert "FSDP, resuming after step" in " ".join(errors.split())

    expected, after = read_metrics(reference_run), read_metrics(killed_run)
    assert [r["step"] for r in after] == list(range(1, STEPS + 1))
    assert [[r[k] for k in KEYS] for r in after] == [[r[k] for k in KEYS] for r in expected]
    hashes = [
        [c["content_hash"] for c in read_manifest(run)["checkpoints"]] for run in (killed_run, reference_run)
    ]
    assert hashes[0] == hashes[1]

    # Without its sharded state (resume/ deleted), resuming under FSDP is one clear error.
    shutil.rmtree(killed_run / RESUME_DIR)
    with pytest.raises(InputError, match="no sharded resume state"):
        _resume_point(killed_run, sharded=True, from_step=None)
