"""Each class of bad input stops with an error naming file, line and field (also through the CLI,
with exit code 2); `--skip-bad` skips such rows, counts them and lists them in the data card."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.data.io import FieldMapping, read_records
from sftscope.errors import InputError

GOOD = {"prompt": [{"role": "user", "content": "1+1?"}], "final": "\\boxed{2}", "answer": "2"}

# class -> (the bad line, the field the error must name, words of the reason)
BAD_LINES: dict[str, tuple[bytes, str | None, str]] = {
    "malformed": (b'{"prompt": [{"role": "user", "content": "x"}], "final": ', None, "malformed JSON"),
    "missing": (json.dumps({"final": "\\boxed{2}", "answer": "2"}).encode(), "prompt", "Field required"),
    "empty": (json.dumps({**GOOD, "final": "  "}).encode(), "final", "response is empty"),
    "undecodable": (json.dumps({**GOOD, "final": "PLACEHOLDER"}).encode().replace(b"PLACEHOLDER", b"caf\xe9"),
                    "final", "cannot be decoded as UTF-8"),
}  # fmt: skip


def write_jsonl(path: Path, bad: list[bytes], good: int = 2) -> Path:
    """`good` good rows, then each bad line; the bad lines are at line good+1, good+2, ..."""
    lines = [json.dumps({**GOOD, "answer": str(i)}).encode() for i in range(good)] + bad
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def spec_for(tmp_path: Path, data: Path) -> Path:
    spec = tmp_path / "spec.yaml"
    source = f"{{kind: file, path: {data.name}}}"
    spec.write_text(f"sources:\n  - {source}\ntransforms:\n  - {{kind: dedupe, by: id}}\n")
    return spec


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    # rich wraps long lines at the terminal width: compare with whitespace collapsed.
    return result.exit_code, " ".join(result.output.split())


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_bad_row_stops_reading_with_file_line_and_field(tmp_path: Path, kind: str) -> None:
    line, field, reason = BAD_LINES[kind]
    path = write_jsonl(tmp_path / "rows.jsonl", [line])
    with pytest.raises(InputError) as error:
        read_records(path)
    assert (error.value.file, error.value.line, error.value.field) == (str(path), 3, field)
    assert reason in error.value.reason


@pytest.mark.parametrize("kind", list(BAD_LINES))
def test_bad_row_through_the_cli_exits_2_with_one_clear_line(tmp_path: Path, kind: str) -> None:
    line, field, reason = BAD_LINES[kind]
    data = write_jsonl(tmp_path / "rows.jsonl", [line])
    code, output = run("data", "build", str(spec_for(tmp_path, data)), "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"error: {data}, line 3" in output and reason in output
    if field is not None:
        assert f"field '{field}'" in output
    assert "Traceback" not in output and not (tmp_path / "out" / "train.jsonl").exists()


def test_a_foreign_row_read_as_native_names_its_columns_and_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "foreign.jsonl"
    path.write_text(json.dumps({"question": "2+2?", "answer": 4}) + "\n")
    with pytest.raises(InputError) as error:
        read_records(path)
    first, *also = error.value.reason.split("\n")
    assert (error.value.line, error.value.field) == (1, "question")
    assert first.startswith("unknown field (a native row has only id, prompt,") and "mapping" in first
    assert sorted(also) == [
        "  also field 'answer': Input should be a valid string",
        "  also field 'prompt': Field required",
    ]


def test_mapped_rows_name_the_source_column(tmp_path: Path) -> None:
    path = tmp_path / "foreign.jsonl"
    path.write_text(
        json.dumps({"question": "q", "response": "r", "answer": 1}) + "\n" + json.dumps({"question": "q"})
    )
    mapping = FieldMapping(question="question", response="response", answer="answer")
    with pytest.raises(InputError) as error:
        read_records(path, mapping=mapping)
    assert (error.value.line, error.value.field) == (2, "response")
    path.write_text(json.dumps({"question": "q", "response": "", "answer": 1}) + "\n")
    with pytest.raises(InputError, match="response is empty") as error:
        read_records(path, mapping=mapping)
    assert error.value.field == "response"


def test_escaped_unpaired_surrogate_is_undecodable_text(tmp_path: Path) -> None:
    path = tmp_path / "rows.jsonl"
    path.write_text(json.dumps({**GOOD, "prompt": [{"role": "user", "content": "\ud800"}]}) + "\n")
    with pytest.raises(InputError, match="unpaired surrogate") as error:
        read_records(path)
    assert (error.value.line, error.value.field) == (1, "prompt[0].content")


@pytest.mark.parametrize(
    ("spec_text", "line", "field", "reason"),
    [
        ("sources:\n  - {kind: file, path: rows.jsonl}\ntransforms:\n  - kind: shuffle\n", 4,
         "transforms[0].kind", "unknown kind 'shuffle'"),
        ("sources:\n  - kind: file\n    path: rows.jsonl\n    skip: 3\n", 4, "sources[0].skip",
         "unknown key"),
    ],
)  # fmt: skip
def test_unknown_transform_or_spec_key_through_the_cli(
    tmp_path: Path, spec_text: str, line: int, field: str, reason: str
) -> None:
    write_jsonl(tmp_path / "rows.jsonl", [])
    spec = tmp_path / "spec.yaml"
    spec.write_text(spec_text)
    code, output = run("data", "build", str(spec), "--out", str(tmp_path / "out"))
    assert code == 2
    assert f"error: {spec}, line {line}, field '{field}': {reason}" in output


def test_skip_bad_counts_and_lists_every_bad_row_in_the_card(tmp_path: Path) -> None:
    data = write_jsonl(tmp_path / "rows.jsonl", [line for line, _, _ in BAD_LINES.values()], good=3)
    out = tmp_path / "out"
    code, output = run("data", "build", str(spec_for(tmp_path, data)), "--out", str(out), "--skip-bad")
    assert code == 0, output
    assert "bad rows skipped 4" in output
    card = json.loads((out / "card.json").read_text())
    assert card["rows"] == 3 and card["bad_rows"]["count"] == 4
    listed = [(r["file"], r["line"], r["field"]) for r in card["bad_rows"]["rows"]]
    assert listed == [
        (str(data), 4, None),
        (str(data), 5, "prompt"),
        (str(data), 6, "final"),
        (str(data), 7, "final"),
    ]
    assert card["sources"][0]["bad_rows"] == 4
    markdown = (out / "card.md").read_text()
    assert "## Bad rows skipped (--skip-bad)" in markdown and "response is empty" in markdown
    # A row with several problems lists them on lines of their own; in the card's table, one row.
    listing = markdown.split("## Bad rows skipped (--skip-bad)")[1]
    table = [line for line in listing.splitlines() if line.startswith(f"| {data} |")]
    assert len(table) == 4 and all(line.endswith(" |") for line in table)


def test_a_reason_of_several_lines_stays_one_table_row(tmp_path: Path) -> None:
    bad = json.dumps({"question": "1+1?", "final": "2"}).encode()  # unknown column + no prompt
    data = write_jsonl(tmp_path / "rows.jsonl", [bad], good=1)
    out = tmp_path / "out"
    code, output = run("data", "build", str(spec_for(tmp_path, data)), "--out", str(out), "--skip-bad")
    assert code == 0, output
    reason = json.loads((out / "card.json").read_text())["bad_rows"]["rows"][0]["reason"]
    assert "\n  also field 'prompt'" in reason
    listing = (out / "card.md").read_text().split("## Bad rows skipped (--skip-bad)")[1]
    (row,) = [line for line in listing.splitlines() if line.startswith(f"| {data} |")]
    assert "unknown field" in row and "also field 'prompt': Field required |" in row


def test_a_table_row_is_named_as_a_row_not_a_line(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "foreign.parquet"
    pq.write_table(pa.table({"question": ["1+1", "2+2"], "response": ["2", None]}), path)
    with pytest.raises(InputError) as error:
        read_records(path, mapping=FieldMapping(question="question", response="response"))
    assert str(error.value).startswith(f"{path}, row 2, field 'response': ")
