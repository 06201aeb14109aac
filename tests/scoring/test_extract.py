"""Answer extraction: boxed, bold, answer phrases, last lines."""

from __future__ import annotations

import pytest

from sftscope.data.records import split_response
from sftscope.scoring.extract import (
    answer_phrase,
    answer_span,
    final_answer,
    last_boxed,
    last_line,
    math_span,
    opening_math,
    strip_bold,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so \\boxed{42}.", "42"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        ("\\boxed {7}", "7"),
        ("\\fbox{7}", "7"),
        ("first \\boxed{1}, then corrected: \\boxed{2}", "2"),
        ("\\boxed{\\{1, 2\\}}", "\\{1, 2\\}"),
        ("\\boxed{a_{n+1} = {b}}", "a_{n+1} = {b}"),
        ("no box here", None),
        ("\\boxed{}", None),
        # Cut off inside the last box: no answer, rather than the abandoned earlier one.
        ("\\boxed{1} then \\boxed{2", None),
    ],
)
def test_last_boxed(text: str, expected: str | None) -> None:
    assert last_boxed(text) == expected


def test_strip_bold_keeps_content() -> None:
    assert strip_bold("The answer is **73**.") == "The answer is 73."
    assert strip_bold("__x__ and **y**") == "x and y"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 73.", "73"),
        ("The answer is **73**.", "73"),
        ("**Answer:** 5 cm", "5 cm"),
        ("Final Answer: The final answer is $\\frac{1}{2}$. I hope it is correct.", "\\frac{1}{2}"),
        ("So the answer is 3.5.", "3.5"),
        ("The answer is [1,3).", "[1,3)"),
        ("To find the answer, we add.", None),
        ("Answers vary.", None),
        # A lead-in announces the working, not the answer.
        ("To find the answer: we add 2 and 3. So the total is 5.", None),
        ("Let's find the answer: 2 + 3. The answer is 5.", "5"),
    ],
)
def test_answer_phrase(text: str, expected: str | None) -> None:
    assert answer_phrase(text) == expected


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("therefore 5", "5"),
        ("approximately 3.14", "3.14"),
        ("10 marbles in total", "10"),
        ("60 km/h", "60"),
        ("42, which is the product of 6 and 7", "42"),
        ("5\\text{ cm}, as measured", "5\\text{ cm}"),
        ("\\frac{1}{2} of the pie", "\\frac{1}{2}"),
        ("x = 5 when y = 2", "x = 5"),
        ("2 and 3 apples", "2 and 3"),
        # Unchanged: no prose, no math, or alternatives rather than one answer.
        ("a^2 + ab + b^2", "a^2 + ab + b^2"),
        ("2ab", "2ab"),
        ("2 \\sin x", "2 \\sin x"),
        ("none of these", "none of these"),
        ("5, or maybe 6", "5, or maybe 6"),
    ],
)
def test_opening_math(answer: str, expected: str) -> None:
    assert opening_math(answer) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is therefore 5.", "5"),
        ("Final Answer: The final answer is $4$. I hope it is correct.", "4"),
        # Delimited math is math-verify's to find; boxed content is math as written.
        ("The answer is $5$ cm.", "$5$ cm"),
        ("\\boxed{10 marbles}", "10 marbles"),
        ("no answer here", None),
    ],
)
def test_math_span(text: str, expected: str | None) -> None:
    assert math_span(text) == expected


def test_boxed_outranks_phrase_and_last_line_is_the_fallback() -> None:
    assert answer_span("The answer is 4. Actually \\boxed{5}") == "5"
    assert answer_span("\\boxed{**9**}") == "9"
    assert last_line("work\n\n**12**.\n") == "12"
    assert final_answer("thinking\nblue") == "blue"
    assert final_answer("") is None


def test_unclosed_reasoning_leaves_nothing_to_extract() -> None:
    # The caller strips reasoning with split_response; a cut-off think block yields final="".
    split = split_response("<think>the answer is \\boxed{3} maybe")
    assert not split.closed
    assert final_answer(split.final) is None
