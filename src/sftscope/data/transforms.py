"""Data conditions as transforms over `list[Example]`; each returns the new rows and a log of what it did.

A transform is a pydantic model (its options, `extra="forbid"`) with `apply(rows, ctx)`. The log
(rows in and out, counts per outcome, details) is printed during the build and kept in the data card,
so every row a transform drops is accounted for. `corrupt` and `decontaminate` live in their own
modules; `sftscope.data.spec` tells them apart by their `kind:`.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from sftscope.config.base import Strict
from sftscope.data.records import Example, Message
from sftscope.data.sources import BuildContext, MixPart, load_source, mix_examples, source_label
from sftscope.progress import progress_bar
from sftscope.scoring.registry import ScoreItem, get_scorer, score_batch

OUTCOMES = ("correct", "wrong", "unparsable", "timeout", "error")
# Each scoring call starts its own worker processes, so chunks are few (about ten progress updates)
# and never tiny.
VERIFY_MIN_CHUNK = 512
VERIFY_UPDATES = 10
EXAMPLES_PER_OUTCOME = 3  # failed rows quoted per outcome in the log, to make failures inspectable


class TransformLog(BaseModel):
    """What one transform did: kept in the data card and printed during the build."""

    name: str
    """The transform's spec name."""
    rows_in: int
    """Rows before the transform."""
    rows_out: int
    """Rows after it."""
    counts: dict[str, int] = {}
    """Rows per outcome (e.g. verify: correct, wrong, unparsable, timeout, error)."""
    details: dict[str, Any] = {}
    """Anything else worth reporting (pass rate, hits with ids, ...)."""

    def summary(self) -> str:
        """One console line."""
        counts = ", ".join(f"{key} {value}" for key, value in self.counts.items())
        return f"{self.name}: {self.rows_in} -> {self.rows_out} rows" + (f" ({counts})" if counts else "")


class Transform(Strict):
    """Base of every transform: its fields are the options a spec gives it."""

    kind: str
    """Which transform (each subclass narrows it to its name)."""

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:
        raise NotImplementedError

    def log(
        self, rows: list[Example], out: list[Example], counts: dict[str, int], **details: Any
    ) -> TransformLog:
        return TransformLog(
            name=self.kind, rows_in=len(rows), rows_out=len(out), counts=counts, details=details
        )


