"""`accelerate launch` with 2 CPU processes (gloo) gives the single-process losses at the same global
batch, including a last step too small to give both processes an example."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import yaml

from sftscope.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import cli_env, launcher, toy_data_dir

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_match_one(tiny_model_dir: Path, tmp_path: Path) -> None:
    # 17 examples at batch 8: steps of 8, 8 and 1 example, so one process idles in the third step.
    data = toy_data_dir(tmp_path / "data", count=17, long_every=5)
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": str(tiny_model_dir),
                "data": str(data),
                "out": str(tmp_path / "unused"),
                "batch_size": 8,
                "epochs": 2,
                "lr": 1e-3,
                "max_length": 512,
                "micro_batch_tokens": 300,  # several passes per process: gradient accumulation too
                "schedule": {"every": 3},
                "progress": False,
            }
        )
    )
    # The single-process reference runs alongside (packed and padded give the same loss: test_loss).
    single = subprocess.Popen(
        [sys.executable, str(launcher(tmp_path)), "train", str(config), f"out={tmp_path / 'single'}"],
        env=cli_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )

    env = {**cli_env(), "ACCELERATE_LOG_LEVEL": "error", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "configs" / "accelerate" / "ddp-cpu.yaml"),
        "--main_process_port", str(_free_port()),
        str(launcher(tmp_path)), "train", str(config), f"out={tmp_path / 'ddp'}",
    ]  # fmt: skip
    ddp = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert ddp.returncode == 0, ddp.stderr[-3000:]
    assert "2 process(es)" in ddp.stderr
    _, single_errors = single.communicate(timeout=120)
    assert single.returncode == 0, single_errors

    one, two = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "ddp")
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, 7))
    for a, b in zip(one, two, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-5
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-5 * max(1.0, a["grad_norm"])
        assert abs(a["entropy"] - b["entropy"]) < 1e-5
        assert a["tokens_seen"] == b["tokens_seen"]
