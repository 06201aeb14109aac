"""The two records of the Scoring API: what goes into a scorer and what comes out.

They live apart from `registry` so that scorer modules (imported in pool workers) can build
results without importing the registry and every other scorer with it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from sftscope.errors import SftscopeError

Outcome = Literal["correct", "wrong", "unparsable", "timeout", "error"]


@dataclass(frozen=True)
class ScoreItem:
    """One response to score."""

    prediction: str
    """The *final* part of the response: the caller strips reasoning with `split_response` first,
    and passes "" for a response cut off inside its think block."""
    gold: str | None
    """The gold answer (a math expression, a letter, ...); None for scorers that use only `meta`."""
    meta: dict[str, Any] = field(default_factory=dict)
    """Scorer-specific inputs: Countdown `numbers`/`target`, reasoning-gym `rg_dataset`/`rg_entry`, ..."""


@dataclass(frozen=True)
class ScoreResult:
    """The verdict on one item. `score` is 1.0 for the desired behaviour."""

    outcome: Outcome
    """correct | wrong | unparsable (no answer could be extracted) | timeout | error (the check raised)."""
    score: float
    """In [0, 1]; partial credit only where the scorer defines it (IF checks, reasoning-gym)."""
    extracted: str | None = None
    """The answer the scorer read from the prediction, for inspection."""
    error: str | None = None
    """Why an item is `error` or `timeout`; on a graded item, a note the report should show (the
    code scorer's ``unsandboxed: ...``); None otherwise."""


def graded(ok: bool, extracted: str | None) -> ScoreResult:
    """A binary verdict on an answer that was extracted."""
    return ScoreResult("correct" if ok else "wrong", 1.0 if ok else 0.0, extracted)


def unparsable(extracted: str | None = None) -> ScoreResult:
    """No usable answer in the prediction: scored 0, counted separately from wrong answers."""
    return ScoreResult("unparsable", 0.0, extracted)


class ScorerParamError(SftscopeError):
    """A scorer param with a bad value (or an unknown one); `param` names it, so a spec can point at it."""

    def __init__(self, scorer: str, param: str, reason: str) -> None:
        self.scorer, self.param, self.reason = scorer, param, reason
        super().__init__(f"scorer {scorer!r} param {param}: {reason}")
