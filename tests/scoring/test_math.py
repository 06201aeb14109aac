"""The math scorer: math-verify with gold first, boxed first, bold and percent handled explicitly."""

from __future__ import annotations

import pytest

from sftscope.data.records import split_response
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


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        # Words after the marker are prose, not symbols: the math they open or close is the answer.
        ("The answer is therefore 5.", "5"),
        ("The answer is approximately 3.14", "3.14"),
        ("The answer is 10 marbles in total.", "10"),
        ("The answer is 60 km/h.", "60"),
        ("The answer is 42, which is the product.", "42"),
        ("The answer is 42, which is the product of 6 and 7.", "42"),
        ("The answer is 5\\text{ cm}, as measured.", "5"),
        ("The answer is \\frac{1}{2} of the pie.", "\\frac{1}{2}"),
        ("The answer is 2 and 3.", "2, 3"),
        # "To find the answer:" introduces the working; the answer comes after it.
        ("To find the answer: we add 2 and 3. So the total is 5.", "5"),
        ("To find the answer, we add 2 and 3. So the total is 5.", "5"),
        # Mid-sentence, the same words do state the answer.
        ("We multiply 6 by 7 to get the answer: 42. Check: 42 / 7 = 6.", "42"),
        ("Add the two numbers to get the final answer: 12. That is 3 more than 9.", "12"),
        # A computation in words is graded on its result.
        ("The answer is 6 times 7 = 42.", "42"),
        ("The answer is 12 divided by 4 = 3.", "3"),
        ("The answer is 5 choose 2 = 10.", "10"),
        ("The answer is 1/2 of 10 = 5", "5"),
        ("The answer is 24 ft^2", "24"),
        ("The answer is 13 since 13 is prime", "13"),
    ],
)
def test_prose_around_the_answer(prediction: str, gold: str) -> None:
    assert outcome(prediction, gold) == "correct"


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("The answer is 6.", "5"),
        ("The answer is therefore 6.", "5"),
        ("The answer is 42, which is the product of 6 and 7.", "7"),
        ("The answer is 2 and 3.", "2"),  # two answers, not the first of them
        ("The answer is 5, or maybe 6.", "5"),
        ("To find the answer: we add 2 and 3. So the total is 5.", "2"),
    ],
)
def test_prose_does_not_make_a_wrong_answer_right(prediction: str, gold: str) -> None:
    assert outcome(prediction, gold) == "wrong"


@pytest.mark.parametrize(
    ("prediction", "gold"),
    [
        ("The answer is negative 3.", "3"),
        ("The answer is minus 3", "3"),
        ("The answer is not 5 but 6.", "5"),
        ("The answer is half of 10, so 5", "10"),
        ("The answer is 12 minus 5", "12"),
        ("The answer is 3 squared", "3"),
        ("The answer is 5 over 2", "5"),
        ("The answer is 2 to the power of 3", "2"),
        ("The answer is 3 million", "3"),
        ("The answer is 3 dozen", "3"),
        ("The answer is 7 dollars and 50 cents", "7"),
        ("The answer is 100 divided by 4, which is 25", "100"),
    ],
)
def test_words_that_change_the_number_keep_the_answer_whole(prediction: str, gold: str) -> None:
    # Reading the first number out of these would match a gold by accident.
    assert outcome(prediction, gold) != "correct"


def test_a_cut_off_trace_with_prose_is_still_unanswered() -> None:
    assert outcome(split_response("<think>The answer is therefore 5.").final, "5") == "unparsable"


def test_extracted_is_the_math_read_from_prose() -> None:
    result = check_math(ScoreItem("The answer is therefore 5.", "5"), {})
    assert (result.outcome, result.extracted) == ("correct", "5")


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
