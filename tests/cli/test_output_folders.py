"""Nothing of the user's is deleted: every command that writes a folder refuses one holding files it did
not write unless given --overwrite, replaces its own earlier output only once the new one is complete,
and leaves no temporary sibling behind. (`data build` is covered in test_data_cli.py.)"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.errors import InputError
from sftscope.outdir import MARKER, claim, fresh_output

sys.path.insert(0, str(Path(__file__).parents[1] / "train"))  # --import-mode=importlib: helpers by path
sys.path.insert(0, str(Path(__file__).parents[1] / "study"))
from test_train_support import toy_data_dir

runner = CliRunner()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def users_folder(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("years of work")
    return path


def untouched(path: Path) -> bool:
    return [p.name for p in path.iterdir()] == ["notes.txt"] and (
        path / "notes.txt"
    ).read_text() == "years of work"


def test_a_fresh_output_replaces_only_its_own_and_only_when_complete(tmp_path: Path) -> None:
    out = tmp_path / "out"
    with fresh_output(out, "x", overwrite=False) as tmp:
        assert tmp.parent == tmp_path and tmp != out and not out.exists()
        (tmp / "a").write_text("1")
    assert (out / "a").read_text() == "1" and (out / MARKER).is_file()
    with pytest.raises(RuntimeError), fresh_output(out, "x", overwrite=False) as tmp:
        (tmp / "a").write_text("2")
        raise RuntimeError("killed half-way")
    assert (out / "a").read_text() == "1"  # the earlier output, whole
    with fresh_output(out, "x", overwrite=False) as tmp:
        (tmp / "b").write_text("3")
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "b"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    file = tmp_path / "file"
    file.write_text("")
    with pytest.raises(InputError, match="not a folder"):
        claim(file, "x")
    claim(tmp_path / "empty", "x")  # absent
    (tmp_path / "empty").mkdir()
    claim(tmp_path / "empty", "x")  # empty


def test_pretrain_refuses_a_users_out_or_work_before_training(tmp_path: Path) -> None:
    mine = users_folder(tmp_path / "mine")
    code, output = invoke(
        "pretrain", "--preset", "micro-weak", "--out", str(mine), "--work", str(tmp_path / "w")
    )
    assert code == 2 and "not written by sftscope pretrain" in output and "--overwrite" in output, output
    assert untouched(mine) and not (tmp_path / "w").exists()
    work = tmp_path / "work"
    users_folder(work / "run")
    code, output = invoke(
        "pretrain", "--preset", "micro-weak", "--out", str(tmp_path / "b"), "--work", str(work)
    )
    assert code == 2 and "not written by sftscope train" in output, output
    assert untouched(work / "run")


def test_an_export_replaces_an_earlier_one_and_a_users_folder_only_with_overwrite(tmp_path: Path) -> None:
    from sftscope.train.pretrain import export_base

    checkpoint = tmp_path / "checkpoint"
    checkpoint.mkdir()
    (checkpoint / "config.json").write_text("{}")
    (checkpoint / "trainer_state.pt").write_bytes(b"state")
    out = export_base(checkpoint, tmp_path / "base", {"preset": {}})
    assert set(json.loads((out / "manifest.json").read_text())["sha256"]) == {"config.json"}
    (out / MARKER).unlink()  # as the shipped bases are: recognised by their manifest
    export_base(checkpoint, out, {"preset": {}})
    mine = users_folder(tmp_path / "mine")
    with pytest.raises(InputError, match="not written by sftscope pretrain"):
        export_base(checkpoint, mine, {"preset": {}})
    assert untouched(mine)
    export_base(checkpoint, mine, {"preset": {}}, overwrite=True)
    assert not (mine / "notes.txt").exists() and (mine / "config.json").is_file()


def test_convert_base_refuses_a_users_folder_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    mine = users_folder(tmp_path / "mine")
    gguf = tmp_path / "model.gguf"
    gguf.write_bytes(b"not a gguf")
    code, output = invoke("study", "convert-base", str(gguf), "--out", str(mine))
    assert code == 2 and "not written by sftscope study convert-base" in output, output
    assert untouched(mine)
    code, output = invoke("study", "convert-base", str(gguf), "--out", str(mine), "--overwrite")
    assert code != 0 and untouched(mine)  # the conversion failed: the folder is as it was
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine", "model.gguf"]


def test_train_refuses_a_users_folder_but_restarts_a_run_killed_before_its_first_checkpoint(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    data = toy_data_dir(tmp_path / "data", count=4)
    mine = users_folder(tmp_path / "mine")
    common = ("steps=1", f"model={tiny_model_dir}", f"data={data}", "batch_size=2", "progress=false")
    code, output = invoke("train", *common, f"out={mine}")
    assert code == 2 and "not written by sftscope train; give an empty or new folder" in output, output
    assert "--overwrite" in output and untouched(mine)
    code, output = invoke("train", *common, f"out={mine}", "--overwrite")  # asked for: replaced
    assert code == 0 and (mine / "manifest.json").is_file() and not untouched(mine), output
    code, output = invoke("train", *common, f"out={mine}")  # a run now: resumed, never replaced
    assert code == 2 and "a run already exists here" in output, output
    killed = tmp_path / "killed"
    (killed / "checkpoints").mkdir(parents=True)
    (killed / "config.yaml").write_text("model: x\n")  # a run killed before its manifest
    code, output = invoke("train", *common, f"out={killed}")
    assert code == 0 and (killed / MARKER).is_file() and (killed / "manifest.json").is_file(), output


def test_study_run_refuses_a_users_folder_unless_overwrite(tmp_path: Path) -> None:
    from test_study_runner import FakeStages, make_study, run

    from sftscope.study.runner import run_study

    spec = make_study(tmp_path)
    mine = users_folder(tmp_path / "mine")
    code, output = invoke("study", "run", str(spec), "--out", str(mine))
    assert code == 2 and "not written by sftscope study run" in output, output
    assert untouched(mine)
    outcome = run_study(spec, mine, overwrite=True, executor_factory=lambda s, _: _local(s, FakeStages()))
    assert outcome.failed == [] and (mine / "notes.txt").read_text() == "years of work"
    run(spec, mine, FakeStages())  # its own study now: resumed without --overwrite


def _local(spec, stages):  # type: ignore[no-untyped-def]
    from sftscope.study.executors import LocalExecutor

    return LocalExecutor(spec.executor.workers, run=stages)
