"""The small answer scorers: exact string match, Countdown, and reasoning-gym's own verifiers."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from sftscope.scoring.countdown import DEFAULT_RULE, RULES
from sftscope.scoring.countdown import check_countdown as check_expression
from sftscope.scoring.extract import final_answer, last_boxed, strip_bold, strip_math_delimiters
from sftscope.scoring.result import ScoreItem, ScoreResult, ScorerParamError, graded, unparsable

_TEXT_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")


def normalise(answer: str) -> str:
    """Case, spacing, math delimiters, \\text{} and a closing period do not change an exact answer."""
    answer = _TEXT_WRAPPER.sub(r"\1", strip_math_delimiters(strip_bold(answer)))
    answer = " ".join(answer.split()).casefold()
    return answer[:-1].rstrip() if answer.endswith(".") else answer


def check_exact(item: ScoreItem, params: Mapping[str, Any]) -> ScoreResult:
    """Normalised string equality of the marked answer (or the last line) with the gold. No params."""
    if item.gold is None:
        raise ValueError("the exact scorer needs a gold answer")
    answer = final_answer(item.prediction)
    if answer is None:
        return unparsable()
    return graded(normalise(answer) == normalise(item.gold), answer)


def validate_countdown_params(params: Mapping[str, Any]) -> None:
    """`rule`, when given, is one of the countdown module's `RULES`."""

    if "rule" in params and params["rule"] not in RULES:
        raise ScorerParamError(
            "countdown", "rule", f"must be one of {', '.join(RULES)}, got {params['rule']!r}"
        )


def check_countdown(item: ScoreItem, params: Mapping[str, Any]) -> ScoreResult:
    """The last boxed expression, checked exactly: value == target, the numbers used by `rule`
    (param; at_most_once by default, or exactly_once: see `sftscope.scoring.countdown`).

    `meta` holds `numbers` (list of int) and `target` (int). In a boxed equation such as
    "(3+5)*3 = 24" the side that merely restates the target is dropped; otherwise the left side counts.
    """
    # Imported here: the checker is another module's, and the registry must import without it.

    numbers, target = item.meta.get("numbers"), item.meta.get("target")
    if numbers is None or target is None:
        raise ValueError("the countdown scorer needs meta['numbers'] and meta['target']")
    expression = last_boxed(item.prediction)
    if expression is None:
        return unparsable()
    if "=" in expression:
        sides = [side.strip() for side in expression.split("=")]
        expression = next((side for side in sides if side != str(target)), sides[0])
    rule = params.get("rule", DEFAULT_RULE)
    verdict = check_expression(expression, [int(n) for n in numbers], int(target), rule)
    if verdict.reason == "unparsable":
        return unparsable(expression)
    return graded(verdict.ok, expression)


@cache
def _rg_score_fn(dataset: str) -> Callable[[str | None, dict[str, Any]], float]:
    # Building a dataset object per item would regenerate its config each time; one per process.
    from reasoning_gym import get_score_answer_fn

    return get_score_answer_fn(dataset)


def check_reasoning_gym(item: ScoreItem, params: Mapping[str, Any]) -> ScoreResult:
    """reasoning-gym's own verifier on the marked answer (or the last line).

    `meta` holds `rg_dataset` (generator name) and `rg_entry` (the generator's entry dict). The
    score is reasoning-gym's float (some tasks give partial credit); correct iff it is 1.0.
    """
    dataset, entry = item.meta.get("rg_dataset"), item.meta.get("rg_entry")
    if not dataset or not isinstance(entry, dict):
        raise ValueError("the reasoning_gym scorer needs meta['rg_dataset'] and meta['rg_entry']")
    answer = final_answer(item.prediction)
    if answer is None:
        return unparsable()
    score = float(_rg_score_fn(str(dataset))(answer, entry))
    return ScoreResult("correct" if score == 1.0 else "wrong", score, answer)
