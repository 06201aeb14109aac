"""`sftscope train CONFIG key=value --preset --resume`: output, overrides and error lines."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import typer
import yaml
from typer.testing import CliRunner

from sftscope.cli import train as train_cli
from sftscope.train.checkpoints import read_manifest
from sftscope.train.config import load_config

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))  # --import-mode=importlib: helpers by path
from test_train_support import toy_data_dir


def _app() -> typer.Typer:
    app = typer.Typer(pretty_exceptions_enable=False)
    app.callback()(lambda: None)  # a group, whatever other stages have registered
    train_cli.register(app)
    return app


def _config(tmp_path: Path, model: Path) -> Path:
    path = tmp_path / "train.yaml"
    data = toy_data_dir(tmp_path / "data", count=8)
    values = {
        "model": str(model),
        "data": str(data),
        "out": str(tmp_path / "run"),
        "steps": 3,
        "batch_size": 4,
    }
    path.write_text(yaml.safe_dump(values))
    return path


def test_train_applies_overrides_and_prints_the_run_dir(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, tiny_model_dir)
    result = CliRunner().invoke(
        _app(),
        ["train", str(config), "lr=1e-3", "schedule.every=1", "schedule.log_spaced=false", "progress=false"],
    )
    assert result.exit_code == 0, result.output
    run = Path(result.stdout.strip().splitlines()[-1])
    assert run == tmp_path / "run"
    saved = load_config(run / "config.yaml")
    assert saved.lr == 1e-3 and saved.schedule.every == 1
    assert [c["step"] for c in read_manifest(run)["checkpoints"]] == [1, 2, 3]

    again = CliRunner().invoke(_app(), ["train", "--resume", str(run)])
    assert again.exit_code == 0, again.output  # nothing left to do: it finishes at once
    assert [c["step"] for c in read_manifest(run)["checkpoints"]] == [1, 2, 3]


def test_errors_are_one_line_naming_the_field(tiny_model_dir: Path, tmp_path: Path) -> None:
    config = _config(tmp_path, tiny_model_dir)
    cases = [
        (["train", str(config), "schedule.evry=3"], "field 'schedule.evry': unknown field"),
        (["train", str(config), "--preset", "papr"], "unknown preset 'papr'"),
        (["train", "--resume", str(tmp_path), "lr=1"], "not a training run directory (no config.yaml)"),
        (["train", str(config), "--resume-from", "2"], "--resume-from needs --resume RUN"),
        (["train", "model=m", "data=d"], "field 'out'"),
        (["train", "--resume", str(tmp_path)], "not a training run directory (no config.yaml)"),
    ]
    for args, message in cases:
        result = CliRunner().invoke(_app(), args)
        assert result.exit_code == 2, result.output
        assert message in " ".join(result.output.split()), result.output


def test_ctrl_c_says_how_to_resume(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sftscope.cli import train as cli_train

    def interrupted(*args: object, **kwargs: object) -> Path:
        raise KeyboardInterrupt

    # The command calls the loop through the names it imported.
    monkeypatch.setattr(cli_train, "train", interrupted)
    monkeypatch.setattr(cli_train, "resume_run", interrupted)
    folder = tmp_path / ("long-" * 20)  # a run path longer than a line is still printed unbroken
    folder.mkdir()
    config = _config(folder, tiny_model_dir)
    for args in (["train", str(config)], ["train", "--resume", str(folder / "run")]):
        result = CliRunner().invoke(_app(), args)
        assert result.exit_code == 130, result.output
        expected = f"continue from the last checkpoint with `sftscope train --resume {folder / 'run'}`"
        assert expected in " ".join(result.output.split())
