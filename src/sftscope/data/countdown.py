"""The Countdown teacher: problems from reasoning-gym, a person-like search, traces in three styles.

The solver works the way a careful person does: pick two numbers, combine them, write down the
intermediate result, continue with what is left. A long-cot trace shows a few dead ends first
(attempts that leave two numbers which cannot make the target), backtracks in words to a
genuinely different first move, then the successful path, then recomputes the final expression.
Every answer is correct by construction and checked again with the one exact checker.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import Any, Literal, get_args

import reasoning_gym
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sftscope.data.records import Example, Message
from sftscope.errors import SftscopeError
from sftscope.scoring.countdown import check_countdown

TraceStyle = Literal["long-cot", "short-cot", "answer-only"]
Operator = Literal["+", "-", "*", "/"]
SOURCE = "countdown-teacher"


class CountdownSettings(BaseModel):
    """Difficulty knobs, passed as they are to reasoning-gym's countdown generator."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    min_numbers: int = Field(3, ge=2)
    """Fewest numbers in a problem."""
    max_numbers: int = Field(3, ge=2, le=6)
    """Most numbers in a problem; 6 keeps the teacher's exhaustive search fast."""
    min_value: int = Field(1, ge=1)
    """Smallest given number."""
    max_value: int = Field(10, ge=1)
    """Largest given number; 10 in the micro world, so every step is a small-number fact."""
    min_target: int = Field(1, ge=1)
    """Smallest target."""
    max_target: int = Field(50, ge=1)
    """Largest target; 50 in the micro world."""
    operators: tuple[Operator, ...] = ("+", "-", "*")
    """Operations the generator builds targets with and the teacher searches with."""

    @model_validator(mode="after")
    def _consistent(self) -> CountdownSettings:
        for low, high in (
            ("min_numbers", "max_numbers"),
            ("min_value", "max_value"),
            ("min_target", "max_target"),
        ):
            if getattr(self, low) > getattr(self, high):
                raise ValueError(f"{low} must not exceed {high}")
        if not self.operators or len(set(self.operators)) != len(self.operators):
            raise ValueError("operators must be non-empty and distinct")
        return self


class CountdownProblem(BaseModel):
    """One Countdown problem."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_attribute_docstrings=True)

    numbers: list[int]
    """The given numbers, each usable at most once."""
    target: int
    """The number to make."""
    reference: str = ""
    """reasoning-gym's own solution, kept as provenance: sympy prints it and it may open with a
    unary minus, which the checker rejects, so it is never used as an answer."""
    operators: tuple[Operator, ...] = ("+", "-", "*", "/")
    """Operations the teacher searches with first (the ones the problem was generated with)."""


def _gym_seed(seed: int) -> int:
    # reasoning-gym draws item i from Random(seed + i): seeds s and s+1 would share all but one
    # item, so a training seed and an evaluation seed next to it would overlap. Hashing spreads them.
    return int.from_bytes(hashlib.sha256(f"sftscope-countdown:{seed}".encode()).digest()[:4], "big")


def generate_problems(settings: CountdownSettings, n: int, seed: int) -> list[CountdownProblem]:
    """`n` problems from reasoning-gym's countdown generator, the same for the same seed."""
    if n <= 0:
        return []
    options = settings.model_dump()
    dataset = reasoning_gym.create_dataset("countdown", seed=_gym_seed(seed), size=n, **options)
    try:
        items = [dataset[i] for i in range(n)]
    except ValueError as error:  # the generator gives up when the ranges admit no target
        raise SftscopeError(f"reasoning-gym cannot make Countdown problems with {options}: {error}") from None
    return [
        CountdownProblem(
            numbers=item["metadata"]["numbers"],
            target=item["metadata"]["target"],
            reference=item["answer"],
            operators=settings.operators,
        )
        for item in items
    ]


def countdown_prompt(problem: CountdownProblem) -> str:
    """The one Countdown question of the micro world, for training and evaluation alike."""
    return (
        f"Numbers: {problem.numbers}\nTarget: {problem.target}\n"
        "Use each number at most once with + - * / to make the target."
    )


