"""The Countdown teacher: problems from reasoning-gym, a person-like search, traces in three styles.

The solver (`countdown_search`) works the way a careful person does: pick two numbers, combine
them, write down the intermediate result, continue with what is left. A long-cot trace shows a few
dead ends first (attempts that leave two numbers which cannot make the target), backtracks in words
to a genuinely different first move, then the successful path, then recomputes the final expression.
Every answer is correct by construction and checked again with the one exact checker.
"""

from __future__ import annotations

import hashlib
import random
from typing import Any, Literal, get_args

import reasoning_gym
from pydantic import BaseModel, ConfigDict, Field, model_validator

from sftscope.data.countdown_search import (
    Pool,
    Term,
    apply_op,
    failed_branches,
    moves,
    operands,
    record,
    render,
    search,
)
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
    """reasoning-gym's own solution, kept as provenance only: the teacher writes its own answers."""
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
_NONE_HITS = ("None is {t}.", "None makes {t}.", "No {t} there.")
_NAMED_HIT = ("{m} is the target.", "{m}, the target.", "There: {m}.")
_FINAL = ("So the answer is \\boxed{{{e}}}.", "The answer is \\boxed{{{e}}}.", "Answer: \\boxed{{{e}}}.")

_ALL: tuple[Operator, ...] = ("+", "-", "*", "/")


def _attempt_text(
    path: list[Term], rng: random.Random, pools: list[Pool] | None = None, ending: str | None = None
) -> str:
    """The moves of one attempt; with `pools` (the numbers left after each move), every move but the
    last is followed by what remains, so the next move reads its operands off the line before. An
    `ending` (a worked ending's text) is written in place of the last move's one fact."""
    parts = []
    for index, move in enumerate(path):
        a, op, b, value = record(move)
        if ending is not None and index == len(path) - 1:
            parts.append(ending)
        else:
            parts.append(rng.choice(_THEN if index else _TRY).format(m=f"{a}{op}{b}={value}", a=a, b=b))
        if pools is not None and index < len(path) - 1:
            left = sorted((term.value for term in pools[index]), reverse=True)
            parts.append(f"Now {', '.join(map(str, left[:-1]))} and {left[-1]} remain.")
    return " ".join(parts)


def worked_ending(a: int, b: int, target: int, cap: int) -> tuple[list[list[Any]], str | None]:
    """Every operation on the last two numbers (larger first) in the fixed order + - * /: the facts
    as [a, op, b, result], and the first operation that makes the target (None for a dead end).

    A fixed order turns the last move from a guess drawn toward the target into facts to compute.
    All of them are written, hit or not, so how many facts an ending has says nothing about whether
    it hit: the decision has to come from matching a result with the target. Results above `cap`
    (the largest target the problems have) are left out: they cannot be the target, and they are
    facts the micro bases never saw."""
    a, b = max(a, b), min(a, b)
    facts: list[list[Any]] = []
    for op in _ALL:
        value = apply_op(a, op, b)
        if value is not None and (value <= cap or value == target):
            facts.append([a, op, b, value])
    return facts, next((op for _, op, _, value in facts if value == target), None)


def first_hit_in_order(root: Pool, target: int, cap: int) -> tuple[list[Term], list[tuple[list[Term], Pool]]]:
    """The search a trace can follow without knowing the answer: first moves in a fixed order (pairs
    in the prompt's order, then + - * /), each worked out to its ending (`worked_ending`), until one
    makes the target. Returns the solution path and every first move before it as a dead end.

    The random-order teacher's dead ends are drawn around a solution it already knows, so a model
    copying its traces must guess the right first move; here the trace is an algorithm over facts."""
    dead_ends: list[tuple[list[Term], Pool]] = []
    for first, pool in moves(root, _ALL, 0):
        high, low = sorted(pool, key=lambda term: term.value, reverse=True)
        _, hit = worked_ending(high.value, low.value, target, cap)
        if hit is not None:
            return [first, Term(target, 1, hit, high, low)], dead_ends
        dead_ends.append(([first], pool))
    numbers = [term.value for term in root]
    raise SftscopeError(f"no two-move solution in the fixed order for numbers {numbers} and target {target}")


