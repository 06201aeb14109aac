"""Where a data spec's rows come from: files, HF datasets, the Countdown teacher, or a weighted mix.

Sources are pydantic models (one key names the kind) so a spec validates before anything is read.
Loading goes through a `BuildContext` that resolves paths, seeds every random choice and keeps the
accounting the data card reports: rows per source and every bad row skipped under --skip-bad.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    Tag,
    ValidationError,
    field_validator,
)

from sftscope.config.base import Strict
from sftscope.config.paths import PathOrName, SpecPath
from sftscope.config.specfile import plain_message
from sftscope.data.hub import HubDataset
from sftscope.data.io import FieldMapping, LoadResult, read_records
from sftscope.data.records import Example
from sftscope.errors import InputError
from sftscope.progress import progress_bar

Style = Literal["long-cot", "short-cot", "answer-only"]


class FileSource(Strict):
    """Rows from a .jsonl or .parquet file."""

    file: SpecPath
    """Path to the file, relative to the spec file."""
    mapping: FieldMapping | None = None
    """Column mapping for a foreign schema; unset means native `Example` rows."""
    name: str | None = None
    """Label in the data card; defaults to the path."""


class HfOptions(HubDataset):
    """A hub dataset of training rows (default split `train`); a local path is relative to the spec file."""

    mapping: FieldMapping | None = None
    """Column mapping for a foreign schema; unset means native `Example` rows."""
    path: PathOrName
    """Hub dataset id, or a local snapshot folder or data file (relative to the spec file)."""


class HfSource(Strict):
    """Rows loaded through HF `datasets`."""

    hf: HfOptions
    """Where and how to load."""
    name: str | None = None
    """Label in the data card; defaults to the dataset path."""


class CountdownOptions(Strict):
    """The Countdown teacher: problems from reasoning-gym, traces written by the symbolic solver."""

    n: int = Field(gt=0)
    """Number of examples."""
    style: Style = "long-cot"
    """long-cot (search with backtracking), short-cot (the successful path only) or answer-only."""
    seed: int | None = None
    """Generator seed; defaults to the spec seed."""
    max_failed_branches: int | None = None
    """Cap on dead ends written per long-cot trace; the teacher's default when unset."""
    settings: dict[str, Any] = {}
    """Difficulty knobs of `sftscope.data.countdown.CountdownSettings` (count of numbers, ranges)."""

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Imported here: the teacher pulls in reasoning-gym, which specs without Countdown never need.
        from sftscope.data.countdown import CountdownSettings

        try:
            # All knobs spelled out, so the resolved spec records the exact difficulty.
            return CountdownSettings.model_validate(value).model_dump(mode="json")
        except ValidationError as exc:  # every problem with its setting's name, unknown ones first
            problems = []
            for error in sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden"):
                where = ".".join(str(part) for part in error["loc"])
                problem = "unknown setting" if error["type"] == "extra_forbidden" else plain_message(error)
                problems.append(f"{where}: {problem}" if where else problem)
            raise ValueError("; ".join(problems)) from None


class CountdownSource(Strict):
    """Rows written by the Countdown teacher."""

    countdown: CountdownOptions
    """Generator options."""
    name: str | None = None
    """Label in the data card; defaults to 'countdown:<style>'."""


class MicroworldOptions(Strict):
    """Replay of the micro world's train split, in the mix the micro bases were pretrained on.

    Mixed into an SFT set, it is the replay dial: a share of pretraining data keeps the skills (and
    the refusals) that plain SFT on Countdown traces would overwrite. Train split only, so no row can
    be an evaluation question."""

    n: int = Field(gt=0)
    """Number of examples."""
    domains: list[str] | None = None
    """Micro-world domains to draw from, in their pretraining proportions; all of them when unset."""
    seed: int | None = None
    """Sampling seed; defaults to the spec seed (the shipped bases were pretrained on seed 0)."""

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str] | None) -> list[str] | None:
        from sftscope.data.microworld import domains

        known = [d.name for d in domains()]
        unknown = [name for name in value or [] if name not in known]
        if unknown:
            raise ValueError(f"unknown micro-world domain(s) {unknown}; known: {', '.join(known)}")
        return value


