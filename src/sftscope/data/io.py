"""Read and write records as JSONL, Parquet or through HF `datasets`, with errors that locate bad rows.

Native files hold `Example` rows as they are. Foreign schemas (`question/response/answer`,
`messages`, ...) are read through a `FieldMapping`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from pydantic import ValidationError

from sftscope.config.base import Strict
from sftscope.config.specfile import plain_message
from sftscope.data.records import Example, Message, split_response
from sftscope.errors import InputError, also
from sftscope.outdir import atomic_file

FORMATS = (".jsonl", ".parquet")
READ_FORMATS = (*FORMATS, ".csv")  # CSV is read (GPQA ships as one), never written


class FieldMapping(Strict):
    """Which column of a foreign schema feeds which part of an `Example`. Unset parts are not read."""

    question: str | None = None
    """Column with the user question; becomes a single user turn."""
    messages: str | None = None
    """Column with a chat as a list of {role, content}; the last assistant turn, if any, is the response."""
    response: str | None = None
    """Column with the full response; a <think> block in it becomes the reasoning."""
    reasoning: str | None = None
    """Column with the reasoning alone."""
    final: str | None = None
    """Column with the final part alone."""
    answer: str | None = None
    """Column with the gold answer."""
    id: str | None = None
    """Column with a row id."""
    source: str | None = None
    """Column naming the row's source; the file or dataset name is used when unset."""
    meta: list[str] = []
    """Columns copied into `meta` as they are."""


@dataclass
class LoadResult:
    """Rows read, and the bad rows skipped under --skip-bad (never silently)."""

    records: list[Example]
    bad: list[InputError] = field(default_factory=list)


def _convert(row: dict[str, Any], mapping: FieldMapping | None, source: str) -> Example:
    """Turn one raw row into an Example; raises ValueError(field, message) on bad content."""
    if mapping is None:
        try:
            example = Example.model_validate(row)
        except ValidationError as exc:
            raise _native_problem(exc) from exc
        if not example.source:
            example.source = source
        return example

    def get(column: str | None, required: bool = True) -> Any:
        if column is None:
            return None
        if column not in row or row[column] is None:
            if required:
                raise _FieldProblem(column, "required field is missing")
            return None
        return row[column]

    reasoning = final = None
    prompt: list[Message]
    if mapping.messages:
        turns = get(mapping.messages)
        if not isinstance(turns, list) or not turns:
            raise _FieldProblem(mapping.messages, "expected a non-empty list of {role, content} turns")
        try:
            messages = [Message.model_validate(t) for t in turns]
        except ValidationError as exc:
            raise _FieldProblem(mapping.messages, exc.errors()[0]["msg"]) from exc
        if messages[-1].role == "assistant":
            split = split_response(messages[-1].content)
            reasoning, final = split.reasoning, split.final
            messages = messages[:-1]
        prompt = messages
    else:
        question = get(mapping.question)
        if not isinstance(question, str):
            raise _FieldProblem(mapping.question, "expected a string")
        prompt = [Message(role="user", content=question)]
    if mapping.response:
        text = get(mapping.response)
        if not isinstance(text, str):
            raise _FieldProblem(mapping.response, "expected a string")
        split = split_response(text)
        reasoning, final = split.reasoning, split.final
    if mapping.reasoning:
        reasoning = get(mapping.reasoning)
    if mapping.final:
        final = get(mapping.final)
    answer = get(mapping.answer)
    # A gold of a list or object would be stringified ("[1]") and then never match: bad input.
    if answer is not None and not isinstance(answer, (str, int, float)):
        raise _FieldProblem(mapping.answer, f"expected a string or a number, got {type(answer).__name__}")
    try:
        return Example(
            id=_text(get(mapping.id, required=False)),
            prompt=prompt,
            reasoning=reasoning,
            final=final or "",
            answer=None if answer is None else str(answer),
            source=str(get(mapping.source, required=False) or source),
            meta={k: row.get(k) for k in mapping.meta},
        )
    except ValidationError as exc:  # e.g. a reasoning column holding a number: name the column
        first = exc.errors()[0]
        part = str(first["loc"][0]) if first["loc"] else None
        raise _FieldProblem(getattr(mapping, part, None) or part, first["msg"]) from exc


def _text(value: Any) -> str:
    """A column value as text; only a missing value is empty (an id of 0 is "0")."""
    return "" if value is None else str(value)


def _native_problem(exc: ValidationError) -> _FieldProblem:
    """Every problem of a row read as a native record, unknown columns first (a foreign row, most
    likely, which a `mapping` reads), then the rest, one per line."""
    problems = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
    fields = [".".join(str(part) for part in error["loc"]) or None for error in problems]
    words = [plain_message(error) for error in problems]
    if problems[0]["type"] == "extra_forbidden":
        native = ", ".join(Example.model_fields)
        words[0] += f" (a native row has only {native}; a data or task spec's `mapping` reads others)"
    others = [(None, name, text) for name, text in zip(fields[1:], words[1:], strict=True)]
    return _FieldProblem(fields[0], words[0] + also(others))


