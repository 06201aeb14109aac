"""Config resolution: preset < YAML file < key=value overrides; bad keys name the field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sftscope.config.legacy import SpecFormWarning
from sftscope.config.overrides import parse_overrides
from sftscope.errors import InputError
from sftscope.train.config import load_config
from sftscope.train.presets import PRESETS


def _file(tmp_path: Path, **values: object) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump({"root": ".", "model": "m", "data": "d", "out": "o", **values}))
    return path


def test_overrides_are_yaml_values_on_dotted_keys() -> None:
    assert parse_overrides(["lr=1e-4", "schedule.every=10", "schedule.steps=[3, 5]", "suffix=null"]) == {
        "lr": "1e-4",
        "schedule": {"every": 10, "steps": [3, 5]},
        "suffix": None,
    }
    with pytest.raises(InputError, match="not key=value"):
        parse_overrides(["lr"])


def test_preset_then_file_then_overrides(tmp_path: Path) -> None:
    config = load_config(_file(tmp_path, lr=2e-5), ["schedule.every=5", "epochs=3"], preset="paper")
    assert config.lr == 2e-5  # the file beats the preset
    assert config.epochs == 3  # the command line beats both
    assert config.schedule.every == 5 and config.schedule.log_spaced is False  # merged key by key
    assert config.batch_size == 256 and config.warmup_ratio == 0.1 and config.preset == "paper"
    assert load_config(_file(tmp_path, preset="micro")).dtype == "float32"  # a preset named in the file


def test_every_preset_validates() -> None:
    for name in PRESETS:
        config = load_config(None, ["model=m", "data=d", "out=o"], preset=name)
        assert config.preset == name
    paper16 = load_config(None, ["model=m", "data=d", "out=o"], preset="paper-16ep-lr1e-4-constant")
    assert (paper16.epochs, paper16.lr, paper16.lr_schedule) == (16, 1e-4, "constant")


@pytest.mark.parametrize(
    ("overrides", "field"),
    [(["bogus=1"], "bogus"), (["schedule.evry=2"], "schedule.evry"), (["lr=fast"], "lr")],
)
def test_bad_keys_and_values_name_the_field(tmp_path: Path, overrides: list[str], field: str) -> None:
    with pytest.raises(InputError) as info:
        load_config(_file(tmp_path), overrides)
    assert info.value.field == field


def test_unknown_preset_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown preset 'nope'"):
        load_config(_file(tmp_path), preset="nope")
    with pytest.raises(InputError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_example_specs_validate() -> None:
    specs = sorted((Path(__file__).parents[2] / "specs" / "train").glob("*.yaml"))
    assert specs
    for spec in specs:
        assert load_config(spec).out.startswith(str(spec.parents[2] / "runs"))  # root: the repository


def test_file_errors_name_their_line(tmp_path: Path) -> None:
    path = tmp_path / "train.yaml"
    path.write_text("model: m\ndata: d\nout: o\nlrr: 3\nschedule:\n  evry: 2\nroot: .\n")
    with pytest.raises(InputError) as info:
        load_config(path, ["epochs=x"])
    error = info.value
    assert (error.file, error.line, error.field) == (f"{path} + command line", 4, "lrr")
    # Every problem is listed, a value from the command line without a line.
    assert error.reason.split("\n")[1:] == [
        "  also line 6, field 'schedule.evry': unknown field",
        "  also field 'epochs': Input should be a valid number, unable to parse string as a number",
    ]
    path.write_text("model: m\ndata: d\nout: o\nlr: 1e-4\nroot: .\n")
    with pytest.raises(InputError) as info:
        load_config(path, ["lr=fast"])
    assert (info.value.line, info.value.field) == (None, "lr")  # the bad value is the command line's
    path.write_text("model: m\nlr: 1e-4\nlr: 2e-4\n")
    with pytest.raises(InputError, match="duplicate key") as info:
        load_config(path)
    assert (info.value.line, info.value.field) == (3, "lr")
    path.write_text("model: m\nlr: [1\nout: o\nroot: .\n")
    with pytest.raises(InputError, match="invalid YAML") as info:
        load_config(path)
    assert info.value.line == 3


def test_paths_resolve_against_the_files_root_and_the_old_form_warns(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (tmp_path / "base").mkdir()
    path = folder / "train.yaml"
    path.write_text("root: ..\nmodel: base\ndata: d\nout: runs/x\n")
    config = load_config(path, ["lr=1e-4"])
    assert (config.model, config.data, config.out) == tuple(
        str(tmp_path.resolve() / p) for p in ("base", "d", "runs/x")
    )
    assert load_config(path, ["out=elsewhere"]).out == "elsewhere"  # an override is the caller's path
    path.write_text("root: ..\nmodel: micro-strong\ndata: d\nout: o\n")
    assert load_config(path).model == "micro-strong"  # a name, not a path under root
    path.write_text("model: m\ndata: d\nout: o\n")
    with pytest.warns(SpecFormWarning, match="add `root: DIR`"):
        assert load_config(path).out == "o"  # the old form: the working directory, one more release
    path.write_text("root: [a]\nmodel: m\ndata: d\nout: o\n")
    with pytest.raises(InputError, match="line 1, field 'root'"):
        load_config(path)
