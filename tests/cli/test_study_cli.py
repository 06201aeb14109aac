"""`sftscope study status|run|convert-base` and `sftscope demo --quick` (the end-to-end smoke test)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.cli import demo as cli_demo
from sftscope.cli import study as cli_study
from sftscope.rundir import write_json_atomic
from sftscope.study.state import StateFile, StudyDir

runner = CliRunner()


def fake_study(root: Path) -> StudyDir:
    """A study directory as `study run` leaves it after a kill: one cell done, one mid-training."""
    study = StudyDir(root)
    cells = {"weak__long__micro__s1-aaaaaaaa": {}, "strong__long__micro__s1-bbbbbbbb": {}}
    write_json_atomic(study.manifest, {"cells": cells})
    done = StateFile(study.cell_state("weak__long__micro__s1-aaaaaaaa"), "a")
    for stage in ("data", "train", "eval"):
        done.mark(stage, "running")
        done.mark(stage, "done", seconds=12.0)
    busy = StateFile(study.cell_state("strong__long__micro__s1-bbbbbbbb"), "b")
    busy.mark("data", "done")
    busy.mark("train", "running", start_step=0)
    run = study.run_dir("strong__long__micro__s1-bbbbbbbb")
    run.mkdir(parents=True)
    (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 31)))
    (run / "manifest.json").write_text(json.dumps({"total_steps": 120, "checkpoints": []}))
    return study


def test_status_shows_every_cell_and_that_nothing_runs(tmp_path: Path) -> None:
    fake_study(tmp_path / "s")
    result = runner.invoke(app, ["study", "status", str(tmp_path / "s")], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    done = next(line for line in lines if "weak__long" in line)
    busy = next(line for line in lines if "strong__long" in line)
    assert done.count("done") == 3 and "0:36" in done
    assert "interrupted" in busy and "30/120" in busy  # no `study run` holds the lock
    assert "not running" in result.output and "not written yet" in result.output


def test_status_of_a_directory_that_is_no_study(tmp_path: Path) -> None:
    result = runner.invoke(app, ["study", "status", str(tmp_path)])
    assert result.exit_code == 2 and "not a study directory" in " ".join(result.output.split())


def test_run_reports_a_bad_spec_with_file_line_and_field(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("name: x\nbases: []\nconditions: []\npresets: []\neval: {suite: micro}\n")
    result = runner.invoke(app, ["study", "run", str(spec), "--dry-run"])
    assert result.exit_code == 2
    assert f"{spec}, line 2, field 'bases'" in " ".join(result.output.split())


def test_ctrl_c_says_the_finished_jobs_are_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    # Both commands call the runner through the names their modules imported.
    monkeypatch.setattr(cli_study, "run_study", interrupted)
    monkeypatch.setattr(cli_demo, "run_study", interrupted)
    for args, words in [
        (["study", "run", "studies/demo.yaml"], "the same command resumes the study"),
        (["demo"], "`sftscope demo` again resumes the study"),
    ]:
        result = runner.invoke(app, args)
        assert result.exit_code == 130, result.output
        assert f"interrupted: finished jobs are kept; {words}" in " ".join(result.output.split())


def test_convert_base_names_a_missing_gguf(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["study", "convert-base", str(tmp_path / "none.gguf"), "--out", str(tmp_path / "o")]
    )
    assert result.exit_code == 2 and "GGUF file does not exist" in " ".join(result.output.split())


@pytest.mark.slow
def test_demo_quick_end_to_end(tmp_path: Path) -> None:
    """The CI smoke test: the whole pipeline on the shipped micro-weak base, offline, on CPU."""
    cli = Path(sys.executable).with_name("sftscope")
    out = tmp_path / "demo"
    done = subprocess.run(
        [str(cli) if cli.exists() else "sftscope", "demo", "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    report = Path(done.stdout.strip().splitlines()[-1])
    assert report == out / "report.html" and report.stat().st_size > 10_000
    summary = (out / "report.md").read_text()
    for question in ("Optimization", "Data", "Capability", "Cost"):
        assert f"**{question}**" in summary  # one plain sentence per finding, with its interval
    runs = json.loads((out / "runs.json").read_text())
    assert sorted(r["condition"] for r in runs.values()) == ["answer-only", "long-cot"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["packages"]["torch"] and manifest["git"]["commit"]
