"""The low-quality condition: corrupt a share of rows so they look right but are not.

Three kinds, each a plausible mistake rather than noise:
- `wrong_answer`: the last \\boxed{} answer becomes a near miss (a number off by a little, a Countdown
  expression with one operator swapped so it no longer reaches the target, another option letter);
- `broken_step`: one correct arithmetic step `a op b = c` in the reasoning gets a wrong result;
- `truncate`: the trace is cut part-way and the final part is dropped.
Every changed row records `meta["corruption"] = {"kind", "detail"}`; the gold answer is kept, so a
later `verify` would catch the change.
"""

from __future__ import annotations

import ast
import operator
import random
import re
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any, Literal

from pydantic import Field

from sftscope.data.records import Example
from sftscope.data.sources import BuildContext
from sftscope.data.transforms import Transform, TransformLog

Kind = Literal["wrong_answer", "broken_step", "truncate"]
KINDS: tuple[Kind, ...] = ("wrong_answer", "broken_step", "truncate")
Corruptor = Callable[[Example, random.Random], tuple[Example, dict[str, Any]] | None]

NUMBER = re.compile(r"-?\d+(?:\.\d+)?")
PLAIN_EXPRESSION = re.compile(r"[\d\s+\-*/().]+")
OPS: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
}
# `a op b = c` as written in traces: ASCII, Unicode and LaTeX operators; the first operand must not be
# the tail of a longer number or expression term.
STEP = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*(\+|-|\*|/|×|÷|·|\\times|\\cdot|\\div)\s*(\d+(?:\.\d+)?)\s*=\s*(-?\d+(?:\.\d+)?)"
)
STEP_OPS: dict[str, Callable[[Fraction, Fraction], Fraction]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "×": operator.mul, "·": operator.mul,
    "\\times": operator.mul, "\\cdot": operator.mul, "/": operator.truediv, "÷": operator.truediv,
    "\\div": operator.truediv,
}  # fmt: skip


def last_boxed(text: str) -> tuple[int, int] | None:
    """Start and end of the content of the last \\boxed{...}, braces balanced."""
    start = text.rfind("\\boxed{")
    if start == -1:
        return None
    depth, begin = 0, start + len("\\boxed{")
    for index in range(begin, len(text)):
        depth += {"{": 1, "}": -1}.get(text[index], 0)
        if depth < 0:
            return begin, index
    return None