def fact_text(fact: list[Any]) -> str:
    """A fact or move [a, op, b, result] as a trace writes it: `a op b=result`."""
    a, op, b, value = fact
    return f"{a}{op}{b}={value}"


def _ending_text(facts: list[list[Any]], target: int) -> str:
    # The target is restated next to the facts: a comparison the micro model makes between
    # neighbouring tokens, not with the prompt's line far back.
    return f"To make {target}: {', '.join(map(fact_text, facts))}."


def _pools_along(root: Pool, path: list[Term]) -> list[Pool]:
    """The numbers on the table after each move of `path`."""
    pools, pool = [], root
    for move in path:
        used = operands(move)
        pool = (*(term for term in pool if term is not used[0] and term is not used[1]), move)
        pools.append(pool)
    return pools


def _dead_end_text(leftover: Pool, target: int, rng: random.Random) -> str:
    c, d = sorted(term.value for term in leftover)
    text = rng.choice(_DEAD_END).format(rest=f"{leftover[0].value} and {leftover[1].value}", t=target)
    # Division and subtraction never exceed the larger number, so the larger of c+d and c*d is
    # the most the pair can make; when even that is short, saying so justifies the dead end.
    big, op = max((d + c, "+"), (d * c, "*"))
    if big < target and rng.random() < 0.5:
        text += " " + rng.choice(_SHORT_OF).format(m=f"{d}{op}{c}={big}", t=target)
    return text


def _backtrack_phrase(failed: Term, following: Term, rng: random.Random) -> str:
    """A backtrack that says what changes next: the pair, or only the operation."""
    same_pair = record(failed)[::2] == record(following)[::2]
    return rng.choice((_BACK_NEW_OP if same_pair else _BACK_NEW_PAIR) + _BACK_ANY)


def _solve(problem: CountdownProblem, root: Pool, rng: random.Random) -> tuple[list[Term], tuple[str, ...]]:
    """The random-order solver's path and the operations it searched with."""
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
        path = search(root, problem.target, operators, rng, use_all, set())
        if path is not None:
            return path, operators
    raise SftscopeError(f"no Countdown solution for numbers {problem.numbers} and target {problem.target}")