# Phrasings, drawn with the caller's seeded RNG so traces are not one template. Every backtrack
# phrase must be caught by sftscope.scoring.behaviours (the data card counts backtracking with it).
_TRY = ("Try {m}.", "Start with {m}.", "First, {m}.", "Let me try {m}.", "Combine {a} and {b}: {m}.")
_THEN = ("Then {m}.", "Next, {m}.", "Now {m}.", "After that, {m}.")
_DEAD_END = (
    "That leaves {rest}; no way to reach {t}.",
    "Left with {rest}, which cannot make {t}.",
    "Now {rest} remain, and nothing gives {t}.",
    "{rest} cannot make {t}.",
)
_SHORT_OF = ("Even {m} is below {t}.", "At most {m}, short of {t}.")
_BACK_NEW_PAIR = (
    "Let me go back and try a different pair.",
    "Scratch that, let me try another pair.",
    "Let's start over with another pair.",
)
_BACK_NEW_OP = (
    "Let me go back and try a different operation.",
    "Scratch that, let me try another operation.",
    "Let's backtrack and use another operation.",
)
_BACK_ANY = ("Dead end, back up.", "That doesn't work, let me backtrack.", "That path fails, so back up.")
BACKTRACK_PHRASES: tuple[str, ...] = _BACK_NEW_PAIR + _BACK_NEW_OP + _BACK_ANY
_HIT = ("That's the target.", "That hits {t}.", "Got {t}.", "{t}, the target.")
_VERIFY = (
    "Check: {chain}. Correct.",
    "Verify: {chain}. It works.",
    "Let me check: {chain}. Yes.",
    "Double-check: {chain}, which is the target.",
)
_FINAL = ("So the answer is \\boxed{{{e}}}.", "The answer is \\boxed{{{e}}}.", "Answer: \\boxed{{{e}}}.")

_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}
_ALL: tuple[Operator, ...] = ("+", "-", "*", "/")


@dataclass(frozen=True, eq=False)
class _Term:
    """A number on the table: given (step -1) or made by move `step` from two others.

    A move and the number it makes are one object: a path is the list of terms its moves made.
    """

    value: int
    step: int = -1
    op: str = ""
    left: _Term | None = None
    right: _Term | None = None


def _operands(move: _Term) -> tuple[_Term, _Term]:
    assert move.left is not None and move.right is not None, "a given number was used as a move"
    return move.left, move.right


def _record(move: _Term) -> list[Any]:
    """A move as [a, op, b, result]: what meta records and the trace writes as "a op b=result"."""
    left, right = _operands(move)
    return [left.value, move.op, right.value, move.value]


Pool = tuple[_Term, ...]


def _apply(a: int, op: str, b: int) -> int | None:
    """`a op b` for a >= b, or None unless the result is a positive integer.

    Positive integer intermediates are the classic Countdown rule, and they keep every step a
    small-number fact that the micro base model has seen in pretraining.
    """
    if op == "+":
        return a + b
    if op == "*":
        return a * b
    if op == "-":
        return a - b if a > b else None
    return a // b if a % b == 0 else None


def _moves(pool: Pool, operators: tuple[str, ...], step: int) -> list[tuple[_Term, Pool]]:
    """Every distinct move on the pool (larger number first), with the pool it leaves."""
    seen: set[tuple[int, str, int]] = set()
    out = []
    for i, j in combinations(range(len(pool)), 2):
        a, b = sorted((pool[i], pool[j]), key=lambda term: term.value, reverse=True)
        rest = pool[:i] + pool[i + 1 : j] + pool[j + 1 :]
        for op in operators:
            value = _apply(a.value, op, b.value)
            # Equal values at different places are the same move to a reader: keep one.
            if value is None or (a.value, op, b.value) in seen:
                continue
            seen.add((a.value, op, b.value))
            move = _Term(value, step, op, a, b)
            out.append((move, (*rest, move)))
    return out