def _evaluate(expression: str) -> Fraction | None:
    """Exact value of a plain arithmetic expression, or None if it is not one (or divides by zero)."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
            return Fraction(str(node.value))
        if isinstance(node, ast.BinOp) and type(node.op) in OPS:
            return OPS[type(node.op)](walk(node.left), walk(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -walk(node.operand)
        raise ValueError("not plain arithmetic")

    try:
        return walk(ast.parse(expression, mode="eval"))
    except (SyntaxError, ValueError, ZeroDivisionError):
        return None


def _nudge(number: str, rng: random.Random) -> str:
    """A near miss: the number moved by 1-9 units of its last digit, keeping its format."""
    decimals = len(number.split(".")[1]) if "." in number else 0
    step = Fraction(1, 10**decimals)
    value = Fraction(number)
    delta = rng.randint(1, 9) * step * rng.choice((-1, 1))
    if value >= 0 > value + delta:  # keep a non-negative answer non-negative: a sign flip is no near miss
        delta = -delta
    moved = value + delta
    return f"{float(moved):.{decimals}f}" if decimals else str(int(moved))


def _swap_operator(expression: str, rng: random.Random) -> str | None:
    """The expression with one operator changed so that its value changes (Countdown answers)."""
    value = _evaluate(expression)
    positions = [i for i, char in enumerate(expression) if char in "+-*/" and i > 0]
    if value is None or not positions:
        return None
    rng.shuffle(positions)
    for position in positions:
        for replacement in rng.sample("+-*/", 4):
            candidate = expression[:position] + replacement + expression[position + 1 :]
            new_value = _evaluate(candidate)
            if new_value is not None and new_value != value:
                return candidate
    return None


def plausible_wrong(answer: str, rng: random.Random) -> str | None:
    """A wrong answer of the same shape as `answer`, or None when there is no sensible one."""
    text = answer.strip()
    if PLAIN_EXPRESSION.fullmatch(text) and re.search(r"\d\s*[+\-*/]\s*[\d(]", text):
        swapped = _swap_operator(text, rng)
        if swapped is not None:
            return swapped
    numbers = list(NUMBER.finditer(text))
    if numbers:
        match = rng.choice(numbers)
        return text[: match.start()] + _nudge(match.group(), rng) + text[match.end() :]
    if re.fullmatch(r"[A-J]", text):  # a multiple-choice letter
        return rng.choice([letter for letter in "ABCD" if letter != text])
    return None


def wrong_answer(row: Example, rng: random.Random) -> tuple[Example, dict[str, Any]] | None:
    span = last_boxed(row.final)
    if span is None:
        return None
    before = row.final[span[0] : span[1]]
    after = plausible_wrong(before, rng)
    if after is None or after.strip() == before.strip():
        return None
    final = row.final[: span[0]] + after + row.final[span[1] :]
    return row.model_copy(update={"final": final}), {"from": before, "to": after}


def _step_holds(a: str, op: str, b: str, c: str) -> bool:
    try:
        value = STEP_OPS[op](Fraction(a), Fraction(b))
    except ZeroDivisionError:
        return False
    decimals = len(c.split(".")[1]) if "." in c else 0
    # A rounded result ("7 / 3 = 2.33") is a correct step as written.
    return round(value, decimals) == Fraction(c) if decimals else value == Fraction(c)


def broken_step(row: Example, rng: random.Random) -> tuple[Example, dict[str, Any]] | None:
    part = "reasoning" if row.reasoning else "final"
    text = row.reasoning or row.final
    steps = [m for m in STEP.finditer(text) if _step_holds(*m.groups())]
    if not steps:
        return None
    step = rng.choice(steps)
    wrong = _nudge(step.group(4), rng)
    start, end = step.span(4)
    changed = text[:start] + wrong + text[end:]
    detail = {"in": part, "step": step.group(), "to": text[step.start() : start] + wrong, "at": step.start()}
    return row.model_copy(update={part: changed}), detail


def truncate(row: Example, rng: random.Random) -> tuple[Example, dict[str, Any]] | None:
    part = "reasoning" if row.reasoning else "final"
    text = row.reasoning or row.final
    cuts = [m.start() for m in re.finditer(r"\s+", text) if 0.2 * len(text) <= m.start() <= 0.8 * len(text)]
    if not cuts:
        return None
    cut = rng.choice(cuts)
    kept = text[:cut].rstrip()
    update = {"reasoning": kept, "final": ""} if part == "reasoning" else {"final": kept}
    return row.model_copy(update=update), {"in": part, "kept_chars": len(kept), "of_chars": len(text)}


CORRUPTORS: dict[Kind, Corruptor] = {
    "wrong_answer": wrong_answer,
    "broken_step": broken_step,
    "truncate": truncate,
}


class Corrupt(Transform):
    """Corrupt `rate` of the rows with a kind drawn from `kinds` among those that apply to the row."""

    kind: Literal["corrupt"] = "corrupt"
    """Selects this transform."""
    rate: float = Field(ge=0, le=1)
    """Share of rows to corrupt."""
    kinds: list[Kind] = Field(default_factory=lambda: list(KINDS), min_length=1)
    """Which corruptions to use: wrong_answer, broken_step, truncate."""
    seed: int | None = None
    """Seed for choosing rows, kinds and changes; defaults to the spec seed."""

    def apply(self, rows: list[Example], ctx: BuildContext) -> tuple[list[Example], TransformLog]:
        rng = ctx.rng(self.kind, self.seed)
        target = round(self.rate * len(rows))
        order = rng.sample(range(len(rows)), len(rows))
        out = list(rows)
        counts: Counter[str] = Counter({kind: 0 for kind in self.kinds})
        done = not_applicable = 0
        # Walk the rows in random order until enough are corrupted; a row no kind applies to (no
        # boxed answer, no arithmetic step, too short to cut) is passed over and counted.
        for index in order:
            if done == target:
                break
            for kind in rng.sample(self.kinds, len(self.kinds)):
                changed = CORRUPTORS[kind](rows[index], rng)
                if changed is not None:
                    row, detail = changed
                    row.meta = {**rows[index].meta, "corruption": {"kind": kind, "detail": detail}}
                    out[index] = row
                    counts[kind] += 1
                    done += 1
                    break
            else:
                not_applicable += 1
        counts["unchanged"] = len(rows) - done
        counts["not_applicable"] = not_applicable
        share = done / len(rows) if rows else 0.0
        return out, self.log(rows, out, dict(counts), target=target, corrupted=done, share=share)