def teach(
    problem: CountdownProblem,
    style: TraceStyle,
    rng: random.Random,
    max_failed_branches: int = 2,
    state_lines: bool = False,
    worked_endings: int | None = None,
    fixed_order: bool = False,
) -> Example:
    """Solve `problem` and write the response in `style`; the answer is checked before it is returned.

    long-cot draws 0..max_failed_branches dead ends (fewer when the problem has fewer). With
    `state_lines`, the solution path says which numbers remain after each move but its last. With
    `worked_endings` (the largest result to write), every attempt ends on its last two numbers worked
    in a fixed order after the target restated (see `worked_ending`): a dead end names its pair and
    says none is the target; the solution names the first fact that is (the answer uses it). With
    `fixed_order` (3 numbers and worked endings only), a long-cot trace tries the first moves in a
    fixed order and shows every one before the first that hits (`first_hit_in_order`).
    """
    if style not in get_args(TraceStyle):
        raise ValueError(f"unknown Countdown trace style {style!r}; expected one of {get_args(TraceStyle)}")
    root: Pool = tuple(Term(value) for value in problem.numbers)
    target = problem.target
    ordered: list[tuple[list[Term], Pool]] | None = None
    if fixed_order:
        if worked_endings is None or len(root) != 3:
            raise SftscopeError("a fixed search order needs worked endings and problems of 3 numbers")
        path, ordered = first_hit_in_order(root, target, worked_endings)
    else:
        path, operators = _solve(problem, root, rng)
    ending: list[list[Any]] | None = None
    if worked_endings is not None and path:
        a, _, b, _ = record(path[-1])
        ending, hit = worked_ending(a, b, target, worked_endings)
        assert hit is not None, "the path's own last move makes the target"
        last = path[-1]
        path[-1] = Term(target, last.step, hit, *operands(last))
    answer = path[-1] if path else next(term for term in root if term.value == target)
    expression = render(answer, collapsed=-1)[0]
    if ordered is not None:
        failed = ordered if style == "long-cot" else []
    else:
        wanted = rng.randint(0, max_failed_branches) if style == "long-cot" and path else 0
        failed = failed_branches(root, path[0], target, operators, rng, wanted) if wanted else []

    lines, attempts = [], []
    for index, (branch, leftover) in enumerate(failed):
        following = failed[index + 1][0][0] if index + 1 < len(failed) else path[0]
        backtrack = _backtrack_phrase(branch[0], following, rng)
        moves, left = [record(move) for move in branch], [term.value for term in leftover]
        attempt: dict[str, Any] = {"moves": moves, "outcome": "dead-end", "leftover": left}
        # The moves are written before the ending: the draws stay in the order of the traces that
        # earlier runs were measured on, so the same seed still writes the same rows.
        opening = _attempt_text(branch, rng)
        if worked_endings is not None:
            c, d = sorted(left, reverse=True)
            facts, _ = worked_ending(c, d, target, worked_endings)
            end = f"Now {c} and {d} remain. {_ending_text(facts, target)} "
            end += rng.choice(_NONE_HITS).format(t=target)
            attempt["ending"] = facts
        else:
            end = _dead_end_text(leftover, target, rng)
        lines.append(f"{opening} {end} {backtrack}")
        attempts.append({**attempt, "backtrack": backtrack})
    if path:
        pools = _pools_along(root, path) if state_lines or worked_endings is not None else None
        moves_text = _attempt_text(path, rng, pools, None if ending is None else _ending_text(ending, target))
        hit_text = (
            rng.choice(_HIT).format(t=target)
            if ending is None
            else rng.choice(_NAMED_HIT).format(m=fact_text(record(path[-1])))
        )
        lines.append(f"{moves_text} {hit_text}")
        chain = "=".join(render(answer, collapsed)[0] for collapsed in range(len(path) + 1))
        lines.append(rng.choice(_VERIFY).format(chain=chain))
    else:
        lines.append(f"{target} is already one of the numbers.")
    attempts.append(
        {"moves": [record(move) for move in path], "outcome": "target"}
        | ({"ending": ending} if ending is not None else {})
    )

    check = check_countdown(expression, problem.numbers, target)
    if not check.ok:  # the solver builds only correct answers; this guards the guarantee itself
        raise RuntimeError(f"teacher produced a wrong answer {expression!r} for {problem}: {check.reason}")
    teacher = {
        "solver": "dfs",
        "max_failed_branches": max_failed_branches,
        "state_lines": state_lines,
        # Only when set, so the rows every earlier option writes stay byte for byte as measured.
        **({"worked_endings": worked_endings} if worked_endings is not None else {}),
        **({"search_order": "fixed"} if fixed_order else {}),
        "attempts": attempts,
    }
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
    settings: CountdownSettings,
    n: int,
    style: TraceStyle,
    seed: int,
    max_failed_branches: int = 2,
    state_lines: bool = False,
    worked_endings: bool = False,
    fixed_order: bool = False,
) -> list[Example]:
    """`n` taught examples; example i depends only on (seed, i), so a larger n extends a smaller one.
    Worked endings write results up to the settings' largest target."""
    return [
        teach(
            problem,
            style,
            random.Random(f"countdown-teacher:{seed}:{index}"),
            max_failed_branches,
            state_lines,
            settings.max_target if worked_endings else None,
            fixed_order,
        )
        for index, problem in enumerate(generate_problems(settings, n, seed))
    ]
