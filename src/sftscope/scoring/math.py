"""Math answers checked with math-verify, gold first, boxed first, percent signs made explicit.

Decisions, each against a known pitfall:

- **Argument order.** ``verify(gold, pred)`` is asymmetric (assignments like ``x=2`` and intervals
  are simplified from the gold's side), so the gold is always the first argument.
- **What the answer is.** `extract.math_span` picks it (last ``\\boxed{}``, then "the answer is
  X"); only when there is none does math-verify search the whole final text, with ``\\boxed``
  at priority 0 as its README recommends (its default, 50, lets a stray "final answer" phrase win).
  Several boxed answers: the last one counts (math-verify alone would read them as a set).
- **Prose in the answer.** "The answer is therefore 5." is graded on ``5``: wrapped whole in
  ``$...$``, the words would parse as products of symbols and a right answer would score wrong.
  Lead-ins ("To find the answer: we add 2 and 3.") are dropped before math-verify searches the
  text, so its own "answer" anchor does not pick a number out of the working.
- **Bold.** Markdown bold is removed first, so ``**73**`` is read as 73 (Math-Verify#76).
- **Percent policy: "the number as written".** Percent signs (``%``, ``\\%``, "percent") are
  removed from gold and prediction before parsing, so ``50\\%`` equals ``50`` (the MATH dataset's
  convention) and ``0.5`` never equals ``50\\%``. math-verify on its own accepts both, which is the
  x == x/100 leniency that Qwen2.5-Math#29 reports.
- **Timeouts.** math-verify's SIGALRM timeout is switched off (``None``); the scorer runs in
  `sftscope.scoring.pool`, which enforces the limit by killing the worker.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

from sftscope.scoring.extract import drop_lead_ins, math_span, strip_bold
from sftscope.scoring.result import ScoreItem, ScoreResult, graded, unparsable

_CONFIG = (LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig())
_MATH_DELIMITER = re.compile(r"(?<!\\)\$")  # an unescaped dollar; `\$` is a currency sign
_PERCENT = re.compile(r"\\?%|\\text\{\s*percent(?:age)?\s*\}|\bpercent(?:age)?\b", re.IGNORECASE)


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once per process that its timeout is off; here that is deliberate."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.parser", "math_verify.grader"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


def drop_percent(text: str) -> str:
    """Remove percent signs and words: the percent policy above."""
    return _PERCENT.sub("", text)


def _parse(text: str) -> list[Any]:
    return parse(text, list(_CONFIG), parsing_timeout=None)


def parse_answer(answer: str) -> list[Any]:
    """Parse one answer string (no surrounding prose), in math mode first, then as plain text."""
    answer = drop_percent(answer).strip()
    # An escaped dollar (`\$42`, a currency sign) is not a math delimiter: it still needs wrapping.
    if _MATH_DELIMITER.search(answer) or "\\boxed" in answer:
        return _parse(answer)
    return _parse(f"${answer}$") or _parse(answer)


def check_math(item: ScoreItem, params: Mapping[str, Any]) -> ScoreResult:
    """Score one prediction against a gold math answer. No params."""
    if item.gold is None or not item.gold.strip():
        raise ValueError("the math scorer needs a gold answer")
    gold = parse_answer(item.gold)
    if not gold:
        raise ValueError(f"math-verify cannot parse the gold answer {item.gold!r}")
    text = strip_bold(item.prediction)
    span = math_span(text)
    if span is not None:
        pred = parse_answer(span)
    elif text.strip():
        pred = _parse(drop_percent(drop_lead_ins(text)))
    else:
        pred = []
    if not pred:
        return unparsable(span)
    # parse() returns [sympy object, the string it matched]; the string is what a reader checks.
    extracted = span if span is not None else str(pred[-1])
    return graded(verify(gold, pred, timeout_seconds=None), extracted)