class MicroworldSource(Strict):
    """Rows of the micro world's pretraining mix (prompt and short boxed answer)."""

    microworld: MicroworldOptions
    """Sampling options."""
    name: str | None = None
    """Label in the data card; defaults to 'microworld:<domains or all>'."""


class MixPart(Strict):
    """One weighted part of a mix."""

    weight: float = Field(gt=0)
    """Relative weight; weights are normalised over the parts."""
    source: Source
    """Where the part's rows come from."""


class MixOptions(Strict):
    """A weighted union of sources, sampled without replacement to a total size."""

    total: int = Field(gt=0)
    """Rows in the mix."""
    parts: list[MixPart] = Field(min_length=1)
    """The weighted sources."""
    seed: int | None = None
    """Sampling seed; defaults to the spec seed."""


class MixSource(Strict):
    """A weighted mix of other sources."""

    mix: MixOptions
    """The parts and the total size."""
    name: str | None = None
    """Label in the data card; defaults to 'mix'."""


SOURCE_KINDS = ("file", "hf", "countdown", "microworld", "mix")


def _source_kind(value: Any) -> str | None:
    """The tag of a raw or validated source: the first kind key it has."""
    keys = value.keys() if isinstance(value, dict) else type(value).model_fields
    return next((f"{kind}-source" for kind in SOURCE_KINDS if kind in keys), None)


Source = Annotated[
    Annotated[FileSource, Tag("file-source")]
    | Annotated[HfSource, Tag("hf-source")]
    | Annotated[CountdownSource, Tag("countdown-source")]
    | Annotated[MicroworldSource, Tag("microworld-source")]
    | Annotated[MixSource, Tag("mix-source")],
    Discriminator(
        _source_kind,
        custom_error_type="source_kind",
        custom_error_message=f"a source needs one of the keys {', '.join(SOURCE_KINDS)}",
    ),
]
AnySource = FileSource | HfSource | CountdownSource | MicroworldSource | MixSource
SOURCE_TAGS = frozenset(f"{kind}-source" for kind in SOURCE_KINDS)
MixPart.model_rebuild()


def source_label(source: AnySource) -> str:
    """How the data card names a source."""
    if source.name:
        return source.name
    if isinstance(source, FileSource):
        return source.file
    if isinstance(source, HfSource):
        ref = source.hf
        at = f"@{ref.revision}" if ref.revision else ""
        return ref.path + at + (f"/{ref.subset}" if ref.subset else "") + f":{ref.split_name}"
    if isinstance(source, CountdownSource):
        return f"countdown:{source.countdown.style}"
    if isinstance(source, MicroworldSource):
        return "microworld:" + ("+".join(source.microworld.domains or []) or "all")
    return "mix"


@dataclass
class BuildContext:
    """State shared by the steps of one build: paths, seeds and the card's accounting."""

    spec_file: Path
    """The spec being built; errors found while building point at it."""
    seed: int = 0
    """The spec seed: the default of every seeded step."""
    skip_bad: bool = False
    """Skip (and list) bad input rows instead of stopping at the first."""
    where: str = ""
    """Which spec entry is running (e.g. 'transforms[2].subsample'), for error messages."""
    bad: list[InputError] = field(default_factory=list)
    """Bad rows skipped so far."""
    loads: list[dict[str, Any]] = field(default_factory=list)
    """One entry per source read: label, kind, role, rows, bad rows."""

    def rng(self, name: str, seed: int | None) -> random.Random:
        """A generator per step: string seeds hash stably, and steps sharing the spec seed differ."""
        return random.Random(f"{name}:{self.seed if seed is None else seed}")

    def error(self, message: str, key: str | None = None) -> InputError:
        """An error about the running spec entry (raised by the caller)."""
        where = self.where + (f".{key}" if key else "")
        return InputError(str(self.spec_file), message, field=where or None)

    def record_load(self, label: str, kind: str, role: str, result: LoadResult) -> list[Example]:
        self.bad.extend(result.bad)
        entry = {"source": label, "kind": kind, "role": role, "rows": len(result.records)}
        self.loads.append({**entry, "bad_rows": len(result.bad)})
        return result.records


