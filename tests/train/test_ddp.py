"""`accelerate launch` with 2 CPU processes (gloo) gives the single-process losses at the same global
batch, including a last step too small to give both processes an example."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from sftscope.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import launch_train, start_train, toy_data_dir


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
    single = start_train(tmp_path, str(config), f"out={tmp_path / 'single'}")
    ddp = launch_train(tmp_path, "ddp-cpu.yaml", str(config), f"out={tmp_path / 'ddp'}")
    _, ddp_errors = ddp.communicate(timeout=180)
    assert ddp.returncode == 0, ddp_errors[-3000:]
    assert "2 process(es)" in ddp_errors
    _, single_errors = single.communicate(timeout=120)
    assert single.returncode == 0, single_errors

    one, two = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "ddp")
    assert [r["step"] for r in two] == [r["step"] for r in one] == list(range(1, 7))
    for a, b in zip(one, two, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-5
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-5 * max(1.0, a["grad_norm"])
        assert abs(a["entropy"] - b["entropy"]) < 1e-5
        assert a["tokens_seen"] == b["tokens_seen"]
