"""Where a task's prompts come from: a procedural generator, a JSONL/Parquet file, or an HF dataset.

Every source yields `Example` rows (prompt turns, gold `answer`, scorer inputs in `meta`). Foreign
schemas are read through a `FieldMapping`; an adapter (`evaluate.adapters`) then handles what a
mapping cannot: lettered options, LiveCodeBench's encoded tests, IFEval's instruction lists.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Discriminator, Field, Tag, field_validator

from sftscope.config.base import Strict
from sftscope.config.paths import PathOrName, SpecPath
from sftscope.data.hub import HubDataset
from sftscope.data.io import FieldMapping, read_records, row_unit
from sftscope.data.records import Example, user_example
from sftscope.errors import InputError
from sftscope.evaluate.adapters import Adapter, adapt

TAGS = ("from-microworld", "from-reasoning-gym", "from-file", "from-hf")


class MicroworldSource(Strict):
    """Held-out eval questions of one micro-world domain (`sftscope.data.microworld`)."""

    generator: Literal["microworld"]
    """Selects this source."""
    domain: str
    """Micro-world domain name (countdown, chain_sum, safety_forbidden, ...)."""
    n: int = Field(ge=1)
    """Prompts; a larger n extends a smaller one (same first prompts)."""
    seed: int = 0
    """Generator seed."""

    @field_validator("domain")
    @classmethod
    def _known_domain(cls, name: str) -> str:
        from sftscope.data.microworld import domain  # checked here so the error names the task file

        try:
            domain(name)
        except KeyError as exc:
            raise ValueError(exc.args[0]) from exc
        return name


class ReasoningGymSource(Strict):
    """A reasoning-gym procedural dataset."""

    generator: Literal["reasoning_gym"]
    """Selects this source."""
    dataset: str
    """reasoning-gym dataset name."""
    config: dict[str, Any] = {}
    """The dataset's own config (sets the difficulty)."""
    n: int = Field(ge=1)
    """Prompts."""
    seed: int = 0
    """Dataset seed."""


class RowsSource(Strict):
    mapping: FieldMapping | None = None
    """Which columns feed question, answer, id and meta; unset for files of native `Example` rows."""
    adapter: Adapter | None = None
    """Row post-processing a mapping cannot express (choices, livecodebench, ifeval)."""
    n: int | None = Field(default=None, ge=1)
    """Keep n rows: the first n, or a seeded random sample when `sample_seed` is set."""
    sample_seed: int | None = None
    """Seed of the random subset (e.g. the MMLU-Pro 1k subset)."""
    csv_columns: list[str] | None = None
    """Names of the columns of headerless CSV files, whose first line is data (HEx-PHI)."""


class FileSource(RowsSource):
    """A local JSONL, Parquet or CSV file."""

    file: SpecPath
    """Path of the file, relative to the task file."""


class HFRef(HubDataset):
    """A hub dataset of task rows (default split `test`); a local path is relative to the task file,
    and may also be a JSONL/Parquet/CSV file in the same schema (read without `datasets`)."""

    DEFAULT_SPLIT: ClassVar[str] = "test"
    path: PathOrName
    """Hub dataset id, or a local snapshot folder or data file (relative to the task file)."""


class HFSource(RowsSource):
    """A Hugging Face dataset (needs a network, or the HF cache)."""

    hf: HFRef
    """The dataset."""


def _kind(value: Any) -> str | None:
    if isinstance(value, dict):
        if "file" in value:
            return "from-file"
        if "hf" in value:
            return "from-hf"
        return {"microworld": "from-microworld", "reasoning_gym": "from-reasoning-gym"}.get(
            value.get("generator")
        )
    return {MicroworldSource: "from-microworld", ReasoningGymSource: "from-reasoning-gym"}.get(
        type(value), "from-file" if isinstance(value, FileSource) else "from-hf"
    )


Source = Annotated[
    Annotated[MicroworldSource, Tag("from-microworld")]
    | Annotated[ReasoningGymSource, Tag("from-reasoning-gym")]
    | Annotated[FileSource, Tag("from-file")]
    | Annotated[HFSource, Tag("from-hf")],
    Discriminator(
        _kind,
        custom_error_type="source_kind",
        custom_error_message="a source is {generator: microworld | reasoning_gym, ...}, {file: PATH, ...} "
        "or {hf: {path: ...}, ...}",
    ),
]


def _needs_gold(scorer: str) -> bool:
    # Imported here, as evaluate/spec.py does: the registry pulls in every scorer's dependencies.
    from sftscope.scoring.registry import SCORERS

    return scorer in SCORERS and SCORERS[scorer].needs_gold


def load_examples(source: Any, scorer: str) -> list[Example]:
    """The task's prompts as Examples; a row the scorer cannot grade (no gold) is an InputError."""
    if isinstance(source, MicroworldSource):
        from sftscope.data.microworld import generate

        generated = generate(source.domain, split="eval", n=source.n, seed=source.seed)
        _check_unique_ids(generated, f"microworld:{source.domain}")
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


def _read_rows(source: FileSource | HFSource) -> tuple[str, list[Example]]:
    # A hub id is its own name as a path too: str(Path("HuggingFaceH4/MATH-500")) is the id.
    path = Path(source.file if isinstance(source, FileSource) else source.hf.path).expanduser()
    if isinstance(source, FileSource):
        loaded = read_records(
            path, mapping=source.mapping, require_response=False, csv_columns=source.csv_columns
        )
    else:  # a local file given as the dataset is read by load_hf the same way
        loaded = source.hf.read(source.mapping, require_response=False, csv_columns=source.csv_columns)
    return str(path), loaded.records
