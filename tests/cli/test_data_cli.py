"""`sftscope data build` and `sftscope data show` end to end on a tiny Countdown spec."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.data.io import read_records
from sftscope.data.spec import load_spec

SPEC = """\
name: tiny-countdown
description: A few long-CoT Countdown traces, verified, a third corrupted.
seed: 3
sources:
  - {kind: countdown, n: 24, style: long-cot, settings: {max_numbers: 4}}
transforms:
  - {kind: verify, scorer: countdown, workers: 1}
  - {kind: corrupt, rate: 0.34}
"""


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())  # rich wraps at the terminal width


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path) -> Path:
    folder = tmp_path_factory.mktemp("data-cli")
    (folder / "spec.yaml").write_text(SPEC)
    code, output = invoke(
        "data",
        "build",
        str(folder / "spec.yaml"),
        "--out",
        str(folder / "out"),
        "--tokenizer",
        str(tiny_model_dir),
    )
    assert code == 0, output
    assert "wrote 24 rows" in output and "pass rate 100.0%" in output
    return folder


def test_build_writes_rows_resolved_spec_and_card(built: Path, tiny_model_dir: Path) -> None:
    out = built / "out"
    rows = read_records(out / "train.jsonl").records
    assert len(rows) == 24
    card = json.loads((out / "card.json").read_text())
    assert card["content_hash"] == hashlib.sha256((out / "train.jsonl").read_bytes()).hexdigest()
    assert card["sources"] == [
        {"source": "countdown:long-cot", "kind": "countdown", "role": "train", "rows": 24, "bad_rows": 0}
    ]
    assert [t["name"] for t in card["transforms"]] == ["verify", "corrupt"]
    assert card["verification"]["pass_rate"] == 1.0
    assert card["corrupted"]["share"] == pytest.approx(8 / 24)
    assert sum(card["corrupted"]["kinds"].values()) == sum("corruption" in r.meta for r in rows) == 8
    assert 0 < card["backtracking_share"] <= 1
    lengths = card["lengths"]
    assert lengths["unit"] == "tokens" and lengths["tokenizer"] == str(tiny_model_dir)
    total = lengths["total"]
    assert total["min"] <= total["p50"] <= total["p90"] <= total["p99"] <= total["max"]
    assert sum(b["count"] for b in total["histogram"]) == 24
    assert lengths["completion"]["max"] < total["max"]
    resolved = load_spec(out / "spec.yaml")
    assert resolved.name == "tiny-countdown" and resolved.tokenizer == str(tiny_model_dir)
    assert "# Data card: tiny-countdown" in (out / "card.md").read_text()


def test_rebuilding_gives_the_same_content_hash(built: Path, tiny_model_dir: Path) -> None:
    code, _ = invoke(
        "data", "build", str(built / "out" / "spec.yaml"), "--out", str(built / "again"), "--skip-bad"
    )
    assert code == 0
    first, again = (json.loads((built / d / "card.json").read_text()) for d in ("out", "again"))
    assert again["content_hash"] == first["content_hash"]


def test_show_prints_the_first_examples(built: Path) -> None:
    rows = read_records(built / "out" / "train.jsonl").records
    code, output = invoke("data", "show", str(built / "out"), "-n", "2")
    assert code == 0
    assert "tiny-countdown: 24 rows" in output
    assert output.count("Numbers:") == 2 and f"answer: {rows[0].answer}" in output
    assert rows[2].id not in output


def test_show_on_a_missing_directory_is_a_clear_error(tmp_path: Path) -> None:
    code, output = invoke("data", "show", str(tmp_path / "nothing"))
    assert code == 2 and "no such data file" in output


def test_a_tokenizer_that_cannot_load_fails_before_anything_is_built(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    out = tmp_path / "out"
    code, output = invoke(
        "data", "build", str(tmp_path / "spec.yaml"), "--out", str(out), "--tokenizer", str(tmp_path / "nope")
    )
    assert code == 2 and "could not load tokenizer" in output and "field 'tokenizer'" in output
    assert not out.exists()


def _build(spec: Path, out: Path, *extra: str) -> tuple[int, str]:
    return invoke("data", "build", str(spec), "--out", str(out), "--skip-bad", *extra)


def test_a_folder_of_the_users_is_never_replaced_without_overwrite(built: Path, tmp_path: Path) -> None:
    spec = built / "out" / "spec.yaml"
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "thesis.tex").write_text("years of work")
    code, output = _build(spec, mine)
    assert code == 2 and "not empty and was not written by sftscope data build" in output, output
    assert "--overwrite" in output and [p.name for p in mine.iterdir()] == ["thesis.tex"]
    code, output = _build(spec, mine, "--overwrite")
    assert code == 0 and (mine / "card.json").is_file() and not (mine / "thesis.tex").exists(), output
    # An earlier build is ours: rebuilt in place without --overwrite, the same way a pre-marker one is.
    assert _build(spec, mine)[0] == 0
    (mine / ".sftscope").unlink()
    assert _build(spec, mine)[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]  # no temporary sibling left


def test_a_build_that_fails_while_writing_leaves_the_old_one_whole(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    import sftscope.data.build as build

    out = tmp_path / "out"
    assert _build(built / "out" / "spec.yaml", out)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full(*args: object, **kwargs: object) -> str:
        raise OSError(errno.ENOSPC, "No space left on device", str(out / "card.md"))

    monkeypatch.setattr(build, "card_markdown", full)
    code, output = _build(built / "out" / "spec.yaml", out)
    assert code == 2 and "not enough space on the device; free some and run the same command" in output
    assert "Traceback" not in output and len(output.split("error:")) == 2, output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_a_disk_too_full_for_the_rows_is_refused_before_writing(
    built: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil
    from collections import namedtuple

    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage(10**9, 10**9 - 100, 100))
    code, output = _build(built / "out" / "spec.yaml", tmp_path / "out")
    assert code == 2 and "train.jsonl needs at least" in output and "0.0 MB are free" in output, output
    assert not (tmp_path / "out").exists()
