"""The Countdown teacher's search: move rules, the solver, dead ends and minimal-bracket rendering."""

from __future__ import annotations

import random
from fractions import Fraction

import pytest

from sftscope.data.countdown_search import (
    Term,
    apply_op,
    dead_end,
    failed_branches,
    moves,
    pair_can_make,
    record,
    render,
    search,
)

OPS = ("+", "-", "*", "/")


@pytest.mark.parametrize(
    ("a", "op", "b", "value"),
    [(7, "+", 3, 10), (7, "-", 3, 4), (3, "-", 3, None), (7, "*", 3, 21), (9, "/", 3, 3), (7, "/", 2, None)],
)
def test_moves_keep_positive_integer_intermediates(a: int, op: str, b: int, value: int | None) -> None:
    assert apply_op(a, op, b) == value


def test_equal_numbers_give_one_move_each() -> None:
    pool = (Term(4), Term(4), Term(2))
    made = [record(move) for move, _ in moves(pool, ("+",), step=0)]
    assert made == [[4, "+", 4, 8], [4, "+", 2, 6]]  # 4+2 once, though two 4s could make it


def _evaluate(term: Term) -> Fraction:
    if term.left is None or term.right is None:
        return Fraction(term.value)
    left, right = _evaluate(term.left), _evaluate(term.right)
    return {"+": left + right, "-": left - right, "*": left * right, "/": left / right}[term.op]


def _leaves(term: Term) -> list[int]:
    if term.left is None or term.right is None:
        return [term.value]
    return _leaves(term.left) + _leaves(term.right)


@pytest.mark.parametrize("seed", range(5))
def test_search_reaches_the_target_with_every_number(seed: int) -> None:
    pool = (Term(6), Term(10), Term(3), Term(10))
    path = search(pool, 18, OPS, random.Random(seed), use_all=True, dead=set())
    assert path is not None and [move.step for move in path] == [0, 1, 2]
    assert path[-1].value == 18 and _evaluate(path[-1]) == 18
    assert sorted(_leaves(path[-1])) == [3, 6, 10, 10]


def test_impossible_targets_have_no_path() -> None:
    assert search((Term(1), Term(1)), 50, OPS, random.Random(0), use_all=False, dead=set()) is None


def test_a_dead_end_leaves_two_numbers_that_cannot_make_the_target() -> None:
    rng = random.Random(0)
    root = (Term(2), Term(3), Term(7))
    solution = search(root, 17, ("+", "-", "*"), random.Random(1), use_all=True, dead=set())
    assert solution is not None
    for path, leftover in failed_branches(root, solution[0], 17, ("+", "-", "*"), rng, wanted=3):
        assert len(leftover) == 2 and not pair_can_make(leftover[0].value, leftover[1].value, 17)
        assert record(path[0]) != record(solution[0])


def test_dead_end_stops_where_the_target_is_on_the_table() -> None:
    first, pool = next((m, p) for m, p in moves((Term(5), Term(2), Term(3)), ("+",), 0) if m.value == 7)
    assert dead_end(first, pool, 3, ("+",), random.Random(0)) is None  # 3 is still on the table


def _made(op: str, left: Term, right: Term, step: int) -> Term:
    return Term(int(_evaluate(Term(0, step, op, left, right))), step, op, left, right)


@pytest.mark.parametrize(
    ("inner_op", "inner_left", "inner_right", "op", "inner_on_right", "other", "expected"),
    [
        ("+", 2, 3, "-", True, 7, "7-(2+3)"),  # a-(b+c) keeps its brackets
        ("+", 2, 3, "+", True, 7, "7+2+3"),  # a+(b+c) needs none
        ("+", 7, 2, "+", False, 3, "7+2+3"),  # (a+b)+c needs none
        ("/", 9, 3, "*", True, 2, "2*(9/3)"),  # a*(b/c) keeps them: the trace computed b/c first
        ("+", 2, 3, "*", False, 4, "(2+3)*4"),
    ],
)
def test_render_keeps_only_the_brackets_the_reading_needs(
    inner_op: str, inner_left: int, inner_right: int, op: str, inner_on_right: bool, other: int, expected: str
) -> None:
    inner = _made(inner_op, Term(inner_left), Term(inner_right), step=0)
    top = _made(op, Term(other), inner, 1) if inner_on_right else _made(op, inner, Term(other), 1)
    assert render(top, collapsed=0)[0] == expected
    assert render(top, collapsed=1)[0] == (
        f"{other}{op}{inner.value}" if inner_on_right else f"{inner.value}{op}{other}"
    )  # results of moves already written out show as numbers
