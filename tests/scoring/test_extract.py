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
    ],
)
def test_answer_phrase(text: str, expected: str | None) -> None:
    assert answer_phrase(text) == expected


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
