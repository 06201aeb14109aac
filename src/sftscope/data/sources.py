"""Where a data spec's rows come from: files, HF datasets, the micro world, the Countdown teacher, or a
weighted mix.

Sources are pydantic models told apart by `kind:` (file, hf and microworld are the shapes task specs
use too, `sftscope.data.source_shapes`), so a spec validates before anything is read.
Loading goes through a `BuildContext` that resolves paths, seeds every random choice and keeps the
accounting the data card reports: rows per source and every bad row skipped under --skip-bad.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, ValidationInfo, field_validator, model_validator

from sftscope.config.base import KIND, Strict, kind_required
from sftscope.config.specfile import plain_message
from sftscope.data import source_shapes
from sftscope.data.countdown import CountdownSettings, build_countdown_examples
from sftscope.data.io import LoadResult, read_records
from sftscope.data.microworld import build_corpus, check_mix, mix_weights
from sftscope.data.records import Example
from sftscope.errors import InputError
from sftscope.progress import progress_bar

Style = Literal["long-cot", "short-cot", "answer-only"]


class FileSource(source_shapes.FileSource):
    """Rows from a .jsonl or .parquet file."""

    name: str | None = None
    """Label in the data card; defaults to the path."""


class HfSource(source_shapes.HfSource):
    """A hub dataset of training rows (default split `train`)."""

    name: str | None = None
    """Label in the data card; defaults to the dataset path."""


class CountdownSource(Strict):
    """The Countdown teacher: problems from reasoning-gym, traces written by the symbolic solver."""

    kind: Literal["countdown"] = "countdown"
    """Selects this source."""
    n: int = Field(gt=0)
    """Number of examples."""
    style: Style = "long-cot"
    """long-cot (search with backtracking), short-cot (the successful path only) or answer-only."""
    seed: int | None = None
    """Generator seed; defaults to the spec seed."""
    max_failed_branches: int | None = None
    """Cap on dead ends written per long-cot trace; the teacher's default when unset."""
    state_lines: bool = False
    """Write the numbers left after each move of the solution path (`Now 8 and 6 remain.`)."""
    worked_endings: bool = False
    """End every attempt on its last two numbers worked in the fixed order + - * / (`To make 15:
    9+4=13, 9-4=5, 9*4=36. None is 15.`), then the fact that makes the target, or none."""
    settings: dict[str, Any] = {}
    """Difficulty knobs of `sftscope.data.countdown.CountdownSettings` (count of numbers, ranges)."""
    search_order: Literal["random", "fixed"] = "random"
    """Which first moves a long-cot trace tries: `random` shows up to `max_failed_branches` dead ends
    drawn around a solution the teacher already found; `fixed` tries them in a fixed order (pairs as
    the prompt lists them, then + - * /) and shows every one before the first that hits, so the trace
    is a search a model can follow without knowing the answer. `fixed` needs `worked_endings` and
    problems of exactly 3 numbers."""
    name: str | None = None
    """Label in the data card; defaults to 'countdown:<style>'."""

    @field_validator("settings")
    @classmethod
    def _known_settings(cls, value: dict[str, Any]) -> dict[str, Any]:
        # Imported here: the teacher pulls in reasoning-gym, which specs without Countdown never need.

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

    @field_validator("search_order")
    @classmethod
    def _fixed_order_is_a_three_number_worked_search(cls, value: str, info: ValidationInfo) -> str:
        # Declared after `settings`, so both are validated by now; a failed `settings` is reported
        # already and is absent here.
        if value != "fixed" or "settings" not in info.data:
            return value
        settings = CountdownSettings.model_validate(info.data["settings"])
        if not (info.data.get("worked_endings") and settings.min_numbers == settings.max_numbers == 3):
            raise ValueError("fixed needs worked_endings: true and settings min_numbers = max_numbers = 3")
        return value


