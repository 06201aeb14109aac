"""The exact Countdown checker: what it accepts, what it rejects and why."""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sftscope.scoring.countdown import check_countdown, normalise_expression


def test_accepts_a_correct_expression_exactly() -> None:
    result = check_countdown("(7-2)*3+8", [3, 7, 2, 8], 23)
    assert result.ok and result.value == 23 and result.reason == "ok"


def test_numbers_need_not_all_be_used() -> None:
    assert check_countdown("7*3+2", [2, 3, 7, 9], 23).ok
    assert check_countdown("9", [2, 3, 9], 9).ok


def test_reuse_of_a_number_is_rejected() -> None:
    result = check_countdown("7*3+3+7", [3, 7, 2, 8], 34)
    assert not result.ok and result.reason in {"number used too often: 3", "number used too often: 7"}


def test_repeated_given_numbers_may_each_be_used() -> None:
    assert check_countdown("3*3", [3, 3], 9).ok
    assert check_countdown("3*3*3", [3, 3], 27).reason == "number used too often: 3"


def test_unavailable_number_is_named() -> None:
    assert check_countdown("3*8", [3, 7, 2], 24).reason == "number not available: 8"


def test_wrong_value_says_what_it_evaluates_to() -> None:
    result = check_countdown("3+7", [3, 7], 24)
    assert not result.ok and result.value == 10 and result.reason == "evaluates to 10, not 24"


def test_division_is_exact_and_non_integer_intermediates_are_fine() -> None:
    # 8/3 is not an integer, yet (8/3)*3 is exactly 8: no float rounding either way.
    assert check_countdown("8/3*3", [8, 3, 3], 8).ok
    result = check_countdown("7/2", [7, 2], 3)
    assert result.value == Fraction(7, 2) and result.reason == "evaluates to 7/2, not 3"
    # 1/3 + 1/3 + 1/3 is exactly 1, which float arithmetic gets wrong in general.
    assert check_countdown("1/3+1/3+1/3", [1, 1, 1, 3, 3, 3], 1).ok


def test_division_by_zero() -> None:
    assert check_countdown("7/(3-3)", [7, 3, 3], 1).reason == "division by zero"


@pytest.mark.parametrize("expression", ["-3+5", "5+(-3)", "+5-3", "-(3-5)", "--5-3"])
def test_a_sign_is_accepted_and_counts_its_number(expression: str) -> None:
    result = check_countdown(expression, [3, 5], 2, rule="exactly_once")
    assert result.ok and result.value == 2
    assert check_countdown("-3+5+3", [3, 5], 5).reason == "number used too often: 3"


def test_the_rules_differ_only_on_numbers_left_out() -> None:
    assert check_countdown("7*3+2", [2, 3, 7, 9], 23, rule="at_most_once").ok
    result = check_countdown("7*3+2", [2, 3, 7, 9], 23, rule="exactly_once")
    assert not result.ok and result.reason == "numbers not used: 9"
    assert check_countdown("3*3", [3, 3, 3], 9, rule="exactly_once").reason == "numbers not used: 3"
    assert check_countdown("3*3*3", [3, 3, 3], 27, rule="exactly_once").ok
    assert check_countdown("7*3+3+7", [3, 7], 34, rule="exactly_once").reason.startswith(
        "number used too often"
    )
    with pytest.raises(ValueError, match="exactly_once"):
        check_countdown("3", [3], 3, rule="each_once")  # type: ignore[arg-type]


# reasoning-gym's countdown scorer: 1.0 only when the literals are the given numbers as a multiset
# (all used, each once) and the value is the target; a leading sign is fine, as in its solver's
# own answers. Each case: expression, numbers, target, whether reasoning-gym gives 1.0.
REASONING_GYM_CASES = [
    ("-100 + (92*(24+15) - 83)/5", [100, 92, 24, 15, 83, 5], 601, True),
    ("(92*(24+15) - 83)/5 - 100", [100, 92, 24, 15, 83, 5], 601, True),
    ("92*(24+15)", [100, 92, 24, 15, 83, 5], 3588, False),  # numbers left out
    ("3*3+4", [3, 4], 13, False),  # 3 used twice
    ("8/3*3", [8, 3, 3], 8, True),  # a non-integer intermediate
    ("7/2*4+1", [7, 2, 4, 1], 15, True),
    ("(1+2)*3", [1, 2, 3], 10, False),  # the wrong value
]


