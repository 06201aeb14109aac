"""The Countdown teacher's search: numbers as terms, moves, a depth-first solver, dead ends.

A term is a number on the table, given or made by a move from two others; a path is the list of
moves' terms. `search` finds a solution the way a careful person would (random order, memoised dead
pools); `failed_branches` finds the dead ends a long-CoT trace shows before it; `render` writes a
term back as a minimal-bracket expression.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from itertools import combinations
from typing import Any

PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True, eq=False)
class Term:
    """A number on the table: given (step -1) or made by move `step` from two others.

    A move and the number it makes are one object: a path is the list of terms its moves made.
    """

    value: int
    step: int = -1
    op: str = ""
    left: Term | None = None
    right: Term | None = None


def operands(move: Term) -> tuple[Term, Term]:
    assert move.left is not None and move.right is not None, "a given number was used as a move"
    return move.left, move.right


def record(move: Term) -> list[Any]:
    """A move as [a, op, b, result]: what meta records and the trace writes as "a op b=result"."""
    left, right = operands(move)
    return [left.value, move.op, right.value, move.value]


Pool = tuple[Term, ...]


def apply_op(a: int, op: str, b: int) -> int | None:
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


def moves(pool: Pool, operators: tuple[str, ...], step: int) -> list[tuple[Term, Pool]]:
    """Every distinct move on the pool (larger number first), with the pool it leaves."""
    seen: set[tuple[int, str, int]] = set()
    out = []
    for i, j in combinations(range(len(pool)), 2):
        a, b = sorted((pool[i], pool[j]), key=lambda term: term.value, reverse=True)
        rest = pool[:i] + pool[i + 1 : j] + pool[j + 1 :]
        for op in operators:
            value = apply_op(a.value, op, b.value)
            # Equal values at different places are the same move to a reader: keep one.
            if value is None or (a.value, op, b.value) in seen:
                continue
            seen.add((a.value, op, b.value))
            move = Term(value, step, op, a, b)
            out.append((move, (*rest, move)))
    return out


def search(
    pool: Pool,
    target: int,
    operators: tuple[str, ...],
    rng: random.Random,
    use_all: bool,
    dead: set[tuple[int, ...]],
) -> list[Term] | None:
    """Depth-first search in random order; `dead` memoises pools (as sorted values) with no way out."""
    if use_all and len(pool) == 1:
        return [] if pool[0].value == target else None
    if not use_all and any(term.value == target for term in pool):
        return []
    key = tuple(sorted(term.value for term in pool))
    if len(pool) == 1 or key in dead:
        return None
    # The newest term carries the highest step, so this is the move's index along the path.
    options = moves(pool, operators, step=max(term.step for term in pool) + 1)
    rng.shuffle(options)
    for move, rest in options:
        found = search(rest, target, operators, rng, use_all, dead)
        if found is not None:
            return [move, *found]
    dead.add(key)
    return None


def pair_can_make(c: int, d: int, target: int) -> bool:
    """Whether two numbers make the target under the prompt's rules: all four operations, either
    order, or one number alone. A written dead end must hold for the reader, not only for the
    teacher's operator subset."""
    x, y = Fraction(c), Fraction(d)
    return target in {x, y, x + y, x - y, y - x, x * y, x / y, y / x}


def dead_end(
    first: Term, pool: Pool, target: int, operators: tuple[str, ...], rng: random.Random
) -> tuple[list[Term], Pool] | None:
    """Follow the move `first` (which left `pool`) at random down to two numbers that cannot make
    the target, or give up. No pool on the way may hold the target: a careful person would stop."""
    path = [first]
    while not any(term.value == target for term in pool):
        if len(pool) == 2:
            return None if pair_can_make(pool[0].value, pool[1].value, target) else (path, pool)
        options = moves(pool, operators, len(path))
        if not options:
            return None
        move, pool = rng.choice(options)
        path.append(move)
    return None


def failed_branches(
    root: Pool, solution: Term, target: int, operators: tuple[str, ...], rng: random.Random, wanted: int
) -> list[tuple[list[Term], Pool]]:
    """Up to `wanted` dead ends, each opening with its own first move, none with the solution's."""
    firsts = [option for option in moves(root, operators, 0) if record(option[0]) != record(solution)]
    rng.shuffle(firsts)
    branches: list[tuple[list[Term], Pool]] = []
    for first, pool in firsts:
        if len(branches) == wanted:
            break
        branch = dead_end(first, pool, target, operators, rng)
        if branch is not None:
            branches.append(branch)
    return branches


def render(term: Term, collapsed: int) -> tuple[str, int]:
    """Minimal-bracket text and precedence; results of the first `collapsed` moves show as numbers."""
    if term.step < collapsed or term.left is None:
        return str(term.value), 3
    precedence = PRECEDENCE[term.op]
    left_term, right_term = operands(term)
    left, left_precedence = render(left_term, collapsed)
    right, right_precedence = render(right_term, collapsed)
    if left_precedence < precedence:
        left = f"({left})"
    # a+(b+c) and a*(b*c) need no brackets; a-(b+c), a/(b*c) and a*(b/c) keep them, the last so
    # that the recomputation reads in the order the trace computed.
    if right_precedence < precedence or (
        right_precedence == precedence and not (right_term.op == term.op and term.op in "+*")
    ):
        right = f"({right})"
    return f"{left}{term.op}{right}", precedence
