"""Remove training rows that share an n-gram with an evaluation set, and report every hit by id.

Text is normalised to lowercase word tokens (`\\w+`), so spacing, punctuation and LaTeX braces do not
hide an overlap. The default n of 13 words follows common decontamination practice (GPT-3, open-r1).
An evaluation text shorter than n words is matched as a whole, so short problems are still checked.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from typing import Any, Literal

from pydantic import Field

from sftscope.data.records import Example
from sftscope.data.sources import BuildContext, Source, load_source, source_label
from sftscope.data.transforms import Transform, TransformLog

WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    """Lowercase word tokens."""
    return WORD.findall(text.lower())


def ngrams(tokens: list[str], n: int) -> Iterator[tuple[str, ...]]:
    for start in range(len(tokens) - n + 1):
        yield tuple(tokens[start : start + n])


class NgramIndex:
    """The n-grams of evaluation texts, each pointing to the first (set, row id) it came from."""

    def __init__(self, n: int):
        self.n = n
        self.grams: dict[tuple[str, ...], tuple[str, str]] = {}
        self.lengths: set[int] = set()

    def add(self, text: str, owner: tuple[str, str]) -> None:
        tokens = words(text)
        grams = list(ngrams(tokens, self.n)) if len(tokens) >= self.n else [tuple(tokens)] if tokens else []
        for gram in grams:
            self.grams.setdefault(gram, owner)
            self.lengths.add(len(gram))

    def first_hit(self, text: str) -> tuple[tuple[str, ...], tuple[str, str]] | None:
        tokens = words(text)
        for length in sorted(self.lengths, reverse=True):
            for gram in ngrams(tokens, length):
                if gram in self.grams:
                    return gram, self.grams[gram]
        return None


class Decontaminate(Transform):
    """Drop rows whose text shares an n-gram with any given evaluation set."""

    kind: Literal["decontaminate"] = "decontaminate"
    """Selects this transform."""
    against: list[Source] = Field(min_length=1)
    """Evaluation sets (any source; read without responses, a `mapping` picks the question column)."""
    n: int = Field(13, ge=1)
    """N-gram length in normalised words."""
    fields: list[Literal["question", "response"]] = Field(default_factory=lambda: ["question"], min_length=1)
    """Which parts of a training row are checked: the last user turn, and/or the response."""

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:
        index = NgramIndex(self.n)
        sizes: dict[str, int] = {}
        for source in self.against:
            label = source_label(source)
            evaluation = load_source(source, ctx, role="eval", require_response=False)
            sizes[label] = len(evaluation)
            for row in evaluation:
                index.add(row.question, (label, row.id))
        out: list[Example] = []
        hits: list[dict[str, Any]] = []
        for row in rows:
            texts = {"question": row.question, "response": row.response_text()}
            found = next(
                (hit for hit in (index.first_hit(texts[f]) for f in self.fields) if hit is not None), None
            )
            if found is None:
                out.append(row)
                continue
            gram, (label, eval_id) = found
            hits.append({"id": row.id, "eval_set": label, "eval_id": eval_id, "ngram": " ".join(gram)})
        per_set = Counter(hit["eval_set"] for hit in hits)
        counts = {"kept": len(out), "removed": len(hits)}
        return out, self.log(
            rows, out, counts, n=self.n, eval_sets=sizes, hits_per_set=dict(per_set), hits=hits
        )