class MicroworldSource(source_shapes.MicroworldSource):
    """Replay of the micro world's train split, in the mix the micro bases were pretrained on.

    Mixed into an SFT set, it is the replay dial: a share of pretraining data keeps the skills (and
    the refusals) that plain SFT on Countdown traces would overwrite. Train split only, so no row can
    be an evaluation question. `seed` defaults to the spec seed (the shipped bases were pretrained on
    seed 0)."""

    name: str | None = None
    """Label in the data card; defaults to 'microworld:<domains or all>'."""
    weights: dict[str, float] | None = None
    """Replay weights per domain (normalised), instead of `domains`: the way to replay domains that
    are outside the default mix (weight 0 in microworld.yaml), e.g. {arith_facts: 1, worked_steps: 1}."""

    @model_validator(mode="after")
    def _every_domain_gets_rows(self) -> MicroworldSource:
        if self.weights is not None and self.domains is not None:
            raise ValueError("give either domains (in the default mix's proportions) or weights, not both")
        try:
            if self.weights is not None:
                check_mix(self.weights)
            else:
                mix_weights(self.domains)  # a weight-0 domain named here would get no rows
        except KeyError as unknown:  # pydantic reports a validator's ValueErrors only
            raise ValueError(unknown.args[0]) from None
        return self


class MixPart(Strict):
    """One weighted part of a mix."""

    weight: float = Field(gt=0)
    """Relative weight; weights are normalised over the parts."""
    source: Source
    """Where the part's rows come from."""


class MixSource(Strict):
    """A weighted union of sources, sampled without replacement to a total size."""

    kind: Literal["mix"] = "mix"
    """Selects this source."""
    total: int = Field(gt=0)
    """Rows in the mix."""
    parts: list[MixPart] = Field(min_length=1)
    """The weighted sources."""
    seed: int | None = None
    """Sampling seed; defaults to the spec seed."""
    name: str | None = None
    """Label in the data card; defaults to 'mix'."""


AnySource = FileSource | HfSource | CountdownSource | MicroworldSource | MixSource
Source = Annotated[AnySource, Field(discriminator=KIND), kind_required]
MixPart.model_rebuild()


def source_label(source: AnySource) -> str:
    """How the data card names a source."""
    if source.name:
        return source.name
    if isinstance(source, FileSource):
        return source.path
    if isinstance(source, HfSource):
        at = f"@{source.revision}" if source.revision else ""
        return source.path + at + (f"/{source.subset}" if source.subset else "") + f":{source.split_name}"
    if isinstance(source, CountdownSource):
        return f"countdown:{source.style}"
    if isinstance(source, MicroworldSource):
        return "microworld:" + ("+".join(source.domains or source.weights or []) or "all")
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
                    source.path,
                    mapping=source.mapping,
                    require_response=require_response,
                    skip_bad=ctx.skip_bad,
                )
            else:
                result = source.read(source.mapping, require_response=require_response, skip_bad=ctx.skip_bad)
            bar.update(0, total=len(result.records), completed=len(result.records))
        return ctx.record_load(label, source.kind, role, result)
    if isinstance(source, CountdownSource):
        return ctx.record_load(label, source.kind, role, LoadResult(records=_countdown(source, ctx)))
    if isinstance(source, MicroworldSource):
        seed = ctx.seed if source.seed is None else source.seed
        rows = build_corpus(source.n, seed, source.domains, source.weights)
        return ctx.record_load(label, source.kind, role, LoadResult(records=rows))
    parts = [
        load_source(part.source, ctx, role=role, require_response=require_response) for part in source.parts
    ]
    weights = [part.weight for part in source.parts]
    names = [source_label(part.source) for part in source.parts]
    rng = ctx.rng("mix", source.seed)
    rows, taken = mix_examples(parts, weights, names, source.total, rng, ctx)
    ctx.loads.append({"source": label, "kind": source.kind, "role": role, "rows": len(rows), "taken": taken})
    return rows


def _countdown(options: CountdownSource, ctx: BuildContext) -> list[Example]:

    settings = CountdownSettings.model_validate(options.settings)
    extra = (
        {} if options.max_failed_branches is None else {"max_failed_branches": options.max_failed_branches}
    )
    seed = ctx.seed if options.seed is None else options.seed
    with progress_bar(f"countdown teacher ({options.style})", total=options.n) as bar:
        rows = build_countdown_examples(
            settings,
            options.n,
            options.style,
            seed,
            **extra,
            state_lines=options.state_lines,
            worked_endings=options.worked_endings,
            fixed_order=options.search_order == "fixed",
        )
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
