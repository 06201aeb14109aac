"""Multiple-choice letters: marked answers only, never stray capitals."""

from __future__ import annotations

import pytest

from sftscope.scoring.choice import check_choice, extract_choice
from sftscope.scoring.result import ScoreItem


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("(C)", "C"),
        ("**C**", "C"),
        ("Answer: C", "C"),
        ("\\boxed{C}", "C"),
        ("The final answer is $\\boxed{\\text{D}}$.", "D"),
        ("C.", "C"),
        ("the answer is c", "C"),
        ("The answer is (b).", "B"),
        ("**Answer:** (B)", "B"),
        ("I think A is wrong, so the answer is B.", "B"),
        ("I think A is wrong... so B", "B"),
        ("Answer: A\nWait, no. Answer: D", "D"),
        ("The correct option is E because it is larger.", "E"),
        ("Working...\nC. 42", "C"),
        ("Therefore the best choice is **B** here, as shown", "B"),
        # The pronoun I after an answer marker is not option I (MMLU-Pro has A-J).
        ("Answer: I think the answer is B", "B"),
        ("\\boxed{B}\n\nAnswer: I hope this is right.", "B"),
        ("The answer is I.", "I"),
        ("Answer: (I) because it is larger", "I"),
        # A conclusion starting a sentence.
        ("So, B.", "B"),
        ("Hence B.", "B"),
    ],
)
def test_extracts(text: str, letter: str) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        # The article A is not option A; the letter stated later in the phrase is the answer.
        ("Answer: A careful reading shows it is B.", "B"),
        ("The answer is a careful reading, so it is (B).", "B"),
        # ... while a stated A is still A.
        ("The answer is A.", "A"),
        ("Answer: A", "A"),
        ("(A) because it is larger", "A"),
        ("Answer: (A) because it is larger", "A"),
        ("The answer is A because it is larger.", "A"),
        ("Answer: A is correct.", "A"),
        ("Answer: A seems right.", "A"),
        ("I'll go with A here.", "A"),
        # After the pronoun I, the letter stated later in the phrase is the answer.
        ("Answer: I think B", "B"),
        ("**Answer:** I'd say B.", "B"),
        ("Answer: I think A is wrong, so B.", "B"),
        ("Answer: I because it is larger", "I"),
    ],
)
def test_one_letter_words_are_not_options(text: str, letter: str) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize(
    ("text", "letter"),
    [
        ("The answer is A? No wait, it's B.", "B"),
        ("The answer is A. Actually, it's B.", "B"),
        ("Answer: A\nCorrection: B", "B"),
        ("\\boxed{A} No, wait, it is B.", "B"),
        # Later mentions that are not corrections do not override a clear answer.
        ("The answer is B. Option A is wrong because it ignores friction.", "B"),
        ("The answer is B. Actually, A is tempting but wrong.", "B"),
        ("The answer is B. Wait, no doubt about it: A is wrong.", "B"),
        # A cleft sentence names a letter without restating the answer.
        ("The answer is A. Actually, it is B that most people pick, but A is right.", "A"),
        ("The answer is A. Actually, it's B which looks right at first.", "A"),
        ("The answer is A. Actually, it's B because of friction.", "B"),
    ],
)
def test_an_explicit_correction_wins(text: str, letter: str) -> None:
    assert extract_choice(text) == letter


@pytest.mark.parametrize(
    "text",
    [
        "I think A is wrong, and B is not obvious either.",
        "the answer is a bit unclear",
        "Option A is wrong. Option C is right as well.",
        "A quick check shows nothing.",
        "Answer: K",  # not an option letter
        "",
    ],
)
def test_stray_letters_are_not_answers(text: str) -> None:
    assert extract_choice(text) is None


@pytest.mark.parametrize("text", ["Answer: I think B", "**Answer:** I'd say B.", "Answer: I believe so."])
def test_the_pronoun_i_is_not_option_i(text: str) -> None:
    assert extract_choice(text) != "I"


def test_letters_param_limits_the_options() -> None:
    assert extract_choice("Answer: E", letters="ABCD") is None
    result = check_choice(ScoreItem("Answer: E", "B"), {"letters": "ABCD"})
    assert result.outcome == "unparsable"


def test_scores_against_gold_letter() -> None:
    assert check_choice(ScoreItem("Answer: (c)", "C"), {}).outcome == "correct"
    assert check_choice(ScoreItem("Answer: D", "(C)"), {}).outcome == "wrong"
    with pytest.raises(ValueError, match="gold letter"):
        check_choice(ScoreItem("Answer: D", "42"), {})


@pytest.mark.parametrize(
    "prediction",
    [
        "I choose A over B.",
        "I'll go with A over B",
        "I pick A instead of B.",
        "The answer is A for sure, not C.",
        "Answer: A seems right, not B.",
        "The answer is A in my opinion, not B",
        "Answer: A seems right, see part (b).",
        "Answer: A seems right, i.e. the first one.",
        "Answer: A fits best, e.g. for x > 0.",
        "The answer is A given x, y.",
    ],
)
def test_option_a_before_words_stays_a_unless_the_sentence_restates_another(prediction: str) -> None:
    # A later letter in the sentence is often the rejected option, or a letter of "i.e." or "(b)".
    result = check_choice(ScoreItem(prediction, "A", {}), {"letters": "ABCDEFGHIJ"})
    assert (result.outcome, result.extracted) == ("correct", "A")
