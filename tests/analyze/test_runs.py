"""Run metadata: from the caller, from the run directory, or recorded as unknown."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftscope.analysis_file import RunInfo
from sftscope.analyze.runs import read_runs_file, resolve_runs
from sftscope.errors import InputError


def test_caller_metadata_wins(tmp_path: Path) -> None:
    runs, notes = resolve_runs(["a"], tmp_path, {"a": {"condition": "long-cot", "base": "strong", "seed": 2}})
    assert runs == [RunInfo(run="a", condition="long-cot", base="strong", seed=2)]
    assert notes == []


def test_run_directory_config_and_manifest(tmp_path: Path) -> None:
    run = tmp_path / "runs" / "r1"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(
        "model: micro-strong\ndata: /x/data/countdown-short-cot/\npreset: micro\nseed: 3\n"
    )
    (run / "manifest.json").write_text(json.dumps({"base_model": "ignored-when-config-has-it"}))
    runs, _ = resolve_runs(["r1"], tmp_path)
    assert runs == [
        RunInfo(run="r1", condition="countdown-short-cot", base="micro-strong", preset="micro", seed=3)
    ]


def test_single_run_store_reads_its_own_directory(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text(json.dumps({"base_model": "/models/micro-weak"}))
    runs, _ = resolve_runs(["anything"], tmp_path)
    assert runs[0].base == "micro-weak"


def test_unknown_runs_are_noted(tmp_path: Path) -> None:
    runs, notes = resolve_runs(["x", "y"], tmp_path)
    assert [r.condition for r in runs] == ["unknown", "unknown"]
    assert len(notes) == 2


def test_bad_manifest_names_the_file(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "manifest.json").write_text("{not json")
    with pytest.raises(InputError, match=r"manifest\.json"):
        resolve_runs(["r"], tmp_path)


def test_runs_file_is_read_and_bad_entries_are_located(tmp_path: Path) -> None:
    path = tmp_path / "runs.json"
    path.write_text(json.dumps({"a": {"condition": "long-cot", "base": "strong", "run_dir": "/r/a"}}))
    meta = read_runs_file(path)
    runs, _ = resolve_runs(["a"], tmp_path, meta)
    assert runs == [RunInfo(run="a", condition="long-cot", base="strong", run_dir="/r/a")]
    # A misspelt key would leave the run's base unknown without a word: it is an error at its line.
    path.write_text(json.dumps({"a": {"condition": "long-cot", "bsae": "strong", "seed": "two"}}, indent=2))
    with pytest.raises(InputError) as caught:
        read_runs_file(path)
    error = caught.value
    assert (error.line, error.field) == (4, "a.bsae")
    assert error.reason.split("\n")[1:] == [
        "  also line 5, field 'a.seed': Input should be a valid integer, unable to parse string as an integer"
    ]
    for text, words in [("[1]", "expected an object"), ('{"a": ', "malformed JSON")]:
        path.write_text(text)
        with pytest.raises(InputError, match=words):
            read_runs_file(path)
    with pytest.raises(InputError, match="file not found"):
        read_runs_file(tmp_path / "missing.json")
