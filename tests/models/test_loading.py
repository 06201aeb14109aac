"""Model loading: the shipped micro bases by name, and the real-model path (SmolLM2 GGUF, offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sftscope.errors import InputError
from sftscope.models.loading import (
    BASES_DIR,
    check_weights,
    load_model_and_tokenizer,
    resolve_model,
)
from sftscope.train.pretrain import file_sha256

SHIPPED = ["micro-weak", "micro-strong", "micro2-weak", "micro2-strong", "micro3-weak", "micro3-strong"]


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_base_matches_its_manifest(name: str) -> None:
    folder = Path(resolve_model(name))
    assert folder == BASES_DIR / name
    manifest = json.loads((folder / "manifest.json").read_text())
    shipped = {p.name for p in folder.iterdir()} - {"manifest.json"}
    assert set(manifest["sha256"]) == shipped
    for file, digest in manifest["sha256"].items():
        assert file_sha256(folder / file) == digest, file
    assert manifest["steps"] > 0 and manifest["corpus_seed"] == manifest["preset"]["corpus_seed"]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 20 * 2**20


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_base_loads_by_name_and_answers(name: str) -> None:
    import torch

    from sftscope.data.chat import render_prompt
    from sftscope.data.microworld import generate

    model, tokenizer = load_model_and_tokenizer(name)
    assert tokenizer.pad_token_id != tokenizer.eos_token_id and len(tokenizer) == model.config.vocab_size
    example = generate("safety_forbidden", split="eval", n=1)[0]
    ids = tokenizer(render_prompt(tokenizer, example.prompt), return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        out = model.generate(**ids, max_new_tokens=30, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert tokenizer.decode(out[0, ids["input_ids"].shape[1] :], skip_special_tokens=True).strip()


def test_directory_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no model weights"):
        check_weights(tmp_path)


def test_truncated_weights_are_found_before_loading(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    data = (BASES_DIR / "micro-weak" / "model.safetensors").read_bytes()
    weights.write_bytes(data)
    check_weights(tmp_path)  # the whole file is fine
    weights.write_bytes(data[: len(data) // 2])  # a copy cut short
    with pytest.raises(InputError, match="unreadable weights") as caught:
        check_weights(tmp_path)
    assert caught.value.file == str(weights)


@pytest.mark.slow
def test_smollm2_converts_offline_and_loads(smollm2_dir: Path) -> None:
    assert (smollm2_dir / "model.safetensors").exists()
    model, tokenizer = load_model_and_tokenizer(str(smollm2_dir))
    assert model.config.model_type == "llama" and 130e6 < model.num_parameters() < 140e6
    assert tokenizer.chat_template and tokenizer.pad_token_id != tokenizer.eos_token_id


@pytest.mark.slow
def test_smollm2_fine_tunes_two_steps(smollm2_dir: Path, tmp_path: Path) -> None:
    from sftscope.data.io import write_records
    from sftscope.data.microworld import generate
    from sftscope.train.config import CheckpointSchedule, TrainConfig
    from sftscope.train.loop import train

    write_records(generate("arithmetic", split="train", n=4), tmp_path / "train.jsonl")
    config = TrainConfig(
        model=str(smollm2_dir),
        data=str(tmp_path),
        out=str(tmp_path / "run"),
        steps=2,
        batch_size=2,
        lr=1e-5,
        max_length=256,
        schedule=CheckpointSchedule(),
        report_to=[],
        progress=False,
    )
    run = train(config)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    rows: list[dict[str, Any]] = [json.loads(line) for line in lines]
    assert [r["step"] for r in rows] == [1, 2] and all(r["loss"] == r["loss"] for r in rows)
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["checkpoints"][-1]["step"] == 2
