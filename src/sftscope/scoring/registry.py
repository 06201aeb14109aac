"""The Scoring API: scorers by name, and `score_batch`, the one entry point of data `verify` and evaluation.

How a batch runs depends on what can go wrong inside a check:

- *pure* checks (math, Countdown, reasoning-gym, ...) may hang inside sympy or a verifier: with
  ``workers > 0`` they run in `pool.run_checks`, one process per worker, each item under
  ``timeout_s``; ``workers=0`` runs them inline without a limit, for cheap checks and debugging;
- *self-timed* checks (code execution, the HTTP judge) wait on a subprocess or a socket and enforce
  ``timeout_s`` themselves: they run in ``max(workers, 1)`` threads.

Either way one `ScoreResult` comes back per item, in order; a check that raises or overruns
becomes an `error` / `timeout` row with score 0, never an exception out of `score_batch`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from sftscope.errors import SftscopeError
from sftscope.scoring import code, ifeval, judge, refusal
from sftscope.scoring.basic import (
    check_countdown,
    check_exact,
    check_reasoning_gym,
    validate_countdown_params,
)
from sftscope.scoring.choice import check_choice
from sftscope.scoring.math import check_math
from sftscope.scoring.pool import PoolOutcome, run_checks, run_threaded
from sftscope.scoring.result import ScoreItem, ScoreResult, ScorerParamError

__all__ = [
    "SCORERS",
    "ScoreItem",
    "ScoreResult",
    "Scorer",
    "ScorerParamError",
    "UnknownScorerError",
    "get_scorer",
    "score_batch",
]


@dataclass(frozen=True)
class Scorer:
    """A named check and how to run it."""

    name: str
    """The name task specs use."""
    check: Callable[..., ScoreResult]
    """`check(item, params)`, plus `timeout_s=` when self-timed; module-level so workers can import it."""
    params: tuple[str, ...] = ()
    """The accepted keys of `params`; anything else is a spec error."""
    self_timed: bool = False
    """True when the check enforces `timeout_s` itself and runs in threads instead of processes."""
    validate: Callable[[Mapping[str, Any]], None] | None = None
    """Checks param values once per batch, so a bad spec fails loudly instead of erroring every row."""
    needs_gold: bool = False
    """True when the check compares against a gold answer, so a task row without one is bad input."""
    unstripped: Callable[[Mapping[str, Any]], bool] | None = None
    """Given the params, True when the check must see the final text exactly as generated, leading
    blank lines included (lm-eval's IFEval does not strip); otherwise it gets the stripped text."""
    reads_answer: bool = False
    """True when the check reads a final answer out of the response. An output cut at the token
    limit has none (what a check would find there is a number from the middle of the work), so the
    sweep marks it `truncated` instead of scoring it. Checks of the response as a whole (refusal,
    the judge, IFEval) score a cut output as it is: a harmful answer cut short is still harmful."""


class UnknownScorerError(SftscopeError):
    """A scorer name that is not registered; the message lists the known names."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f"unknown scorer {name!r}; known scorers: {', '.join(sorted(SCORERS))}")


SCORERS: dict[str, Scorer] = {
    scorer.name: scorer
    for scorer in (
        Scorer("math", check_math, needs_gold=True, reads_answer=True),
        Scorer(
            "countdown", check_countdown, ("rule",), validate=validate_countdown_params, reads_answer=True
        ),
        Scorer("choice", check_choice, params=("letters",), needs_gold=True, reads_answer=True),
        Scorer("exact", check_exact, needs_gold=True, reads_answer=True),
        Scorer("reasoning_gym", check_reasoning_gym, reads_answer=True),
        Scorer("refusal", refusal.check_refusal, ("expect",), validate=refusal.validate_params),
        Scorer(
            "ifeval",
            ifeval.check_ifeval,
            ("mode", "semantics"),
            validate=ifeval.validate_params,
            unstripped=ifeval.wants_unstripped,
        ),
        Scorer(
            "code",
            code.check_code,
            ("memory_mb", "allow_unsandboxed"),
            self_timed=True,
            validate=code.validate_params,
            reads_answer=True,
        ),
        Scorer(
            "judge",
            judge.check_judge,
            params=("base_url", "model", "api_key_env", "max_tokens", "prices"),
            self_timed=True,
            validate=judge.validate_params,
        ),
    )
}


def get_scorer(name: str) -> Scorer:
    """The registered scorer, or `UnknownScorerError` naming the known ones."""
    try:
        return SCORERS[name]
    except KeyError:
        raise UnknownScorerError(name) from None


def check_params(scorer: Scorer, params: Mapping[str, Any]) -> None:
    """Raise `ScorerParamError`, naming the param, for one the scorer does not accept or whose value
    is invalid."""
    unknown = sorted(set(params) - set(scorer.params))
    if unknown:
        accepted = ", ".join(scorer.params) or "none"
        raise ScorerParamError(scorer.name, unknown[0], f"unknown params {unknown}; accepted: {accepted}")
    if scorer.validate is not None:
        scorer.validate(params)


def score_batch(
    scorer: str,
    items: Sequence[ScoreItem],
    *,
    timeout_s: float = 5.0,
    workers: int = 2,
    params: Mapping[str, Any] | None = None,
) -> list[ScoreResult]:
    """Score every item with the named scorer; one result per item, in order.

    Raises only for a bad call (unknown scorer or params, a worker that cannot start), never for an item.
    """
    spec = get_scorer(scorer)
    params = dict(params or {})
    check_params(spec, params)
    if spec.self_timed:
        fn = partial(spec.check, params=params, timeout_s=timeout_s)
        outcomes = run_threaded(fn, items, workers=workers)
    else:
        outcomes = run_checks(partial(spec.check, params=params), items, timeout_s=timeout_s, workers=workers)
    return [_as_result(outcome) for outcome in outcomes]


def _as_result(outcome: PoolOutcome) -> ScoreResult:
    if outcome.status == "ok":
        if isinstance(outcome.value, ScoreResult):
            return outcome.value
        returned = type(outcome.value).__name__
        return ScoreResult("error", 0.0, None, f"check returned {returned}, not a ScoreResult")
    return ScoreResult(outcome.status, 0.0, None, outcome.error)