def _search(
    pool: Pool,
    target: int,
    operators: tuple[str, ...],
    rng: random.Random,
    use_all: bool,
    dead: set[tuple[int, ...]],
) -> list[_Term] | None:
    """Depth-first search in random order; `dead` memoises pools (as sorted values) with no way out."""
    if use_all and len(pool) == 1:
        return [] if pool[0].value == target else None
    if not use_all and any(term.value == target for term in pool):
        return []
    key = tuple(sorted(term.value for term in pool))
    if len(pool) == 1 or key in dead:
        return None
    # The newest term carries the highest step, so this is the move's index along the path.
    options = _moves(pool, operators, step=max(term.step for term in pool) + 1)
    rng.shuffle(options)
    for move, rest in options:
        found = _search(rest, target, operators, rng, use_all, dead)
        if found is not None:
            return [move, *found]
    dead.add(key)
    return None


def _pair_can_make(c: int, d: int, target: int) -> bool:
    """Whether two numbers make the target under the prompt's rules: all four operations, either
    order, or one number alone. A written dead end must hold for the reader, not only for the
    teacher's operator subset."""
    x, y = Fraction(c), Fraction(d)
    return target in {x, y, x + y, x - y, y - x, x * y, x / y, y / x}


def _dead_end(
    first: _Term, pool: Pool, target: int, operators: tuple[str, ...], rng: random.Random
) -> tuple[list[_Term], Pool] | None:
    """Follow the move `first` (which left `pool`) at random down to two numbers that cannot make
    the target, or give up. No pool on the way may hold the target: a careful person would stop."""
    path = [first]
    while not any(term.value == target for term in pool):
        if len(pool) == 2:
            return None if _pair_can_make(pool[0].value, pool[1].value, target) else (path, pool)
        options = _moves(pool, operators, len(path))
        if not options:
            return None
        move, pool = rng.choice(options)
        path.append(move)
    return None


def _failed_branches(
    root: Pool, solution: _Term, target: int, operators: tuple[str, ...], rng: random.Random, wanted: int
) -> list[tuple[list[_Term], Pool]]:
    """Up to `wanted` dead ends, each opening with its own first move, none with the solution's."""
    firsts = [option for option in _moves(root, operators, 0) if _record(option[0]) != _record(solution)]
    rng.shuffle(firsts)
    branches: list[tuple[list[_Term], Pool]] = []
    for first, pool in firsts:
        if len(branches) == wanted:
            break
        branch = _dead_end(first, pool, target, operators, rng)
        if branch is not None:
            branches.append(branch)
    return branches


def _render(term: _Term, collapsed: int) -> tuple[str, int]:
    """Minimal-bracket text and precedence; results of the first `collapsed` moves show as numbers."""
    if term.step < collapsed or term.left is None:
        return str(term.value), 3
    precedence = _PRECEDENCE[term.op]
    left_term, right_term = _operands(term)
    left, left_precedence = _render(left_term, collapsed)
    right, right_precedence = _render(right_term, collapsed)
    if left_precedence < precedence:
        left = f"({left})"
    # a+(b+c) and a*(b*c) need no brackets; a-(b+c), a/(b*c) and a*(b/c) keep them, the last so
    # that the recomputation reads in the order the trace computed.
    if right_precedence < precedence or (
        right_precedence == precedence and not (right_term.op == term.op and term.op in "+*")
    ):
        right = f"({right})"
    return f"{left}{term.op}{right}", precedence


def _attempt_text(path: list[_Term], rng: random.Random) -> str:
    return " ".join(
        rng.choice(_THEN if index else _TRY).format(m="{}{}{}={}".format(*record), a=record[0], b=record[2])
        for index, record in enumerate(_record(move) for move in path)
    )


def _dead_end_text(leftover: Pool, target: int, rng: random.Random) -> str:
    c, d = sorted(term.value for term in leftover)
    text = rng.choice(_DEAD_END).format(rest=f"{leftover[0].value} and {leftover[1].value}", t=target)
    # Division and subtraction never exceed the larger number, so the larger of c+d and c*d is
    # the most the pair can make; when even that is short, saying so justifies the dead end.
    big, op = max((d + c, "+"), (d * c, "*"))
    if big < target and rng.random() < 0.5:
        text += " " + rng.choice(_SHORT_OF).format(m=f"{d}{op}{c}={big}", t=target)
    return text