def load_source(
    source: AnySource,
    ctx: BuildContext,
    *,
    role: str = "train",
    require_response: bool = True,
) -> list[Example]:
    """Read one source; `role` marks evaluation sets (read without responses) apart in the card."""
    label = source_label(source)
    if isinstance(source, FileSource | HfSource):
        # Reading and validating 20k long traces takes seconds: show that something is happening.
        with progress_bar(f"read {label}", total=None) as bar:
            if isinstance(source, FileSource):
                result = read_records(
                    source.file,
                    mapping=source.mapping,
                    require_response=require_response,
                    skip_bad=ctx.skip_bad,
                )
            else:
                result = source.hf.read(
                    source.hf.mapping, require_response=require_response, skip_bad=ctx.skip_bad
                )
            bar.update(0, total=len(result.records), completed=len(result.records))
        return ctx.record_load(label, "file" if isinstance(source, FileSource) else "hf", role, result)
    if isinstance(source, CountdownSource):
        return ctx.record_load(
            label, "countdown", role, LoadResult(records=_countdown(source.countdown, ctx))
        )
    if isinstance(source, MicroworldSource):
        from sftscope.data.microworld import build_corpus

        options = source.microworld
        seed = ctx.seed if options.seed is None else options.seed
        rows = build_corpus(options.n, seed, options.domains)
        return ctx.record_load(label, "microworld", role, LoadResult(records=rows))
    options_mix = source.mix
    parts = [
        load_source(part.source, ctx, role=role, require_response=require_response)
        for part in options_mix.parts
    ]
    weights = [part.weight for part in options_mix.parts]
    names = [source_label(part.source) for part in options_mix.parts]
    rng = ctx.rng("mix", options_mix.seed)
    rows, taken = mix_examples(parts, weights, names, options_mix.total, rng, ctx)
    ctx.loads.append({"source": label, "kind": "mix", "role": role, "rows": len(rows), "taken": taken})
    return rows


def _countdown(options: CountdownOptions, ctx: BuildContext) -> list[Example]:
    from sftscope.data.countdown import CountdownSettings, build_countdown_examples

    settings = CountdownSettings.model_validate(options.settings)
    extra = (
        {} if options.max_failed_branches is None else {"max_failed_branches": options.max_failed_branches}
    )
    seed = ctx.seed if options.seed is None else options.seed
    with progress_bar(f"countdown teacher ({options.style})", total=options.n) as bar:
        rows = build_countdown_examples(settings, options.n, options.style, seed, **extra)
        bar.update(0, completed=options.n)
    return rows


def mix_examples(
    parts: list[list[Example]],
    weights: list[float],
    names: list[str],
    total: int,
    rng: random.Random,
    ctx: BuildContext,
) -> tuple[list[Example], list[dict[str, Any]]]:
    """Sample each part in proportion to its weight (largest remainder, so sizes sum to `total`).

    A part too small for its share is an error rather than a silent shortfall or repetition.
    """
    norm = sum(weights)
    exact = [total * w / norm for w in weights]
    quotas = [int(x) for x in exact]
    by_remainder = sorted(range(len(parts)), key=lambda i: exact[i] - quotas[i], reverse=True)
    for i in by_remainder[: total - sum(quotas)]:
        quotas[i] += 1
    mixed: list[Example] = []
    for name, rows, quota in zip(names, parts, quotas, strict=True):
        if quota > len(rows):
            raise ctx.error(
                f"mix part '{name}' has {len(rows)} rows but its weight asks for {quota} of {total}"
            )
        mixed.extend(rng.sample(rows, quota))
    rng.shuffle(mixed)  # interleave the parts: a mix is a mixture, not a concatenation
    taken = [{"source": n, "weight": w, "rows": q} for n, w, q in zip(names, weights, quotas, strict=True)]
    return mixed, taken
