"""A study stops before any job, in one line, when a micro base is not built or a base pretrained
here uses another tokenizer than its data conditions."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.errors import InputError
from sftscope.models import micro
from sftscope.models.loading import BASES_DIR
from sftscope.study.bases import check_bases
from sftscope.study.cells import expand_cells
from sftscope.study.spec import load_study_spec

SPEC = """\
name: bases
root: .
bases:
  - {{name: b, model: {model}, capability: strong}}
conditions:
  - {{name: long, data: long.yaml}}
presets: [{{name: micro, preset: micro, overrides: {{steps: 8}}}}]
eval: {{suite: micro-quick}}
"""


def study(tmp_path: Path, model: str, data: str = "name: long\n") -> Path:
    (tmp_path / "long.yaml").write_text(data)
    spec = tmp_path / "study.yaml"
    spec.write_text(SPEC.format(model=model))
    return spec


def check(spec: Path) -> None:
    check_bases(expand_cells(load_study_spec(spec), spec), spec)


@pytest.fixture
def unbuilt(monkeypatch: pytest.MonkeyPatch) -> str:
    """A micro preset whose base nobody has pretrained."""
    name = "micro-unbuilt"
    monkeypatch.setitem(micro.PRESETS, name, micro.PRESETS["micro-weak"].model_copy(update={"name": name}))
    return name


@pytest.fixture
def other_vocabulary(tmp_path: Path) -> Path:
    """A base pretrained here (manifest with a preset) whose tokenizer is not the micro one."""
    base = tmp_path / "other-base"
    shutil.copytree(BASES_DIR / "micro-weak", base)
    tokenizer = micro.train_tokenizer(["What is 3 + 4?", "\\boxed{7}"] * 20, vocab_size=200)
    tokenizer.save_pretrained(base)
    return base


def test_an_unbuilt_micro_base_names_the_pretrain_command(tmp_path: Path, unbuilt: str) -> None:
    spec = study(tmp_path, unbuilt)
    with pytest.raises(InputError, match=f"run `sftscope pretrain --preset {unbuilt}` first"):
        check(spec)
    result = CliRunner().invoke(app, ["study", "run", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()  # stopped before any job or study directory
    plan = CliRunner().invoke(app, ["study", "run", str(spec), "--dry-run"])
    assert plan.exit_code == 0 and f"sftscope pretrain --preset {unbuilt}" in plan.output


def test_shipped_bases_share_the_data_tokenizer(tmp_path: Path) -> None:
    check(study(tmp_path, "micro-strong"))  # no error: default data tokenizer = the micro one


def test_a_base_with_another_tokenizer_than_the_data_is_one_line(
    tmp_path: Path, other_vocabulary: Path
) -> None:
    spec = study(tmp_path, str(other_vocabulary))
    with pytest.raises(InputError, match=r"base 'b' .* another tokenizer than the one condition 'long'"):
        check(spec)
    result = CliRunner().invoke(app, ["study", "run", str(spec), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1
    assert "field 'bases.b'" in result.output


def test_the_data_spec_may_name_the_base_tokenizer(tmp_path: Path, other_vocabulary: Path) -> None:
    check(study(tmp_path, str(other_vocabulary), data=f"name: long\ntokenizer: {other_vocabulary}\n"))
    # ... and a relative tokenizer folder resolves against the data spec, as the data stage does.
    check(study(tmp_path, str(other_vocabulary), data="name: long\ntokenizer: other-base\n"))


def test_a_base_not_pretrained_here_is_not_held_to_the_default_tokenizer(
    tmp_path: Path, other_vocabulary: Path
) -> None:
    (other_vocabulary / "manifest.json").write_text(json.dumps({"note": "converted from a hub model"}))
    check(study(tmp_path, str(other_vocabulary)))


def test_a_condition_of_external_checkpoints_has_no_data_tokenizer_to_compare(
    tmp_path: Path, other_vocabulary: Path
) -> None:
    spec = study(tmp_path, str(other_vocabulary))
    spec.write_text(spec.read_text().replace("data: long.yaml", "checkpoints: trl-out"))
    (tmp_path / "trl-out" / "checkpoint-2").mkdir(parents=True)
    check(spec)
