"""The trl engine hands TRL's memory options through, packing becomes padding-free rows with position
ids and no attention mask, attn_implementation reaches the loaded model, and resume_every saves resume
states between checkpoints."""

from __future__ import annotations

import signal
import sys
import time
from pathlib import Path

import pytest
import yaml
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from sftscope.errors import InputError
from sftscope.models.loading import attention_kernel, load_model
from sftscope.train.config import load_config
from sftscope.train.encode import Encoded
from sftscope.train.metrics import read_metrics
from sftscope.train.trl_engine import RESUME_DIR, TRAINER_STATE, micro_batch_size, sft_config

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import logged_steps, run_cli, saved_steps, start_train, toy_data_dir


def _config(*overrides: str):  # type: ignore[no-untyped-def]
    return load_config(None, ["model=m", "data=d", "out=o", "engine=trl", *overrides])


def test_memory_options_reach_sft_config(tmp_path: Path) -> None:
    config = _config("activation_offloading=true", "gradient_checkpointing=true", "grad_clip=null")
    args = sft_config(config, tmp_path, total=10, per_device=4, world=2, main=True)
    assert args.activation_offloading and args.gradient_checkpointing and args.padding_free
    assert (
        args.max_steps == 10 and args.per_device_train_batch_size * args.gradient_accumulation_steps * 2 == 32
    )
    assert args.max_grad_norm == float("inf")  # no clipping, but the norm is still logged
    assert not sft_config(_config("packing=false"), tmp_path, 10, 4, 2, True).padding_free


def test_liger_needs_the_trl_engine() -> None:
    assert _config("use_liger_kernel=true").use_liger_kernel
    with pytest.raises(InputError, match="engine: trl"):
        load_config(None, ["model=m", "data=d", "out=o", "use_liger_kernel=true"])


def test_padding_free_rows_carry_position_ids_and_no_mask() -> None:
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8, 9], "labels": [-100, 9]}]
    )
    assert "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]


def test_micro_batches_split_the_global_batch_evenly() -> None:
    encoded = [Encoded(list(range(100)), 10)] * 12
    config = _config("batch_size=8", "micro_batch_tokens=300")
    assert micro_batch_size(config, encoded, world=1) == 2  # 3 fit, 8 needs a divisor; 12 splits by 2
    assert micro_batch_size(config, encoded, world=2) == 2
    with pytest.raises(InputError, match="divisible"):
        micro_batch_size(_config("batch_size=5"), encoded, world=2)


def test_attn_implementation_reaches_the_model(tiny_model_dir: Path) -> None:
    assert attention_kernel("auto") == "sdpa"  # no flash-attn and no GPU here
    assert load_model(str(tiny_model_dir), attn_implementation="eager").config._attn_implementation == "eager"
    assert load_model(str(tiny_model_dir)).config._attn_implementation == "sdpa"


def test_resume_every_gives_a_killed_run_a_state_between_checkpoints(tmp_path: Path) -> None:
    """No checkpoint before the last step, a resume state every 4: a run killed past step 5 resumes from
    step 4, not from the start, and ends with the uninterrupted run's losses."""
    steps = 12
    config = tmp_path / "train.yaml"
    values = {
        "model": "micro-strong",
        "engine": "trl",
        "data": str(toy_data_dir(tmp_path / "data", count=10)),
        "out": str(tmp_path / "unused"),
        "batch_size": 2,
        "steps": steps,
        "lr": 1e-3,
        "max_length": 256,
        "schedule": {"steps": [steps]},
        "resume_every": 4,
        "progress": False,
        "report_to": [],
    }
    config.write_text(yaml.safe_dump(values))

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference_process = start_train(tmp_path, str(config), f"out={reference}")
    process = start_train(tmp_path, str(config), f"out={killed}")
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and process.poll() is None:
        state = killed / RESUME_DIR / "checkpoint-4" / TRAINER_STATE
        if state.exists() and logged_steps(killed)[-1:] >= [6]:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert logged_steps(killed)[-1] < steps and not saved_steps(killed)
    _, errors = reference_process.communicate(timeout=180)
    assert reference_process.returncode == 0, errors[-2000:]

    resumed = run_cli(tmp_path, "--resume", str(killed), timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after step" in " ".join(resumed.stderr.split())
    after, before = read_metrics(killed), read_metrics(reference)
    assert [r["step"] for r in after] == list(range(1, steps + 1))
    assert [r["loss"] for r in after] == [r["loss"] for r in before]
    assert saved_steps(killed) == [steps]