class _FieldProblem(ValueError):
    def __init__(self, field_name: str | None, message: str):
        super().__init__(message)
        self.field_name = field_name
        self.message = message


_SURROGATE = re.compile("[\ud800-\udfff]")


def _undecodable(value: Any, where: str = "") -> tuple[str, str] | None:
    """(field, reason) of the first string that is not valid Unicode text, searching nested values."""
    if isinstance(value, str):
        found = _SURROGATE.search(value)
        if found is None:
            return None
        code = ord(found.group())
        if 0xDC80 <= code <= 0xDCFF:  # how surrogateescape keeps a byte that is not UTF-8
            return where, f"text cannot be decoded as UTF-8 (byte 0x{code - 0xDC00:02x})"
        return where, f"text cannot be decoded: unpaired surrogate U+{code:04X}"
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        path = f"{where}[{key}]" if isinstance(key, int) else f"{where}.{key}" if where else str(key)
        found_in = _undecodable(item, path)
        if found_in is not None:
            return found_in
    return None


def _check_response(example: Example, mapping: FieldMapping | None, require_response: bool) -> None:
    if require_response and not (example.final.strip() or (example.reasoning or "").strip()):
        # Name the column the response was read from, so the user can find it in their file.
        column = (mapping.response or mapping.final or mapping.messages) if mapping else "final"
        raise _FieldProblem(column or "response", "response is empty")


def _rows_from_jsonl(path: Path) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            # Bad bytes survive decoding as surrogate escapes, so the row still parses and the
            # error can name the field that holds them (see _undecodable).
            text = raw.decode("utf-8", errors="surrogateescape")
            if not text.strip():
                continue
            try:
                row = json.loads(text)
            except json.JSONDecodeError as exc:
                message = f"malformed JSON: {exc.msg} (column {exc.colno})"
                yield number, InputError(str(path), message, line=number)
                continue
            if not isinstance(row, dict):
                yield number, InputError(str(path), "each line must be a JSON object", line=number)
                continue
            yield number, row