@pytest.mark.parametrize(("expression", "numbers", "target", "gym_ok"), REASONING_GYM_CASES)
def test_exactly_once_agrees_with_reasoning_gym(
    expression: str, numbers: list[int], target: int, gym_ok: bool
) -> None:
    from reasoning_gym.games.countdown import CountdownConfig, CountdownDataset

    gym = CountdownDataset(CountdownConfig(size=1, seed=0))
    entry = {"metadata": {"numbers": numbers, "target": target}}
    assert (gym.score_answer(expression, entry) == 1.0) == gym_ok  # the reference, as documented
    assert check_countdown(expression, numbers, target, rule="exactly_once").ok == gym_ok


def test_reasoning_gym_solutions_pass_exactly_once() -> None:
    """The generator's own answers (sympy-printed, some opening with a sign) are all correct."""
    from reasoning_gym.games.countdown import CountdownConfig, CountdownDataset

    entries = list(CountdownDataset(CountdownConfig(size=60, seed=7)))
    assert any(entry["answer"].lstrip().startswith("-") for entry in entries)  # the case this is about
    for entry in entries:
        meta = entry["metadata"]
        assert check_countdown(entry["answer"], meta["numbers"], meta["target"], rule="exactly_once").ok, (
            entry
        )


@pytest.mark.parametrize("expression", ["2**3", "9**9**9**9", "2**(3)"])
def test_power_is_rejected_before_anything_is_computed(expression: str) -> None:
    assert check_countdown(expression, [2, 3, 9, 9, 9, 9], 8).reason == "operator not allowed: **"


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "   ",
        "abc",
        "3+",
        "(3+7",
        "3 7",
        "7*3=21",
        "__import__('os')",
        "1_0",
        "0x10",
        "1e1",
        "3.0*7",
        "07",
        "7%3",
        "()",
        "(" * 500 + "3" + ")" * 500,
        "\\frac{3}",
        "\\frac{3}{7",
        "{3+7}",
    ],
)
def test_garbage_is_unparsable(expression: str) -> None:
    result = check_countdown(expression, [3, 7, 10, 16], 10)
    assert result == check_countdown(expression, [3, 7, 10, 16], 10)
    assert not result.ok and result.reason == "unparsable" and result.value is None


def test_floor_division_is_rejected() -> None:
    assert check_countdown("7//2", [7, 2], 3).reason == "operator not allowed: //"


@pytest.mark.parametrize(
    ("typeset", "plain", "value"),
    [
        ("3 × 7", "3 * 7", 21),
        ("3 \\times 7", "3 * 7", 21),
        ("3\\cdot7", "3*7", 21),
        ("21 ÷ 7", "21 / 7", 3),
        ("7 − 3", "7 - 3", 4),
        # LaTeX brackets group, and \frac divides
        ("\\left(3 + 7\\right) \\times 2", "(3 + 7) * 2", 20),
        ("[3 + 7] * 2", "(3 + 7) * 2", 20),
        ("\\left[(21 + 7) * 2\\right] - 3", "((21 + 7) * 2) - 3", 53),
        ("\\frac{21}{7}", "((21)/(7))", 3),
        ("\\dfrac{\\frac{21}{7}}{3} + 2", "((((21)/(7)))/(3)) + 2", 3),
    ],
)
def test_typeset_operators_are_normalised(typeset: str, plain: str, value: int) -> None:
    assert normalise_expression(typeset) == plain
    assert check_countdown(typeset, [2, 3, 7, 21], value).ok


def test_letter_x_is_not_multiplication() -> None:
    assert check_countdown("3x7", [3, 7], 21).reason == "unparsable"


def test_whitespace_is_allowed() -> None:
    assert check_countdown(" ( 7 - 2 ) * 3 ", [7, 2, 3], 15).ok


@given(st.lists(st.integers(1, 50), min_size=1, max_size=5), st.sampled_from("+-*/"))
def test_left_fold_agrees_with_fraction_arithmetic(numbers: list[int], op: str) -> None:
    expression = op.join(str(n) for n in numbers)
    value = Fraction(numbers[0])
    for n in numbers[1:]:
        value = {"+": value + n, "-": value - n, "*": value * n, "/": value / n}[op]
    result = check_countdown(expression, numbers, 1)
    assert result.value == value and result.ok == (value == 1)


@given(st.text(max_size=40))
def test_never_raises_on_arbitrary_text(text: str) -> None:
    result = check_countdown(text, [1, 2, 3], 6)
    assert isinstance(result.reason, str) and (result.value is not None or not result.ok)
