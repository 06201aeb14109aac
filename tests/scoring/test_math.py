"""The math scorer: math-verify with gold first, boxed first, bold and percent handled explicitly."""

from __future__ import annotations

import pytest

from sftscope.scoring.math import check_math
from sftscope.scoring.result import ScoreItem


def outcome(prediction: str, gold: str) -> str:
    return check_math(ScoreItem(prediction, gold), {}).outcome


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("The answer is **73**.", "73"),  # Math-Verify#76
        ("**73**", "73"),
        ("\\boxed{2} no wait, \\boxed{3}", "3"),
        ("The answer is 5 cm.", "5"),
        ("\\boxed{5\\text{ cm}}", "5"),
        ("\\boxed{0.5}", "\\frac{1}{2}"),
        ("\\boxed{\\frac12}", "0.5"),
        ("\\boxed{[1,3)}", "[1,3)"),
        ("\\boxed{1,000}", "1000"),
        ("\\boxed{50\\%}", "50"),
        ("\\boxed{50}", "50\\%"),
        ("Final Answer: The final answer is $4$. I hope it is correct.", "4"),
        # An escaped dollar is a currency sign, in the answer or in the gold.
        ("The answer is \\$42.", "42"),
        ("\\boxed{\\$42}", "42"),
        ("\\boxed{18}", "\\$18"),
        ("$\\$1.25$", "\\$1.25"),
    ],
)
def test_correct(prediction: str, gold: str) -> None:
    assert outcome(prediction, gold) == "correct"


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("\\boxed{2} no wait, \\boxed{3}", "2"),  # only the last box counts, not the set {2, 3}
        ("\\boxed{[1,3]}", "[1,3)"),
        ("\\boxed{(1,3)}", "[1,3)"),
        # Percent policy: the number as written; never x == x/100.
        ("\\boxed{50\\%}", "0.5"),
        ("\\boxed{0.5}", "50\\%"),
    ],
)
def test_wrong(prediction: str, gold: str) -> None:
    assert outcome(prediction, gold) == "wrong"


@pytest.mark.parametrize("prediction", ["", "   ", "I have no idea.", "\\boxed{3"])
def test_unparsable(prediction: str) -> None:
    assert outcome(prediction, "3") == "unparsable"


def test_gold_goes_first() -> None:
    # verify() is asymmetric: a gold inequality accepts the interval, not the other way round.
    # Swapping the arguments flips both verdicts below.
    assert outcome("\\boxed{(1,3)}", "1<x<3") == "correct"
    assert outcome("\\boxed{1<x<3}", "(1,3)") == "wrong"
    assert outcome("\\boxed{2}", "x=2") == "correct"


def test_extracted_is_the_answer_read() -> None:
    result = check_math(ScoreItem("Thus \\boxed{\\frac{3}{4}}.", "0.75"), {})
    assert (result.outcome, result.score, result.extracted) == ("correct", 1.0, "\\frac{3}{4}")


def test_missing_or_unparsable_gold_is_an_error_not_a_wrong() -> None:
    with pytest.raises(ValueError, match="gold"):
        check_math(ScoreItem("\\boxed{1}", None), {})
    with pytest.raises(ValueError, match="gold"):
        check_math(ScoreItem("\\boxed{1}", "$$"), {})
