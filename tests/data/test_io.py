"""Records through JSONL, Parquet and HF `datasets`, native and through a field mapping."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sftscope.data.io import FieldMapping, load_hf, read_records, write_records
from sftscope.data.records import Example, Message, split_response, user_example
from sftscope.errors import InputError

FIXTURES = Path(__file__).parent.parent / "fixtures" / "data"


def sample_rows() -> list[Example]:
    return [
        user_example("What is 2+3?", reasoning="2+3=5.", final="\\boxed{5}", answer="5", meta={"k": [1, 2]}),
        Example(
            prompt=[Message(role="system", content="Be brief."), Message(role="user", content="Ünïcode ✓?")],
            final="yes",
            answer=None,
            source="hand",
        ),
    ]


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_round_trip_keeps_every_field(tmp_path: Path, suffix: str) -> None:
    rows = sample_rows()
    path = write_records(rows, tmp_path / f"rows{suffix}")
    loaded = read_records(path)
    assert loaded.bad == []
    # The source defaults to the file stem only when the row has none.
    assert [r.model_dump() for r in loaded.records] == [
        {**r.model_dump(), "source": r.source or "rows"} for r in rows
    ]


def test_write_is_atomic_and_leaves_no_temporary(tmp_path: Path) -> None:
    write_records(sample_rows(), tmp_path / "rows.jsonl")
    assert [p.name for p in tmp_path.iterdir()] == ["rows.jsonl"]


def test_foreign_schema_through_a_mapping_splits_the_think_block() -> None:
    mapping = FieldMapping(question="question", response="response", answer="answer", source="data_source")
    rows = read_records(FIXTURES / "math-foreign.jsonl", mapping=mapping).records
    assert len(rows) == 3
    first = rows[0]
    assert first.question.startswith("What is")
    assert first.reasoning and "<think>" not in first.reasoning and "</think>" not in first.final
    assert "\\boxed{" in first.final and first.answer is not None
    assert first.source == "openr1"


def test_messages_mapping_takes_the_last_assistant_turn_as_the_response(tmp_path: Path) -> None:
    path = tmp_path / "chat.jsonl"
    chat = [
        {"role": "user", "content": "Hi, 1+1?"},
        {"role": "assistant", "content": "<think>one and one</think>\n\\boxed{2}"},
    ]
    path.write_text(json.dumps({"messages": chat, "gold": 2}) + "\n")
    row = read_records(path, mapping=FieldMapping(messages="messages", answer="gold")).records[0]
    assert [m.role for m in row.prompt] == ["user"]
    assert (row.reasoning, row.final, row.answer) == ("one and one", "\\boxed{2}", "2")


def test_hf_loads_a_local_file_and_a_local_dataset_dir(tmp_path: Path) -> None:
    mapping = FieldMapping(question="question", response="response", answer="answer")
    from_file = load_hf(str(FIXTURES / "math-foreign.jsonl"), mapping=mapping).records
    folder = tmp_path / "dataset"
    folder.mkdir()
    (folder / "train.jsonl").write_bytes((FIXTURES / "math-foreign.jsonl").read_bytes())
    from_dir = load_hf(str(folder), mapping=mapping).records
    assert [r.id for r in from_file] == [r.id for r in from_dir] and len(from_dir) == 3


def test_hf_source_that_cannot_be_loaded_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="could not load"):
        load_hf(str(tmp_path / "no-such-dataset"))


def test_unknown_format_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "rows.tsv").write_text("a\tb\n")
    with pytest.raises(InputError, match="unknown format"):
        read_records(tmp_path / "rows.tsv")


def test_csv_rows_through_a_mapping_are_named_by_the_line_they_start_on(tmp_path: Path) -> None:
    path = tmp_path / "rows.csv"
    path.write_text('id,question,answer\n0,"What is\n1+1?",2\n1,"2+2?",4\n2,"3+3?",6,extra\n')
    mapping = FieldMapping(question="question", answer="answer", id="id")
    with pytest.raises(InputError, match="more cells than header") as caught:
        read_records(path, mapping=mapping, require_response=False)
    assert caught.value.line == 5  # the quoted newline makes the third row start on line 5
    path.write_text(path.read_text().replace(",extra", ""))
    rows = read_records(path, mapping=mapping, require_response=False).records
    # An id of 0 is an id, not a missing one.
    expected = [("0", "What is\n1+1?", "2"), ("1", "2+2?", "4"), ("2", "3+3?", "6")]
    assert [(r.id, r.question, r.answer) for r in rows] == expected
    with pytest.raises(InputError, match="field mapping"):
        read_records(path)


def test_split_response_uses_the_last_closing_tag_and_flags_an_unclosed_think() -> None:
    split = split_response("<think>a</think> b </think> c")
    assert (split.reasoning, split.final, split.closed) == ("a</think> b", "c", True)
    cut = split_response("<think>still thinking")
    assert (cut.reasoning, cut.final, cut.closed) == ("still thinking", "", False)
