"""Run directory contract: manifest, content hashes, atomic checkpoints, and resume from the last
complete one (half-written checkpoints and metrics rows after it are ignored)."""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from sftscope.errors import InputError
from sftscope.train.checkpoints import STATE_FILE, read_manifest, write_manifest
from sftscope.train.loop import resume, train
from sftscope.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import toy_config, toy_data_dir

KEYS = ("step", "loss", "lr", "grad_norm", "entropy")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return toy_data_dir(tmp_path_factory.mktemp("data"), count=20)


def test_run_directory_follows_the_contract(tiny_model_dir: Path, data: Path, tmp_path: Path) -> None:
    config = toy_config(tiny_model_dir, data, tmp_path / "run", steps=6, schedule={"every": 2})
    run = train(config)
    manifest = read_manifest(run)
    assert manifest["base_model"] == str(tiny_model_dir) and manifest["total_steps"] == 6
    assert manifest["base_hash"] == _sha256(tiny_model_dir / "model.safetensors")
    assert [c["step"] for c in manifest["checkpoints"]] == [2, 4, 6]
    for entry in manifest["checkpoints"]:
        folder = run / entry["path"]
        assert entry["content_hash"] == _sha256(folder / "model.safetensors")
        assert entry["tokens_seen"] > 0 and entry["wall_time"] > 0 and entry["epoch"] == entry["step"] / 5
        assert (folder / STATE_FILE).exists() and (folder / "tokenizer.json").exists()
    assert len({c["content_hash"] for c in manifest["checkpoints"]}) == 3
    assert not list((run / "checkpoints").glob("*.tmp"))
    final = AutoModelForCausalLM.from_pretrained(run / "checkpoints" / "step-000006")
    assert isinstance(final, torch.nn.Module)
    rows = read_metrics(run)
    assert [r["step"] for r in rows] == list(range(1, 7))
    assert all(r["tokens_per_s"] > 0 and r["entropy"] > 0 and r["loss"] > 0 for r in rows)
    assert json.loads((run / "data_stats.json").read_text())["kept"] == 20
    with pytest.raises(InputError, match="already exists"):
        train(config)


def test_resume_ignores_half_written_checkpoints_and_reproduces_the_losses(
    tiny_model_dir: Path, data: Path, tmp_path: Path
) -> None:
    values = {"steps": 8, "schedule": {"every": 2}, "warmup_ratio": 0.25}
    reference = read_metrics(train(toy_config(tiny_model_dir, data, tmp_path / "ref", **values)))
    run = train(toy_config(tiny_model_dir, data, tmp_path / "run", **values))

    # Make it look killed while writing checkpoint 6 after step 5 had been logged: checkpoint 6 was
    # renamed but never entered the manifest, a .tmp for it is half written, metrics end mid-row.
    manifest = read_manifest(run)
    manifest["checkpoints"] = [c for c in manifest["checkpoints"] if c["step"] <= 4]
    write_manifest(run, manifest)
    shutil.rmtree(run / "checkpoints" / "step-000008")
    (run / "checkpoints" / "step-000006.tmp").mkdir()
    (run / "checkpoints" / "step-000006.tmp" / "config.json").write_text("{")
    lines = (run / "metrics.jsonl").read_text().splitlines()[:5]
    (run / "metrics.jsonl").write_text("\n".join(lines) + '\n{"step": 6, "lo')

    resume(run)
    resumed = read_metrics(run)
    assert [tuple(r[k] for k in KEYS) for r in resumed] == [tuple(r[k] for k in KEYS) for r in reference]
    assert [c["step"] for c in read_manifest(run)["checkpoints"]] == [2, 4, 6, 8]
    assert not list((run / "checkpoints").glob("*.tmp"))
    final_hashes = [read_manifest(r)["checkpoints"][-1]["content_hash"] for r in (run, tmp_path / "ref")]
    assert final_hashes[0] == final_hashes[1]


def test_resume_before_any_checkpoint_starts_over(tiny_model_dir: Path, data: Path, tmp_path: Path) -> None:
    run = train(toy_config(tiny_model_dir, data, tmp_path / "run", steps=3))
    expected = read_metrics(run)
    manifest = read_manifest(run)
    manifest["checkpoints"] = []
    write_manifest(run, manifest)
    resume(run)
    assert [r["loss"] for r in read_metrics(run)] == [r["loss"] for r in expected]
