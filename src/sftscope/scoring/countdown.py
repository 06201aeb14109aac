"""The one exact Countdown checker, shared by data verification, the teacher and evaluation.

An answer is a bare arithmetic expression (extraction from ``\\boxed{}`` happens elsewhere). It is
parsed with :mod:`ast` and never evaluated by Python: only integer literals, binary ``+ - * /``,
signs and parentheses are accepted, and the value is computed exactly with
:class:`fractions.Fraction`, so ``7/2*2`` is 7 and no float rounding can turn a wrong answer into a
right one.

Two rules say which numbers an answer may use (`RULES`), each with multiset semantics (``[3, 3]``
gives two 3s): ``at_most_once``, the micro world's ("use each number at most once"), and
``exactly_once``, reasoning-gym's and the reference study's ("using all the numbers", each once).
A sign is accepted as reasoning-gym accepts it: its own solutions start with one when sympy orders
the terms so (``-100 + (92*(24+15) - 83)/5``); ``-3`` uses the given 3, and a sign adds no number.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, get_args

# Models trained on other data write multiplication and division the typeset way; these are the
# only rewrites, each unambiguous. A bare "x" is deliberately not one: "3x4" is too close to
# algebra to guess at.
_NORMALISE = (
    ("\\times", "*"),
    ("\\cdot", "*"),
    ("\\div", "/"),
    ("×", "*"),
    ("·", "*"),
    ("÷", "/"),
    ("−", "-"),
    # Sized and square brackets only group; LaTeX writes them around sub-expressions.
    ("\\left(", "("),
    ("\\right)", ")"),
    ("\\left[", "("),
    ("\\right]", ")"),
    ("[", "("),
    ("]", ")"),
)

# \frac{a}{b} (and \dfrac, \tfrac) is a division of the two groups; innermost first, so nested
# fractions unwind one level per pass.
_FRACTION = re.compile(r"\\[dt]?frac\s*\{([^{}]*)\}\s*\{([^{}]*)\}")

# Checked before parsing: Python's grammar accepts literals a Countdown answer must not contain
# ("1_0" is ten, "0x10" is sixteen, "1e3" is a float), so only plain digits get through.
_ALLOWED_TEXT = re.compile(r"[0-9+\-*/()\s]+")

_OPERATORS: dict[type[ast.operator], str] = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}

Rule = Literal["at_most_once", "exactly_once"]
RULES: tuple[str, ...] = get_args(Rule)
DEFAULT_RULE: Rule = "at_most_once"


@dataclass(frozen=True)
class CountdownCheck:
    """The verdict on one expression."""

    ok: bool
    """True when the expression is well formed, uses only available numbers and hits the target."""
    value: Fraction | None
    """The exact value, when the expression could be evaluated."""
    reason: str
    """'ok', or why not: 'unparsable', 'number not available: 7', 'evaluates to 12, not 24', ..."""


class _Rejected(Exception):
    """An expression that is not a Countdown answer; the message is the reason."""


def normalise_expression(expression: str) -> str:
    """Rewrite typeset operators (×, ÷, \\times, \\div, \\cdot, −) to ``* / -``, brackets
    (``[ ]``, ``\\left( \\right)``) to parentheses, and ``\\frac{a}{b}`` to ``((a)/(b))``."""
    for typeset, plain in _NORMALISE:
        expression = expression.replace(typeset, plain)
    while (unwound := _FRACTION.sub(r"((\1)/(\2))", expression)) != expression:
        expression = unwound
    return expression.strip()


def _literals(node: ast.expr) -> list[int]:
    """The integer literals of an accepted tree, left to right."""
    if isinstance(node, ast.Constant):
        return [node.value]
    if isinstance(node, ast.UnaryOp):
        return _literals(node.operand)
    assert isinstance(node, ast.BinOp)
    return _literals(node.left) + _literals(node.right)


def _validate(node: ast.expr) -> None:
    """Raise `_Rejected` for anything but integer literals, signs and binary + - * /."""
    if isinstance(node, ast.Constant):
        # bool is an int subclass, but "True" cannot pass the text filter; the check stays for safety.
        if type(node.value) is not int:
            raise _Rejected("unparsable")
        return
    if isinstance(node, ast.UnaryOp):
        # Only + and - get past the text filter; the check stays for safety.
        if not isinstance(node.op, (ast.USub, ast.UAdd)):
            raise _Rejected("unparsable")
        _validate(node.operand)
        return
    if isinstance(node, ast.BinOp):
        if type(node.op) not in _OPERATORS:
            # ** in particular: besides not being a Countdown operation, 9**9**9 would hang the checker.
            raise _Rejected(f"operator not allowed: {_op_text(node.op)}")
        _validate(node.left)
        _validate(node.right)
        return
    raise _Rejected("unparsable")


def _op_text(op: ast.operator) -> str:
    """How a rejected operator reads: only ** and // get past the text filter."""
    return "**" if isinstance(op, ast.Pow) else "//"


def _evaluate(node: ast.expr) -> Fraction:
    if isinstance(node, ast.Constant):
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp):
        operand = _evaluate(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    assert isinstance(node, ast.BinOp)
    left, right = _evaluate(node.left), _evaluate(node.right)
    symbol = _OPERATORS[type(node.op)]
    if symbol == "+":
        return left + right
    if symbol == "-":
        return left - right
    if symbol == "*":
        return left * right
    if right == 0:
        raise _Rejected("division by zero")
    return left / right


def _parse(expression: str) -> ast.expr:
    if not _ALLOWED_TEXT.fullmatch(expression):
        raise _Rejected("unparsable")
    try:
        tree = ast.parse(expression, mode="eval").body
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        # RecursionError/MemoryError: deeply nested parentheses are garbage, not a crash.
        raise _Rejected("unparsable") from None
    _validate(tree)
    return tree


def check_countdown(
    expression: str, numbers: Sequence[int], target: int, rule: Rule = DEFAULT_RULE
) -> CountdownCheck:
    """Check a bare expression against a Countdown problem, exactly, under `rule`: each given number
    used at most once (numbers may be left out), or each exactly once."""
    if rule not in RULES:
        raise ValueError(f"countdown rule must be one of {', '.join(RULES)}, got {rule!r}")
    try:
        tree = _parse(normalise_expression(expression))
        available, used = Counter(numbers), Counter(_literals(tree))
        for number, count in used.items():
            if number not in available:
                raise _Rejected(f"number not available: {number}")
            if count > available[number]:
                raise _Rejected(f"number used too often: {number}")
        if rule == "exactly_once" and (unused := sorted((available - used).elements())):
            raise _Rejected(f"numbers not used: {', '.join(map(str, unused))}")
        value = _evaluate(tree)
    except _Rejected as rejected:
        return CountdownCheck(ok=False, value=None, reason=str(rejected))
    if value != target:
        return CountdownCheck(ok=False, value=value, reason=f"evaluates to {value}, not {target}")
    return CountdownCheck(ok=True, value=value, reason="ok")
