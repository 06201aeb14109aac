"""The one hub-dataset model of both spec kinds: default splits, data files, and the data card label."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from sftscope.data.sources import HfSource, source_label
from sftscope.data.spec import load_spec
from sftscope.evaluate.sources import HfSource as TaskHfSource


def test_each_spec_kind_has_its_default_split_and_data_files_have_one() -> None:
    assert HfSource(path="a/b").split_name == "train" and TaskHfSource(path="a/b").split_name == "test"
    assert TaskHfSource(path="a/b", split="validation").split_name == "validation"
    assert TaskHfSource(path="a/b", data_files=["x.jsonl"]).split_name == "train"
    for kind in (HfSource, TaskHfSource):
        with pytest.raises(ValidationError, match="subset or data_files, not both"):
            kind(path="a/b", subset="c", data_files=["x.jsonl"])
        with pytest.raises(ValidationError, match="data files form the one split 'train', not 'test'"):
            kind(path="a/b", split="test", data_files=["x.jsonl"])


def test_training_data_reads_data_files_of_a_snapshot_folder(tmp_path: Path) -> None:
    folder = tmp_path / "snapshot"
    folder.mkdir()
    for name in ("part-a.jsonl", "part-b.jsonl", "unused.jsonl"):
        row = {"q": f"question of {name}", "r": "<think>work</think>answer", "a": "1"}
        (folder / name).write_text(json.dumps(row) + "\n")
    (tmp_path / "spec.yaml").write_text(
        "sources:\n  - kind: hf\n    path: snapshot\n    data_files: [part-a.jsonl, part-b.jsonl]\n"
        "    mapping: {question: q, response: r, answer: a}\n"
    )
    (source,) = load_spec(tmp_path / "spec.yaml").sources
    assert source.path == str(folder.resolve())  # resolved against the spec file's folder
    rows = source.read(source.mapping, require_response=True).records
    assert sorted(r.question for r in rows) == ["question of part-a.jsonl", "question of part-b.jsonl"]
    assert source_label(source) == f"{folder.resolve()}:train"