class Verify(Transform):
    """Keep only rows whose final answer checks against the gold answer."""

    kind: Literal["verify"] = "verify"
    """Selects this transform."""
    scorer: Literal["math", "countdown"]
    """Scorer: math-verify for math, an exact expression check for Countdown."""
    timeout_s: float = Field(5.0, gt=0)
    """Per-item time limit; a row that exceeds it counts as 'timeout' and is dropped."""
    workers: int = Field(2, ge=1)
    """Scoring processes."""

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:

        if get_scorer(self.scorer).needs_gold:
            rows = self._with_gold(rows, ctx)
        # The scorer sees what an evaluation would: the final part only, reasoning stripped.
        items = [ScoreItem(prediction=row.final, gold=row.answer, meta=row.meta) for row in rows]
        results = []
        with progress_bar(f"verify ({self.scorer})", total=len(items)) as bar:
            size = max(VERIFY_MIN_CHUNK, -(-len(items) // VERIFY_UPDATES))
            for start in range(0, len(items), size):
                chunk = items[start : start + size]
                results += score_batch(self.scorer, chunk, timeout_s=self.timeout_s, workers=self.workers)
                bar.advance(0, len(chunk))
        counts = Counter(result.outcome for result in results)
        kept = [row for row, result in zip(rows, results, strict=True) if result.outcome == "correct"]
        failed: dict[str, list[dict[str, Any]]] = {}
        for row, result in zip(rows, results, strict=True):
            quoted = failed.setdefault(result.outcome, []) if result.outcome != "correct" else None
            if quoted is not None and len(quoted) < EXAMPLES_PER_OUTCOME:
                quoted.append({"id": row.id, "extracted": result.extracted, "error": result.error})
        pass_rate = len(kept) / len(rows) if rows else None
        return kept, self.log(
            rows, kept, {o: counts[o] for o in OUTCOMES}, pass_rate=pass_rate, failed=failed
        )

    def _with_gold(self, rows: list[Example], ctx: BuildContext) -> list[Example]:
        """The rows that have a gold answer. A row without one cannot be verified: bad input, stopping
        the build, or with --skip-bad skipped and listed in the card like any other bad row."""
        kept = []
        for row in rows:
            if row.answer is not None and row.answer.strip():
                kept.append(row)
                continue
            bad = ctx.error(
                f"row '{row.id}' (from {row.source}) has no gold answer for {self.scorer} to check against; "
                "give it one, or build with --skip-bad to skip such rows"
            )
            if not ctx.skip_bad:
                raise bad
            ctx.bad.append(bad)
        return kept


THINK_TAG = re.compile(r"</?think>")


def scrub_think_tags(text: str) -> tuple[str, int]:
    """Remove every think tag, repeating because a removal can join a new one ('<<think>think>')."""
    total = 0
    while True:
        text, removed = THINK_TAG.subn("", text)
        if not removed:
            return text, total
        total += removed


class StripReasoning(Transform):
    """The NoCoT condition: drop the think block, keep the final summary and answer."""

    kind: Literal["strip_reasoning"] = "strip_reasoning"
    """Selects this transform."""

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:
        counts = Counter({"stripped": 0, "had_no_reasoning": 0, "tags_removed": 0, "dropped_empty_final": 0})
        out: list[Example] = []
        dropped: list[str] = []
        for row in rows:
            counts["stripped" if row.reasoning is not None else "had_no_reasoning"] += 1
            final = row.final
            if "</think>" in final:  # a think block left inside the final part: keep what follows it
                final = final[final.rfind("</think>") + len("</think>") :]
            final, removed = scrub_think_tags(final)
            prompt = []
            for message in row.prompt:  # the guarantee is "no think tag anywhere", prompts included
                content, n = scrub_think_tags(message.content)
                prompt.append(Message(role=message.role, content=content))
                removed += n
            counts["tags_removed"] += removed
            if not final.strip():
                # Nothing is left to train on (e.g. a trace cut off before its answer).
                counts["dropped_empty_final"] += 1
                dropped.append(row.id)
                continue
            out.append(row.model_copy(update={"reasoning": None, "final": final.strip(), "prompt": prompt}))
        return out, self.log(rows, out, dict(counts), dropped_ids=dropped)


class Subsample(Transform):
    """Keep a seeded random subset, in the original order."""

    kind: Literal["subsample"] = "subsample"
    """Selects this transform."""
    n: int | None = Field(None, gt=0)
    """Rows to keep."""
    fraction: float | None = Field(None, gt=0, le=1)
    """Share of rows to keep (instead of n)."""
    seed: int | None = None
    """Sampling seed; defaults to the spec seed."""

    @model_validator(mode="after")
    def _one_size(self) -> Subsample:
        if (self.n is None) == (self.fraction is None):
            raise ValueError("give exactly one of n or fraction")
        return self

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:
        size = self.n if self.n is not None else round(self.fraction * len(rows))  # type: ignore[operator]
        if size > len(rows):
            raise ctx.error(f"asks for {size} rows but only {len(rows)} reach this step", "n")
        keep = sorted(ctx.rng(self.kind, self.seed).sample(range(len(rows)), size))
        out = [rows[i] for i in keep]
        return out, self.log(rows, out, {"kept": len(out), "dropped": len(rows) - len(out)})


def prompt_key(row: Example) -> str:
    """The prompt text with whitespace runs collapsed: reformatted copies count as duplicates."""
    return "\n".join(f"{m.role}: {' '.join(m.content.split())}" for m in row.prompt)


class Dedupe(Transform):
    """Drop rows whose prompt (or content id) was already seen; the first occurrence stays."""

    kind: Literal["dedupe"] = "dedupe"
    """Selects this transform."""
    by: Literal["prompt", "id"] = "prompt"
    """'prompt': the prompt text, whitespace-normalised; 'id': the row id (a content hash unless given)."""

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:
        seen: set[str] = set()
        out: list[Example] = []
        dropped: list[str] = []
        for row in rows:
            key = prompt_key(row) if self.by == "prompt" else row.id
            if key in seen:
                dropped.append(row.id)
                continue
            seen.add(key)
            out.append(row)
        return out, self.log(rows, out, {"kept": len(out), "duplicates": len(dropped)}, dropped_ids=dropped)


class Mix(Transform):
    """Weighted union of the rows so far with other sources, sampled to a total size."""

    kind: Literal["mix"] = "mix"
    """Selects this transform."""
    weight: float = Field(1.0, gt=0)
    """Weight of the rows that reach this step."""
    parts: list[MixPart] = Field(min_length=1)
    """The other weighted sources."""
    total: int | None = Field(None, gt=0)
    """Rows after the mix; defaults to the rows that reach this step."""
    seed: int | None = None
    """Sampling seed; defaults to the spec seed."""

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:
        parts = [rows] + [load_source(part.source, ctx) for part in self.parts]
        weights = [self.weight] + [part.weight for part in self.parts]
        names = ["(previous steps)"] + [source_label(part.source) for part in self.parts]
        total = len(rows) if self.total is None else self.total
        out, taken = mix_examples(parts, weights, names, total, ctx.rng(self.kind, self.seed), ctx)
        return out, self.log(rows, out, {t["source"]: t["rows"] for t in taken}, parts=taken)