def _backtrack_phrase(failed: _Term, following: _Term, rng: random.Random) -> str:
    """A backtrack that says what changes next: the pair, or only the operation."""
    same_pair = _record(failed)[::2] == _record(following)[::2]
    return rng.choice((_BACK_NEW_OP if same_pair else _BACK_NEW_PAIR) + _BACK_ANY)


def teach(
    problem: CountdownProblem, style: TraceStyle, rng: random.Random, max_failed_branches: int = 2
) -> Example:
    """Solve `problem` and write the response in `style`; the answer is checked before it is returned.

    long-cot draws 0..max_failed_branches dead ends (fewer when the problem has fewer).
    """
    if style not in get_args(TraceStyle):
        raise ValueError(f"unknown Countdown trace style {style!r}; expected one of {get_args(TraceStyle)}")
    root: Pool = tuple(_Term(value) for value in problem.numbers)
    target = problem.target
    # Prefer answers that use every number: they also satisfy reasoning-gym's stricter scorer.
    # Only when none exists (e.g. [1, 3, 3] -> 3) fall back to using some of them. All four
    # operations come second: reasoning-gym falls back to '-' when '/' does not divide evenly,
    # even when '-' was not among its operators.
    for use_all, operators in (
        (True, problem.operators),
        (True, _ALL),
        (False, problem.operators),
        (False, _ALL),
    ):
        path = _search(root, target, operators, rng, use_all, set())
        if path is not None:
            break
    else:
        raise SftscopeError(f"no Countdown solution for numbers {problem.numbers} and target {target}")
    answer = path[-1] if path else next(term for term in root if term.value == target)
    expression = _render(answer, collapsed=-1)[0]
    wanted = rng.randint(0, max_failed_branches) if style == "long-cot" and path else 0
    failed = _failed_branches(root, path[0], target, operators, rng, wanted) if wanted else []

    lines, attempts = [], []
    for index, (branch, leftover) in enumerate(failed):
        following = failed[index + 1][0][0] if index + 1 < len(failed) else path[0]
        backtrack = _backtrack_phrase(branch[0], following, rng)
        lines.append(f"{_attempt_text(branch, rng)} {_dead_end_text(leftover, target, rng)} {backtrack}")
        moves, left = [_record(move) for move in branch], [term.value for term in leftover]
        attempts.append({"moves": moves, "outcome": "dead-end", "leftover": left, "backtrack": backtrack})
    if path:
        lines.append(f"{_attempt_text(path, rng)} {rng.choice(_HIT).format(t=target)}")
        chain = "=".join(_render(answer, collapsed)[0] for collapsed in range(len(path) + 1))
        lines.append(rng.choice(_VERIFY).format(chain=chain))
    else:
        lines.append(f"{target} is already one of the numbers.")
    attempts.append({"moves": [_record(move) for move in path], "outcome": "target"})

    check = check_countdown(expression, problem.numbers, target)
    if not check.ok:  # the solver builds only correct answers; this guards the guarantee itself
        raise RuntimeError(f"teacher produced a wrong answer {expression!r} for {problem}: {check.reason}")
    teacher = {"solver": "dfs", "max_failed_branches": max_failed_branches, "attempts": attempts}
    return Example(
        prompt=[Message(role="user", content=countdown_prompt(problem))],
        reasoning=None if style == "answer-only" else "\n".join(lines),
        final=rng.choice(_FINAL).format(e=expression),
        answer=expression,
        source=SOURCE,
        meta={
            "numbers": list(problem.numbers),
            "target": target,
            "style": style,
            "failed_branches": len(failed),
            "teacher": {**teacher, "reference": problem.reference},
        },
    )


def build_countdown_examples(
    settings: CountdownSettings, n: int, style: TraceStyle, seed: int, max_failed_branches: int = 2
) -> list[Example]:
    """`n` taught examples; example i depends only on (seed, i), so a larger n extends a smaller one."""
    return [
        teach(problem, style, random.Random(f"countdown-teacher:{seed}:{index}"), max_failed_branches)
        for index, problem in enumerate(generate_problems(settings, n, seed))
    ]
