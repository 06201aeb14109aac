"""Procedure versus surface: does a backtrack marker lead to a genuinely different attempt?

In checkable domains (Countdown, arithmetic) an attempt is visible as equations `a op b = c`. A
backtrack marker ("wait", "that's not right", ...) is *effective* when the first equation after
it is a new attempt: its operands or operations differ from every equation since the previous
marker, and it does not simply continue from the last result (continuing is extending the same
attempt, not backtracking). Any other marker is *surface*: the words of a backtrack without the
act, e.g. "Wait, let me recompute: 25 * 3 = 75" or a "wait" followed by no attempt at all.

The procedure-versus-surface index is effective / (effective + surface): the share of markers that
are real backtracks. A share rather than effective/surface because it is defined when a model
never writes a surface marker and is bounded, so checkpoints can be averaged and bootstrapped.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from sftscope.scoring.behaviours import episodes
from sftscope.scoring.countdown import normalise_expression

_NUMBER = r"\d+(?:\.\d+)?"
_OP = r"(?:[+\-*/×÷·−]|\\times|\\cdot|\\div)"
# A left-hand side: at least two numbers joined by operators (plain, typeset or LaTeX), with
# optional brackets. The right-hand side must not continue as an expression, so that
# "3 + 4 = 7 * 2" is not read as an attempt whose result is 7.
_EQUATION = re.compile(
    rf"(?<![\d.])(?P<lhs>\(*\s*{_NUMBER}(?:\s*\)*\s*{_OP}\s*\(*\s*{_NUMBER})+\s*\)*)"
    rf"\s*=\s*(?P<rhs>-?{_NUMBER})(?![\d.]*\s*{_OP})"
)


@dataclass(frozen=True)
class Attempt:
    """One equation: what was combined, how, and what came out."""

    operands: tuple[str, ...]
    """The numbers on the left-hand side, sorted (order does not make a new attempt)."""
    operators: tuple[str, ...]
    """The operators on the left-hand side, sorted."""
    result: str
    """The right-hand side as written."""
    start: int
    """Character offset in the text."""

    @property
    def signature(self) -> tuple[tuple[str, ...], tuple[str, ...]]:
        return self.operands, self.operators


@dataclass(frozen=True)
class ProcedureCounts:
    """Backtrack markers in one text, split by whether an attempt really changed."""

    effective: int = 0
    surface: int = 0

    @property
    def markers(self) -> int:
        return self.effective + self.surface


def _canonical(number: str) -> str:
    """'75.0' and '75' are the same operand."""
    return str(float(number)).removesuffix(".0")


def parse_attempts(text: str) -> list[Attempt]:
    """Every equation `a op b [op c ...] = r` in the text, in order."""
    attempts = []
    for match in _EQUATION.finditer(text):
        lhs = normalise_expression(match["lhs"])
        operators = re.findall(r"[+\-*/]", lhs)
        operands = sorted(_canonical(n) for n in re.findall(_NUMBER, lhs))
        attempts.append(
            Attempt(tuple(operands), tuple(sorted(operators)), _canonical(match["rhs"]), match.start())
        )
    return attempts


def _is_new_attempt(candidate: Attempt, before: list[Attempt]) -> bool:
    seen = {a.signature for a in before}
    if candidate.signature in seen:
        return False
    # Building on the latest result ("67. Wait, 67 + 5 = 72") extends the same line of attack.
    return not (before and before[-1].result in Counter(candidate.operands))


def count_procedure(text: str, markers: list[tuple[int, int]] | None = None) -> ProcedureCounts:
    """Classify each backtrack episode in `text` as effective or surface.

    `markers` are the text's backtracking episodes when the caller has them already.
    """
    markers = episodes(text, "backtracking") if markers is None else markers
    if not markers:
        return ProcedureCounts()
    attempts = parse_attempts(text)
    effective = surface = 0
    previous_end = 0
    for index, (start, end) in enumerate(markers):
        next_start = markers[index + 1][0] if index + 1 < len(markers) else len(text)
        before = [a for a in attempts if previous_end <= a.start < start]
        after = [a for a in attempts if end <= a.start < next_start]
        if after and _is_new_attempt(after[0], before):
            effective += 1
        else:
            surface += 1
        previous_end = end
    return ProcedureCounts(effective=effective, surface=surface)


def procedure_index(counts: list[ProcedureCounts]) -> float | None:
    """effective / markers over many texts; None when there was no marker at all."""
    markers = sum(c.markers for c in counts)
    return sum(c.effective for c in counts) / markers if markers else None
