"""One contract, both engines (the own loop and TRL's SFTTrainer): the same loss on the same batch,
prompt masked and EOS trained, the checkpoint schedule, the run directory's schema, exact resume after
SIGKILL, and 2-process DDP over gloo giving the single-process losses."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from sftscope.models.loading import load_model_and_tokenizer, resolve_model
from sftscope.train import batching
from sftscope.train.checkpoints import content_hash, read_manifest
from sftscope.train.encode import encode_dataset, load_examples
from sftscope.train.loop import train
from sftscope.train.metrics import read_metrics
from sftscope.train.schedules import checkpoint_steps

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_resume import KEYS
from test_train_support import (
    kill_past_a_checkpoint,
    launch_train,
    logged_steps,
    run_cli,
    start_train,
    toy_config,
    toy_data_dir,
)

ENGINES = ["sftscope", "trl"]
BASE = resolve_model("micro-strong")
SCHEDULE = {"every": 3, "log_spaced": True, "steps": [5]}
STEPS = 7


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 10 examples at batch 4: epochs of 4 + 4 + 2, so a short last step each epoch.
    return toy_data_dir(tmp_path_factory.mktemp("data"), count=10)


@pytest.fixture(scope="module")
def runs(data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    done = {}
    for engine in ENGINES:
        config = toy_config(
            BASE, data, root / engine, engine=engine, steps=STEPS, epochs=None, schedule=SCHEDULE, suffix=None
        )
        done[engine] = train(config)
    return done


def _reference_loss(data: Path, step: int, mask_prompt: bool = True, train_eos: bool = True) -> float:
    """The token-mean NLL of step `step`'s global batch under the base model, by a plain HF forward of
    each example alone (fp64 log-softmax), with the masking rule given."""
    model, tokenizer = load_model_and_tokenizer(str(BASE))
    model.eval()
    encoded, _ = encode_dataset(
        tokenizer, load_examples(data), suffix=None, max_length=256, policy="error", source="data"
    )
    total, count = 0.0, 0
    for index in batching.global_batch(len(encoded), 4, 1, step):
        item = encoded[index]
        assert item.input_ids[-1] == tokenizer.eos_token_id
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([item.input_ids])).logits[0].double(), dim=-1)
        first = item.prompt_len if mask_prompt else 1
        last = len(item) if train_eos else len(item) - 1
        for position in range(first, last):
            total -= float(logp[position - 1, item.input_ids[position]])
            count += 1
    return total / count


@pytest.mark.parametrize("engine", ENGINES)
def test_first_step_loss_is_the_masked_token_mean(engine: str, runs: dict[str, Path], data: Path) -> None:
    first = read_metrics(runs[engine])[0]["loss"]
    assert abs(first - _reference_loss(data, 0)) < 1e-5
    # Masking matters at this precision: unmasked prompts or an untrained EOS give another loss.
    assert abs(first - _reference_loss(data, 0, mask_prompt=False)) > 1e-3
    assert abs(first - _reference_loss(data, 0, train_eos=False)) > 1e-3


def test_engines_log_the_same_steps(runs: dict[str, Path]) -> None:
    ours, trl = (read_metrics(runs[engine]) for engine in ENGINES)
    assert [r["step"] for r in ours] == [r["step"] for r in trl] == list(range(1, STEPS + 1))
    for a, b in zip(ours, trl, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-5
        assert abs(a["entropy"] - b["entropy"]) < 1e-5
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-4 * max(1.0, a["grad_norm"])
        assert a["lr"] == pytest.approx(b["lr"], rel=1e-12)
        assert a["tokens_seen"] == b["tokens_seen"]


@pytest.mark.parametrize("engine", ENGINES)
def test_schedule_honoured(engine: str, runs: dict[str, Path]) -> None:
    from sftscope.train.config import CheckpointSchedule

    saved = [entry["step"] for entry in read_manifest(runs[engine])["checkpoints"]]
    assert saved == checkpoint_steps(CheckpointSchedule(**SCHEDULE), STEPS) == [1, 2, 3, 4, 5, 6, 7]


@pytest.mark.parametrize("engine", ENGINES)
def test_run_directory_schema(engine: str, runs: dict[str, Path]) -> None:
    run = runs[engine]
    manifest = read_manifest(run)
    assert set(manifest) == {"base_model", "base_hash", "total_steps", "checkpoints"}
    assert manifest["base_hash"] == content_hash(BASE) and manifest["total_steps"] == STEPS
    for entry in manifest["checkpoints"]:
        assert set(entry) == {"step", "epoch", "tokens_seen", "wall_time", "content_hash", "path"}
        assert entry["content_hash"] == content_hash(run / entry["path"])
        assert (run / entry["path"] / "model.safetensors").exists()
    for row in read_metrics(run):
        assert {"loss", "lr", "grad_norm", "tokens_per_s", "entropy", "tokens", "tokens_seen"} <= set(row)
    stats = json.loads((run / "data_stats.json").read_text())
    assert stats["kept"] == stats["examples"] == 10
    assert yaml.safe_load((run / "config.yaml").read_text())["engine"] == engine


@pytest.mark.parametrize("engine", ENGINES)
def test_sigkill_then_resume_reproduces_the_uninterrupted_run(
    engine: str, data: Path, tmp_path: Path
) -> None:
    steps = 30
    config = tmp_path / "train.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "model": str(BASE),
                "engine": engine,
                "data": str(data),
                "out": str(tmp_path / "unused"),
                "batch_size": 2,
                "steps": steps,
                "lr": 1e-3,
                "warmup_ratio": 0.1,
                "max_length": 256,
                "schedule": {"every": 5},
                "progress": False,
                "report_to": [],
            }
        )
    )

    reference, killed = tmp_path / "reference", tmp_path / "killed"
    reference_process = start_train(tmp_path, str(config), f"out={reference}")
    process = start_train(tmp_path, str(config), f"out={killed}")
    kill_past_a_checkpoint(process, killed, timeout=180)
    assert logged_steps(killed)[-1] < steps, "the run finished before it could be killed"
    _, errors = reference_process.communicate(timeout=180)
    assert reference_process.returncode == 0, errors

    resumed = run_cli(tmp_path, "--resume", str(killed), timeout=180)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming after step" in resumed.stderr
    after, before = read_metrics(killed), read_metrics(reference)
    assert [r["step"] for r in after] == list(range(1, steps + 1))
    assert [[r[k] for k in KEYS] for r in after] == [[r[k] for k in KEYS] for r in before]
    hashes = [[c["content_hash"] for c in read_manifest(run)["checkpoints"]] for run in (killed, reference)]
    assert hashes[0] == hashes[1]


@pytest.mark.parametrize("engine", ENGINES)
def test_two_processes_match_one(engine: str, data: Path, tmp_path: Path) -> None:
    values: dict[str, Any] = {
        "model": str(BASE),
        "engine": engine,
        "data": str(data),
        "out": str(tmp_path / "unused"),
        "batch_size": 4,
        "steps": 4,
        "lr": 1e-3,
        "max_length": 256,
        "micro_batch_tokens": 60,  # one example per pass: gradient accumulation too
        "schedule": {"every": 2},
        "progress": False,
        "report_to": [],
    }
    config = tmp_path / "train.yaml"
    config.write_text(yaml.safe_dump(values))
    single = start_train(tmp_path, str(config), f"out={tmp_path / 'single'}")
    ddp = launch_train(tmp_path, "ddp-cpu.yaml", str(config), f"out={tmp_path / 'ddp'}")
    _, ddp_errors = ddp.communicate(timeout=240)
    assert ddp.returncode == 0, ddp_errors[-3000:]
    assert "2 process(es)" in ddp_errors
    _, single_errors = single.communicate(timeout=180)
    assert single.returncode == 0, single_errors

    one, two = read_metrics(tmp_path / "single"), read_metrics(tmp_path / "ddp")
    assert [r["step"] for r in two] == [r["step"] for r in one] == [1, 2, 3, 4]
    for a, b in zip(one, two, strict=True):
        assert abs(a["loss"] - b["loss"]) < 1e-5
        assert abs(a["grad_norm"] - b["grad_norm"]) < 1e-5 * max(1.0, a["grad_norm"])
        assert abs(a["entropy"] - b["entropy"]) < 1e-5
        assert a["tokens_seen"] == b["tokens_seen"]


def test_the_own_loop_does_not_inherit_a_trainer_state_left_in_the_process(
    data: Path, runs: dict[str, Path], tmp_path: Path
) -> None:
    """An HF/TRL trainer run earlier in the same process leaves accelerate's state behind (here bf16
    autocast); the own loop starts from its own, so its loss is the fp32 one."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(reset_partial_state=True)
    assert Accelerator(cpu=True, mixed_precision="bf16").mixed_precision == "bf16"
    config = toy_config(BASE, data, tmp_path / "run", steps=1, epochs=None, schedule=SCHEDULE, suffix=None)
    first = read_metrics(train(config))[0]["loss"]
    assert first == read_metrics(runs["sftscope"])[0]["loss"]