def _rows_from_csv(
    path: Path, columns: list[str] | None
) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Rows of a CSV file, numbered by the file line each starts on; the header row names the
    columns, unless `columns` does (a headerless file: its first line is data)."""
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.DictReader(handle, fieldnames=columns)
        start = 1 if columns else 2  # else line 1 is the header
        for row in reader:
            if None in row:  # more cells than there are column names
                named = "csv_columns names" if columns else "header columns"
                yield start, InputError(str(path), f"more cells than {named}", line=start)
            else:
                yield start, dict(row)
            start = reader.line_num + 1


def _rows_from_table(rows: Iterable[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    yield from enumerate(rows, start=1)


def _native_parquet_rows(
    path: Path, rows: list[dict[str, Any]]
) -> Iterator[tuple[int, dict[str, Any] | InputError]]:
    """Native files store meta as a JSON string (see write_records): decode it back."""
    for number, row in enumerate(rows, start=1):
        if isinstance(row.get("meta"), str):
            try:
                row["meta"] = json.loads(row["meta"])
            except json.JSONDecodeError as exc:
                yield (
                    number,
                    InputError(
                        str(path), f"meta is not valid JSON: {exc.msg}", line=number, field="meta", unit="row"
                    ),
                )
                continue
        yield number, row


def iter_rows_to_records(
    rows: Iterable[tuple[int, dict[str, Any] | InputError]],
    where: str,
    *,
    mapping: FieldMapping | None,
    require_response: bool,
    skip_bad: bool,
    unit: str = "line",
) -> LoadResult:
    """Convert numbered raw rows (lines of a file, or rows of a table: `unit`); stop at the first bad
    one unless skip_bad, which collects them."""
    result = LoadResult(records=[])
    for number, row in rows:
        problem: InputError | None = row if isinstance(row, InputError) else None
        if problem is None:
            assert isinstance(row, dict)
            try:
                broken = _undecodable(row)
                if broken is not None:
                    raise _FieldProblem(broken[0] or None, broken[1])
                example = _convert(row, mapping, source=Path(where).stem or where)
                _check_response(example, mapping, require_response)
                result.records.append(example)
            except _FieldProblem as exc:
                problem = InputError(where, exc.message, line=number, field=exc.field_name, unit=unit)
        if problem is not None:
            if not skip_bad:
                raise problem
            result.bad.append(problem)
    return result


def read_records(
    path: str | Path,
    *,
    mapping: FieldMapping | None = None,
    require_response: bool = True,
    skip_bad: bool = False,
    csv_columns: list[str] | None = None,
) -> LoadResult:
    """Read a .jsonl, .parquet or .csv file of records (native, or foreign through `mapping`; a CSV
    holds text only, so it is read through a mapping, and has a header row unless `csv_columns`
    names its columns)."""
    path = Path(path)
    if not path.exists():
        raise InputError(str(path), "file does not exist")
    if csv_columns and path.suffix != ".csv":
        raise InputError(str(path), "csv_columns names the columns of a headerless .csv file only")
    if path.suffix == ".jsonl":
        rows: Iterable[tuple[int, dict[str, Any] | InputError]] = _rows_from_jsonl(path)
    elif path.suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table_rows = pq.read_table(path).to_pylist()
        except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
            raise InputError(str(path), f"not a readable Parquet file ({exc})") from exc
        rows = _native_parquet_rows(path, table_rows) if mapping is None else _rows_from_table(table_rows)
    elif path.suffix == ".csv":
        if mapping is None:
            raise InputError(str(path), "a CSV file is read through a field mapping (`mapping:`)")
        rows = _rows_from_csv(path, csv_columns)
    else:
        raise InputError(str(path), f"unknown format '{path.suffix}', expected one of {READ_FORMATS}")
    return iter_rows_to_records(
        rows,
        str(path),
        mapping=mapping,
        require_response=require_response,
        skip_bad=skip_bad,
        unit=row_unit(str(path)),
    )


def row_unit(where: str) -> str:
    """What an error calls a numbered record of `where`: a JSONL file's line, any table's row."""
    return "line" if where.endswith((".jsonl", ".csv")) else "row"


def write_records(records: Iterable[Example], path: str | Path) -> Path:
    """Write records as .jsonl or .parquet (by suffix), atomically: a temporary file, then a rename."""
    path = Path(path)
    if path.suffix not in (".jsonl", ".parquet"):
        raise InputError(str(path), f"unknown format '{path.suffix}', expected one of {FORMATS}")
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = [r.model_dump(mode="json") for r in records]
    with atomic_file(path) as tmp:
        if path.suffix == ".jsonl":
            with tmp.open("w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        else:
            # meta is free-form, so it is stored as a JSON string column to keep the schema stable.
            table = pa.Table.from_pylist([{**row, "meta": json.dumps(row["meta"])} for row in rows])
            pq.write_table(table, tmp)
    return path


def load_hf(
    name_or_path: str,
    *,
    split: str = "train",
    subset: str | None = None,
    data_files: list[str] | None = None,
    revision: str | None = None,
    mapping: FieldMapping | None = None,
    require_response: bool = True,
    skip_bad: bool = False,
    csv_columns: list[str] | None = None,
) -> LoadResult:
    """Load a hub dataset (the hub needs a network, or the HF cache), a local snapshot of one, or a
    local file (read by `read_records`, like data files).

    `data_files` reads those files of the repository (inside a local snapshot folder, or fetched from
    the hub at `revision`) with our own reader (`read_records`), never the repository's loading
    script: `datasets` >= 4 refuses scripts, and LiveCodeBench still ships one beside its JSONL
    files. Such a read has the one split `train`, and its errors name the file and line.
    `csv_columns` names the columns of headerless CSV data files (HEx-PHI): pandas, under `datasets`,
    would read an unquoted comma's first part as a row index and drop it."""
    local = Path(name_or_path).expanduser()
    # A file given as the dataset is that dataset, whatever data files the spec names in the repository.
    if local.is_file() or data_files:
        files = [local] if local.is_file() else _repository_files(name_or_path, data_files or [], revision)
        result = LoadResult(records=[])
        for file in files:
            part = read_records(
                file, mapping=mapping, require_response=require_response, skip_bad=skip_bad,
                csv_columns=csv_columns,
            )  # fmt: skip
            result.records += part.records
            result.bad += part.bad
        return result
    if csv_columns:
        raise InputError(name_or_path, "csv_columns is for headerless CSV data files", field="csv_columns")
    import datasets

    try:
        dataset = datasets.load_dataset(name_or_path, subset, split=split, revision=revision)
    except Exception as exc:  # datasets raises many types; all mean "could not load this source"
        raise InputError(name_or_path, f"could not load dataset split '{split}': {exc}") from exc
    return iter_rows_to_records(
        _rows_from_table(dataset),
        name_or_path,
        mapping=mapping,
        require_response=require_response,
        skip_bad=skip_bad,
        unit="row",
    )


def _repository_files(name_or_path: str, data_files: list[str], revision: str | None) -> list[Path]:
    """Local paths of a dataset repository's files: inside a local folder (a snapshot), else fetched
    from the hub (through its cache, so a second read is offline)."""
    folder = Path(name_or_path).expanduser()
    if folder.is_dir():
        missing = [f for f in data_files if not (folder / f).is_file()]
        if missing:
            raise InputError(str(folder), f"no such data files: {', '.join(missing)}", field="data_files")
        return [folder / f for f in data_files]
    from huggingface_hub import hf_hub_download

    paths = []
    for name in data_files:
        try:
            paths.append(Path(hf_hub_download(name_or_path, name, repo_type="dataset", revision=revision)))
        except Exception as exc:  # huggingface_hub raises many types: not found, gated, offline
            message = f"could not fetch {name} from the hub: {exc}"
            raise InputError(name_or_path, message, field="data_files") from exc
    return paths
