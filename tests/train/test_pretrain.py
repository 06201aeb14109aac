"""A tiny pretraining run end to end: corpus, tokenizer, init, the project's loop, export with manifest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.errors import InputError
from sftscope.hashing import file_sha256
from sftscope.models import micro
from sftscope.models.micro import MicroPreset
from sftscope.train import pretrain as pretrain_module
from sftscope.train.pretrain import checked_preset, pretrain

TINY = MicroPreset(
    name="micro-tiny",
    hidden_size=32,
    num_layers=2,
    num_heads=4,
    intermediate_size=64,
    max_positions=512,
    steps=3,
    batch_size=8,
)


@pytest.fixture
def tiny_preset(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Register a tiny preset and send the tokenizer to a temporary folder (the shipped one stays)."""
    monkeypatch.setitem(micro.PRESETS, TINY.name, TINY)
    monkeypatch.setattr(pretrain_module, "TOKENIZER_DIR", tmp_path / "tokenizer")
    return tmp_path


def test_tiny_pretrain_end_to_end(tiny_preset: Path) -> None:
    from sftscope.models.loading import load_model_and_tokenizer

    out = pretrain("micro-tiny", out=tiny_preset / "base", work=tiny_preset / "work", retrain_tokenizer=True)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"] == 3 and manifest["tokens_seen"] > 0 and manifest["corpus_examples"] == 24
    assert set(manifest["sha256"]) >= {"model.safetensors", "config.json", "tokenizer.json"}
    assert "trainer_state.pt" not in manifest["sha256"]
    for name, digest in manifest["sha256"].items():
        assert file_sha256(out / name) == digest
    model, tokenizer = load_model_and_tokenizer(str(out))
    assert tokenizer.chat_template and model.config.hidden_size == 32

    # Same preset and seeds on CPU (with the tokenizer the first run saved): bitwise equal weights.
    again = pretrain("micro-tiny", out=tiny_preset / "again", work=tiny_preset / "work2")
    assert file_sha256(again / "model.safetensors") == manifest["sha256"]["model.safetensors"]


def test_cli_pretrain(tiny_preset: Path) -> None:
    from sftscope.cli import app

    folders = ["--out", str(tiny_preset / "cli"), "--work", str(tiny_preset / "w")]
    options = ["--preset", "micro-tiny", *folders, "--steps", "2", "--retrain-tokenizer"]
    result = CliRunner().invoke(app, ["pretrain", *options])
    assert result.exit_code == 0, result.output
    assert json.loads((tiny_preset / "cli" / "manifest.json").read_text())["steps"] == 2


def test_cli_unknown_preset() -> None:
    from sftscope.cli import app

    result = CliRunner().invoke(app, ["pretrain", "--preset", "micro-huge"])
    assert result.exit_code == 2 and "micro-strong" in result.output


def test_a_preset_with_a_bad_corpus_names_preset_field_and_problem(monkeypatch: pytest.MonkeyPatch) -> None:
    bad = micro.PRESETS["micro2-weak"].model_copy(update={"name": "micro-bad", "corpus": {"countdwn": 1.0}})
    monkeypatch.setitem(micro.PRESETS, bad.name, bad)
    with pytest.raises(
        InputError, match="micro preset 'micro-bad', field 'corpus': unknown micro-world domain"
    ):
        checked_preset("micro-bad")


def test_cli_preset_with_a_bad_corpus_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from sftscope.cli import app

    bad = micro.PRESETS["micro2-weak"].model_copy(update={"name": "micro-bad", "corpus": {"countdown": 0.0}})
    monkeypatch.setitem(micro.PRESETS, bad.name, bad)
    result = CliRunner().invoke(app, ["pretrain", "--preset", "micro-bad"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "micro preset 'micro-bad'" in lines[0] and "'corpus'" in lines[0]


@pytest.mark.parametrize(
    ("name", "mix"),
    [
        ("micro2-weak", micro.PRIMITIVES_FIRST),
        ("micro2-strong", micro.PRIMITIVES_FIRST),
        ("micro3-weak", micro.PRIMITIVES_INLINE),
        ("micro3-strong", micro.PRIMITIVES_INLINE),
        ("micro4-weak", micro.PRIMITIVES_STATE),
        ("micro5-weak", micro.PRIMITIVES_MATCH),
    ],
)
def test_primitives_first_presets_pretrain_on_their_own_mix(name: str, mix: dict, tmp_path: Path) -> None:
    """Two steps of the real preset with the shipped tokenizer: the corpus is the preset's mix."""
    out = pretrain(name, out=tmp_path / "base", work=tmp_path / "work", steps=2)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["steps"] == 2 and set(manifest["mix"]) == set(mix)
    assert manifest["corpus_examples"] == 2 * micro.preset(name).batch_size
