"""The shared spec pieces: override parsing and its inverse, and the one rule for relative paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from sftscope.config.overrides import check_scopes, parse_overrides, scoped_to, to_overrides
from sftscope.errors import InputError
from sftscope.evaluate.spec import load_suite, load_task


def test_to_overrides_is_the_inverse_of_parse_overrides() -> None:
    values = {"lr": 0.0001, "schedule": {"every": 10, "steps": [3, 5]}, "suffix": None, "name": "a b"}
    items = to_overrides(values)
    assert items == ["lr=0.0001", "schedule.every=10", "schedule.steps=[3, 5]", "suffix=null", "name=a b"]
    assert parse_overrides(items) == values


def test_task_scopes_select_and_unknown_scopes_are_errors() -> None:
    items = ["source.n=4", "countdown:sampling.n=1", "aiw:source.n=2"]
    assert scoped_to(items, "countdown") == ["source.n=4", "sampling.n=1"]
    assert scoped_to(items, "chain_sum") == ["source.n=4"]
    with pytest.raises(InputError, match="names task 'aiw'"):
        check_scopes(items, ["countdown"])


def _task_with_file(folder: Path, path: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    spec = folder / "task.yaml"
    spec.write_text(
        f"name: t\ndomain: general\nsource: {{kind: file, path: {path}}}\nscorer: exact\n", encoding="utf-8"
    )
    return spec


def test_a_relative_path_is_relative_to_the_spec_file_that_names_it(tmp_path: Path) -> None:
    spec = _task_with_file(tmp_path / "tasks", "rows.jsonl")
    elsewhere = tmp_path / "cwd"
    elsewhere.mkdir()
    before = Path.cwd()
    os.chdir(elsewhere)
    try:
        assert load_task(spec).source.path == str(tmp_path / "tasks" / "rows.jsonl")
        # A command-line override names no spec file: its path is the working directory's.
        overridden = load_task(spec, ["source.path=mine.jsonl"])
        assert overridden.source.path == str(elsewhere / "mine.jsonl")
        # A suite's override is relative to the suite file.
        suite = tmp_path / "suites" / "s.yaml"
        suite.parent.mkdir()
        suite.write_text("name: s\ntasks: [{task: ../tasks/task.yaml, overrides: [source.path=x.jsonl]}]\n")
        assert load_suite(suite)[1][0].source.path == str(tmp_path / "suites" / "x.jsonl")
    finally:
        os.chdir(before)
