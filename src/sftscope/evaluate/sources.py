"""Where a task's prompts come from: the micro world, reasoning-gym, a JSONL/Parquet/CSV file, or an
HF dataset, told apart by `kind:` (file, hf and microworld are written as in data specs).

Every source yields `Example` rows (prompt turns, gold `answer`, scorer inputs in `meta`). Foreign
schemas are read through a `FieldMapping`; an adapter (`evaluate.adapters`) then handles what a
mapping cannot: lettered options, LiveCodeBench's encoded tests, IFEval's instruction lists.
"""

from __future__ import annotations

import random
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator

from sftscope.config.base import KIND, Strict, kind_required
from sftscope.data import source_shapes
from sftscope.data.io import read_records, row_unit
from sftscope.data.microworld import generate
from sftscope.data.records import Example, user_example
from sftscope.errors import InputError
from sftscope.evaluate.adapters import Adapter, adapt
from sftscope.scoring.registry import SCORERS


class MicroworldSource(source_shapes.MicroworldSource):
    """Held-out eval questions of one micro-world domain (its `eval` split)."""

    @field_validator("domains")
    @classmethod
    def _one_domain(cls, value: list[str] | None) -> list[str] | None:
        if value is None or len(value) != 1:
            raise ValueError("a task's micro-world source names one domain, e.g. domains: [countdown]")
        return value


class ReasoningGymSource(Strict):
    """A reasoning-gym procedural dataset."""

    kind: Literal["reasoning_gym"] = "reasoning_gym"
    """Selects this source."""
    dataset: str
    """reasoning-gym dataset name."""
    config: dict[str, Any] = {}
    """The dataset's own config (sets the difficulty)."""
    n: int = Field(ge=1)
    """Prompts."""
    seed: int = 0
    """Dataset seed."""


class RowsOptions(Strict):
    """What a task does with the rows of a file or a hub dataset."""

    adapter: Adapter | None = None
    """Row post-processing a mapping cannot express (choices, livecodebench, ifeval)."""
    n: int | None = Field(default=None, ge=1)
    """Keep n rows: the first n, or a seeded random sample when `sample_seed` is set."""
    sample_seed: int | None = None
    """Seed of the random subset (e.g. the MMLU-Pro 1k subset)."""
    csv_columns: list[str] | None = None
    """Names of the columns of headerless CSV files, whose first line is data (HEx-PHI)."""


class FileSource(source_shapes.FileSource, RowsOptions):
    """A local JSONL, Parquet or CSV file."""


class HfSource(source_shapes.HfSource, RowsOptions):
    """A hub dataset of task rows (default split `test`); a local path may also be a JSONL, Parquet
    or CSV file in the same schema (read without `datasets`)."""

    DEFAULT_SPLIT: ClassVar[str] = "test"


Source = Annotated[
    MicroworldSource | ReasoningGymSource | FileSource | HfSource, Field(discriminator=KIND), kind_required
]


def _needs_gold(scorer: str) -> bool:
    return scorer in SCORERS and SCORERS[scorer].needs_gold


def load_examples(source: Any, scorer: str) -> list[Example]:
    """The task's prompts as Examples; a row the scorer cannot grade (no gold) is an InputError."""
    if isinstance(source, MicroworldSource):
        domain = (source.domains or [])[0]
        generated = generate(domain, split="eval", n=source.n, seed=source.seed or 0)
        _check_unique_ids(generated, f"microworld:{domain}")
        return generated
    if isinstance(source, ReasoningGymSource):
        generated = _reasoning_gym(source)
        _check_unique_ids(generated, f"reasoning_gym:{source.dataset}")
        return generated
    where, examples = _read_rows(source)
    if not examples:  # an empty file would evaluate nothing and look like success
        raise InputError(where, "no rows: a task needs at least one prompt")
    rows = list(range(1, len(examples) + 1))  # each kept example's row in the source, for errors
    if source.n is not None and source.n < len(examples):
        if source.sample_seed is None:
            rows = rows[: source.n]
        else:
            rows = sorted(random.Random(source.sample_seed).sample(rows, source.n))
        examples = [examples[row - 1] for row in rows]
    if source.adapter is not None:
        examples = adapt(examples, source.adapter, where)
    mapping = source.mapping
    # A row without the gold answer its scorer compares against is bad input, not an error row later.
    if _needs_gold(scorer):
        column = mapping.answer if mapping and mapping.answer else "answer"
        for row, example in zip(rows, examples, strict=True):
            if not (example.answer or "").strip():
                message = f"row has no gold answer (scorer '{scorer}' needs one)"
                raise InputError(where, message, line=row, field=column, unit=row_unit(where))
    _check_unique_ids(examples, where, mapping.id if mapping and mapping.id else "id", rows)
    return examples


def _check_unique_ids(
    examples: list[Example], where: str, field: str = "id", rows: list[int] | None = None
) -> None:
    """The store keys a sample by its prompt id: a second row with the same id would be dropped.
    `rows` are the examples' rows in the source (default 1, 2, ...)."""
    first: dict[str, int] = {}
    for row, example in zip(rows or range(1, len(examples) + 1), examples, strict=True):
        if example.id in first:
            message = f"same id '{example.id}' as row {first[example.id]}: ids must be unique in a task"
            raise InputError(where, message, line=row, field=field, unit=row_unit(where))
        first[example.id] = row


def _reasoning_gym(source: ReasoningGymSource) -> list[Example]:
    import reasoning_gym

    try:
        dataset = reasoning_gym.create_dataset(
            source.dataset, size=source.n, seed=source.seed, **source.config
        )
    except Exception as exc:  # unknown name or bad config: reasoning-gym raises many types
        raise InputError(
            "reasoning_gym", f"cannot create dataset '{source.dataset}': {exc}", field="source"
        ) from exc
    return [
        user_example(
            entry["question"],
            answer=str(entry["answer"]),
            source=f"reasoning_gym:{source.dataset}",
            meta={"rg_dataset": source.dataset, "rg_entry": entry},
        )
        for entry in dataset
    ]


def _read_rows(source: FileSource | HfSource) -> tuple[str, list[Example]]:
    # A hub id is its own name as a path too: str(Path("HuggingFaceH4/MATH-500")) is the id.
    if isinstance(source, FileSource):
        loaded = read_records(
            source.path, mapping=source.mapping, require_response=False, csv_columns=source.csv_columns
        )
    else:  # a local file given as the dataset is read by load_hf the same way
        loaded = source.read(source.mapping, require_response=False, csv_columns=source.csv_columns)
    return source.path, loaded.records
