"""`train --plan` from a config.json alone (the four Qwen3 bases), checkpoints in the base's dtype,
keep: swept, the free-disk check, and the one-line errors of an unknown engine."""

from __future__ import annotations

import json
import shutil
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch
import yaml
from safetensors import safe_open

from sftscope.errors import InputError
from sftscope.train import disk
from sftscope.train.checkpoints import read_manifest
from sftscope.train.config import load_config
from sftscope.train.loop import train
from sftscope.train.plan import GIB, loss_rows, make_plan, model_shape

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import run_cli, toy_config, toy_data_dir

QWEN3 = Path(__file__).resolve().parents[1] / "fixtures" / "qwen3"


@pytest.mark.parametrize(
    ("name", "billions"),
    # Published totals; 1.7B and 4B tie the output layer to the embeddings, 8B and 14B do not.
    [("Qwen3-1.7B-Base", 1.72), ("Qwen3-4B-Base", 4.02), ("Qwen3-8B-Base", 8.19), ("Qwen3-14B-Base", 14.77)],
)
def test_parameter_counts_from_config_json(name: str, billions: float) -> None:
    shape = model_shape(str(QWEN3 / name))
    assert shape.parameters() / 1e9 == pytest.approx(billions, abs=0.005)
    assert shape.dtype == "bfloat16"


def test_plan_of_qwen3_14b_on_8_gpus(tmp_path: Path) -> None:
    config = load_config(None, [f"model={QWEN3 / 'Qwen3-14B-Base'}", "data=d", "out=o", "steps=640"], "paper")
    plan = make_plan(config, model_shape(config.model), 640, 64, 9, gpus=8)
    params = plan.parameters
    assert plan.weights == params * 4 // 8 and plan.optimizer == params * 8 // 8
    assert plan.checkpoint == params * 2  # bf16, as the base is published
    assert plan.run_disk == 9 * params * 2 + params * 12  # 9 kept + one TRL resume state
    assert plan.activations_checkpointed < plan.activations / 10


@pytest.mark.parametrize(
    ("engine", "values", "rows", "who"),
    [
        ("sftscope", {"loss_chunk_tokens": 1024}, 1024, "loss_chunk_tokens 1024"),
        ("sftscope", {"loss_chunk_tokens": None}, 16384, "unchunked"),
        ("trl", {}, 16384, "TRL, unchunked"),
        # Liger: 16384 tokens over ceil(151936 / 5120) = 30 chunks is 547 rows, rounded up to 1024.
        ("trl", {"use_liger_kernel": True}, 1024, "Liger's fused cross-entropy"),
    ],
)
def test_loss_logits_follow_the_engine_and_its_chunking(
    engine: str, values: dict, rows: int, who: str
) -> None:
    config = load_config(
        None, [f"model={QWEN3 / 'Qwen3-14B-Base'}", "data=d", "out=o", f"engine={engine}"], "paper"
    ).model_copy(update={"micro_batch_tokens": 16384, **values})
    shape = model_shape(config.model)
    assert loss_rows(config, shape) == (rows, who)
    plan = make_plan(config, shape, 640, 64, 9, gpus=8)
    assert plan.loss_logits == rows * 151_936 * 4 * 3 and plan.loss_chunk == who


def test_plan_command_prints_without_loading_weights(tmp_path: Path) -> None:
    model = tmp_path / "qwen3-4b"  # config.json only: loading weights would fail
    shutil.copytree(QWEN3 / "Qwen3-4B-Base", model)
    result = run_cli(
        tmp_path,
        "--preset",
        "paper",
        "steps=80",  # first: a lone path-valued override would be taken for the config file
        f"model={model}",
        "data=unused",
        "out=unused",
        "--plan",
        "--gpus",
        "8",
    )
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "4.022 B" in text and "weights (fp32, /8 GPUs)" in text and "activations, checkpointed" in text
    assert "loss logits" in text and "disk per checkpoint" in text and "7.49 GiB" in text  # 4.02e9 x 2 bytes
    assert "peak per GPU (checkpointing on)" in text and text.rstrip().endswith("80")


@pytest.mark.parametrize("engine", ["sftscope", "trl"])
def test_keep_swept_leaves_only_swept_checkpoints(engine: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    data = toy_data_dir(tmp_path / "data", count=8)
    values = {"steps": 6, "schedule": {"every": 1}, "keep": "swept", "keep_steps": [2, 4], "engine": engine}
    run = train(toy_config(tiny_model_dir, data, tmp_path / "run", **values))
    assert [entry["step"] for entry in read_manifest(run)["checkpoints"]] == [2, 4, 6]
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-000002", "step-000004", "step-000006"]
    if engine == "trl":  # one resume state, the newest
        assert [p.name for p in (run / "resume").iterdir()] == ["checkpoint-6"]


@pytest.mark.parametrize("engine", ["sftscope", "trl"])
def test_checkpoints_hold_the_base_dtype(engine: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    base = tmp_path / "bf16-base"
    shutil.copytree(tiny_model_dir, base)
    values = json.loads((base / "config.json").read_text())
    (base / "config.json").write_text(json.dumps({**values, "dtype": "bfloat16"}))
    config = toy_config(
        base, toy_data_dir(tmp_path / "data", count=8), tmp_path / "run", engine=engine, steps=2
    )
    run = train(config)
    for entry in read_manifest(run)["checkpoints"]:
        with safe_open(str(run / entry["path"] / "model.safetensors"), framework="pt") as weights:
            dtypes = {weights.get_tensor(k).dtype for k in weights.keys()}  # noqa: SIM118 (a safetensors handle)
            assert dtypes == {torch.bfloat16}


Usage = namedtuple("Usage", "total used free")


def test_too_little_disk_refuses_to_start(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(disk.shutil, "disk_usage", lambda path: Usage(GIB, GIB, 1000))
    config = toy_config(tiny_model_dir, toy_data_dir(tmp_path / "data"), tmp_path / "run")
    with pytest.raises(InputError, match="planned checkpoints need") as error:
        train(config)
    assert error.value.field == "out" and error.value.file == str(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_unknown_engine_names_file_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    values = {"model": "m", "data": "d", "out": "o", "engine": "verl", "root": "."}
    path.write_text(yaml.safe_dump(values, sort_keys=False))
    with pytest.raises(InputError) as error:
        load_config(path)
    assert error.value.file == str(path) and error.value.field == "engine" and error.value.line == 4
    assert "\n" not in str(error.value).split(":", 1)[0]


def test_paper_presets_run_trl_with_gradient_checkpointing_and_micro_the_own_loop() -> None:
    from sftscope.train.presets import PRESETS

    for name in PRESETS:
        config = load_config(None, ["model=m", "data=d", "out=o"], preset=name)
        expected = ("trl", True) if name.startswith("paper") else ("sftscope", False)
        assert (config.engine, config.gradient_checkpointing) == expected
