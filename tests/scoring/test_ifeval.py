"""IFEval-style verifiable instructions."""

from __future__ import annotations

import json

import pytest

from sftscope.data.records import split_response
from sftscope.errors import SftscopeError
from sftscope.scoring.ifeval import follows, loose_variants
from sftscope.scoring.registry import get_scorer, score_batch
from sftscope.scoring.result import ScoreItem

WORDS = "length_constraints:number_words"
LOWER = "this answer is written entirely in lowercase english, as the prompt asked."
CAPITAL = "THIS ANSWER IS WRITTEN ENTIRELY IN CAPITAL LETTERS, AS THE PROMPT ASKED."
CASES = [
    ({"id": WORDS, "relation": "at least", "num_words": 3}, "one two three", "one two"),
    ({"id": WORDS, "relation": "less than", "num_words": 3}, "one two", "one two three"),
    ({"id": "length_constraints:number_paragraphs", "num_paragraphs": 2}, "a\n***\nb", "a\n***\n***\nb"),
    ({"id": "detectable_format:number_bullet_lists", "num_bullets": 2}, "* a\n- b\ntext", "* a\ntext"),
    ({"id": "keywords:existence", "keywords": ["Lemon", "river"]}, "a lemon by the river", "a lemon"),
    ({"id": "keywords:forbidden_words", "forbidden_words": ["cat"]}, "a category", "the cat sat"),
    ({"id": "change_case:english_lowercase"}, LOWER, LOWER.capitalize()),
    ({"id": "change_case:english_capital"}, CAPITAL, CAPITAL.replace("ASKED", "asked")),
    ({"id": "startend:end_checker", "end_phrase": "Any questions?"}, 'Done. "any questions?"', "Done."),
    ({"id": "startend:start_checker", "start_phrase": "Dear"}, "dear Sam, hi", "Hi Sam, dear"),
    ({"id": "detectable_format:json_format"}, '```json\n{"a": 1}\n```', "{'a': 1}"),
    ({"id": "punctuation:no_comma"}, "no commas here", "one, two"),
    ({"id": "detectable_format:number_highlighted_sections", "num_highlights": 2}, "*a* **b**", "*a*"),
    ({"id": "detectable_format:title"}, "<<My Title>>\ntext", "<< >>\ntext"),
    ({"id": "detectable_content:postscript", "postscript_marker": "P.S."}, "hi\nP.S. bye", "hi"),
    ({"id": "startend:quotation"}, '"quoted"', "not quoted"),
    ({"id": "combination:two_responses"}, "one\n******\ntwo", "one\n******\none"),
]


@pytest.mark.parametrize(("instruction", "good", "bad"), CASES, ids=[c[0]["id"] for c in CASES])
def test_check_passes_and_fails(instruction: dict, good: str, bad: str) -> None:
    assert follows(good, instruction)
    assert not follows(bad, instruction)


# Where IFEval's reference checks (google-research instruction_following_eval) decide otherwise
# than a plausible reimplementation would: (instruction, response, reference verdict).
SENTENCES = "length_constraints:number_sentences"
FIRST_WORD = {"id": "length_constraints:nth_paragraph_first_word", "num_paragraphs": 2, "nth_paragraph": 1}
REFERENCE_CASES = [
    # Letter case alone is not enough: the response must also be detected as English...
    ({"id": "change_case:english_lowercase"}, "ceci est une réponse écrite entièrement en français.", False),
    (
        {"id": "change_case:english_capital"},
        "DIES IST EINE ANTWORT AUF DEUTSCH, GANZ IN GROSSBUCHSTABEN.",
        False,
    ),
    # ...and have a cased letter: str.islower() is False for "12345".
    ({"id": "change_case:english_lowercase"}, "12345", False),
    ({"id": "language:response_language", "language": "de"}, "Dies ist eine Antwort auf Deutsch.", True),
    ({"id": "language:response_language", "language": "de"}, "This answer is written in English.", False),
    # punkt ends a sentence after a closing quote, and not after "Dr.".
    ({"id": SENTENCES, "relation": "at least", "num_sentences": 2}, 'He said "Stop." Then he left.', True),
    ({"id": SENTENCES, "relation": "less than", "num_sentences": 3}, "Dr. Smith came. He sat.", True),
    # The first word is cut at the first of .,?!'" and keeps markdown or a colon.
    ({**FIRST_WORD, "first_word": "summer"}, "Summer's end.\n\nAutumn.", True),
    ({**FIRST_WORD, "first_word": "summer"}, "**Summer** ends.\n\nAutumn.", False),
    ({**FIRST_WORD, "first_word": "summer"}, "Summer: the end.\n\nAutumn.", False),
    # Paragraphs are counted without empty pieces but indexed with them.
    ({**FIRST_WORD, "first_word": "summer"}, "\n\nSummer ends.\n\nAutumn.", False),
    # nltk keeps a hyphenated word whole: one capital word, not four.
    (
        {"id": "change_case:capital_word_frequency", "capital_frequency": 2, "capital_relation": "less than"},
        "It is STATE-OF-THE-ART.",
        True,
    ),
    # A title is the whole greedy <<...>> span with its brackets stripped.
    ({"id": "detectable_format:title"}, "<<<>>>", False),
    # IFEval strips the keyword, the letter and the section splitter it is given.
    (
        {"id": "keywords:frequency", "keyword": " cat ", "frequency": 2, "relation": "at least"},
        "a cat, a cat",
        True,
    ),
    (
        {"id": "keywords:letter_frequency", "letter": " a", "let_frequency": 2, "let_relation": "at least"},
        "a b a",
        True,
    ),
    (
        {"id": "detectable_format:multiple_sections", "section_spliter": " SECTION", "num_sections": 2},
        "SECTION 1\nx\nSECTION 2\ny",
        True,
    ),
]


@pytest.mark.parametrize(
    ("instruction", "text", "expected"), REFERENCE_CASES, ids=[c[0]["id"] for c in REFERENCE_CASES]
)
def test_matches_ifeval_reference(instruction: dict, text: str, expected: bool) -> None:
    assert follows(text, instruction) is expected


def test_undetectable_language_counts_as_followed() -> None:
    # langdetect raises on a text without letters; IFEval counts that as followed.
    assert follows("12345 !!!", {"id": "language:response_language", "language": "fr"})


def test_language_detection_is_repeatable() -> None:
    # langdetect's verdict on this short text flips from call to call without a fixed seed.
    english = {"id": "language:response_language", "language": "en"}
    assert len({follows("ALL CAPS 12", english) for _ in range(30)}) == 1


def test_score_is_share_followed_and_correct_only_when_all_are() -> None:
    instructions = [
        {"id": "punctuation:no_comma"},
        {"id": "change_case:english_lowercase"},
        # IFEval's HF rows carry every keyword, unused ones as None: they are ignored.
        {"id": "keywords:existence", "keywords": ["river"], "num_words": None},
    ]
    items = [
        ScoreItem("a calm river runs through the valley", json.dumps(instructions)),  # gold JSON
        ScoreItem("A calm river, wide and slow", None, {"instructions": instructions}),
        ScoreItem("", json.dumps(instructions)),
    ]
    results = score_batch("ifeval", items, workers=0)
    assert [(r.outcome, round(r.score, 3)) for r in results] == [
        ("correct", 1.0),
        ("wrong", 0.333),
        ("unparsable", 0.0),
    ]
    assert "punctuation:no_comma=fail" in (results[1].extracted or "")


def test_unknown_instruction_or_bad_keywords_is_an_error_row() -> None:
    items = [
        ScoreItem("text", None, {"instructions": [{"id": "language:made_up", "language": "en"}]}),
        ScoreItem("text", None, {"instructions": [{"id": "length_constraints:number_words"}]}),
        ScoreItem("text", None, {}),
    ]
    results = score_batch("ifeval", items, workers=0)
    assert [r.outcome for r in results] == ["error", "error", "error"]
    assert "unknown ifeval instruction" in (results[0].error or "")
    assert "bad keywords" in (results[1].error or "")


def test_loose_mode_forgives_a_preamble_a_sign_off_and_markdown_stars() -> None:
    instructions = [
        {"id": "detectable_format:title"},
        {"id": "startend:end_checker", "end_phrase": "Is there anything else I can help with?"},
        {"id": "detectable_content:postscript", "postscript_marker": "P.S."},
    ]
    response = (
        "Sure, here is my poem:\n<<Rivers>>\nThe river runs.\nP.S. I love rivers.\n"
        "Is there anything else I can help with?\n*Hope you liked it*"
    )
    item = ScoreItem(response, None, {"instructions": instructions})
    strict, loose = (score_batch("ifeval", [item], workers=0, params=p)[0] for p in ({}, {"mode": "loose"}))
    assert (strict.outcome, round(strict.score, 3)) == ("wrong", 0.667)  # the sign-off ends it
    assert (loose.outcome, loose.score) == ("correct", 1.0)  # without its last line it ends right
    variants = ["a\n*b*\nc", "a\nb\nc", "*b*\nc", "b\nc", "a\n*b*", "a\nb", "*b*", "b"]
    assert loose_variants("a\n*b*\nc") == variants


def test_an_unknown_mode_is_a_spec_error() -> None:
    with pytest.raises(SftscopeError, match="param mode: must be one of strict, loose"):
        score_batch(
            "ifeval",
            [ScoreItem("x", None, {"instructions": [{"id": "punctuation:no_comma"}]})],
            params={"mode": "lenient"},
        )


# lm-eval 0.4's IFEval checkers (instructions.py) where they differ from ours: each case is an
# instruction, a response, and the verdicts under sftscope and under lm-eval.
SEMANTICS_CASES = {
    # KeywordChecker: re.search(keyword, value, re.IGNORECASE), the keyword a pattern.
    "keyword as a pattern": ({"id": "keywords:existence", "keywords": ["c.t"]}, "The cat sat.", False, True),
    "keyword literal dot": ({"id": "keywords:existence", "keywords": ["e.g."]}, "e.g. this", True, True),
    # KeywordFrequencyChecker: len(re.findall(keyword, value, re.IGNORECASE)).
    "frequency as a pattern": (
        {"id": "keywords:frequency", "keyword": "a.c", "frequency": 2, "relation": "at least"},
        "abc and axc",
        False,
        True,
    ),
    # ForbiddenWords: re.search(r"\\b" + word + r"\\b", ...).
    "forbidden pattern": (
        {"id": "keywords:forbidden_words", "forbidden_words": ["colou?r"]},
        "A color.",
        True,
        False,
    ),
    # SectionChecker: re.split(r"\\s?" + spliter + r"\\s?\\d+\\s?", value).
    "splitter as a pattern": (
        {"id": "detectable_format:multiple_sections", "section_spliter": "Sec.", "num_sections": 2},
        "Sect 1\nfoo\nSect 2\nbar",
        False,
        True,
    ),
    # PostscriptChecker: only "P.S." and "P.P.S" get the special shapes; any other marker is a
    # pattern, lowercased: "p.s." then matches "pass".
    "postscript marker as a pattern": (
        {"id": "detectable_content:postscript", "postscript_marker": "p.s."},
        "I pass.",
        False,
        True,
    ),
    "postscript P.S.": (
        {"id": "detectable_content:postscript", "postscript_marker": "P.S."},
        "x\nP. S. hi",
        True,
        True,
    ),
    # JsonFormat: strips ```json, ```Json, ```JSON or ``` only.
    "json fence tag case": ({"id": "detectable_format:json_format"}, "```jSoN\n{}\n```", True, False),
    "json fence": ({"id": "detectable_format:json_format"}, '```JSON\n{"a": 1}\n```', True, True),
}


@pytest.mark.parametrize(
    ("instruction", "text", "ours", "lm_eval"), SEMANTICS_CASES.values(), ids=SEMANTICS_CASES.keys()
)
def test_semantics_lm_eval_follows_lm_eval(instruction: dict, text: str, ours: bool, lm_eval: bool) -> None:
    item = ScoreItem(text, None, {"instructions": [instruction]})
    verdicts = [
        score_batch("ifeval", [item], workers=0, params={"semantics": semantics})[0].outcome
        for semantics in ("sftscope", "lm-eval")
    ]
    assert verdicts == ["correct" if ok else "wrong" for ok in (ours, lm_eval)]


def test_lm_eval_semantics_has_its_failures_too() -> None:
    """An invalid pattern raises in lm-eval, an error row here; IFEval has no start checker."""
    invalid = ScoreItem(
        "fun (really)", None, {"instructions": [{"id": "keywords:existence", "keywords": ["(really"]}]}
    )
    start = ScoreItem("Hi", None, {"instructions": [{"id": "startend:start_checker", "start_phrase": "Hi"}]})
    results = score_batch("ifeval", [invalid, start], workers=0, params={"semantics": "lm-eval"})
    assert [r.outcome for r in results] == ["error", "error"]
    assert "unknown ifeval instruction" in (results[1].error or "")
    assert [r.outcome for r in score_batch("ifeval", [invalid, start], workers=0)] == ["correct", "correct"]


def test_lm_eval_semantics_sees_the_leading_blank_lines_the_model_wrote() -> None:
    """lm-eval splits paragraphs on the text as generated, so an answer that opens with a blank line
    has an empty first paragraph there; our semantics strip first. The sweep hands each its text."""
    split = split_response("<think>plan</think>\n\nRivers run.\n\nThey end in seas.")
    assert split.final.startswith("Rivers") and split.raw_final.startswith("\n\n")
    scorer = get_scorer("ifeval")
    assert scorer.unstripped is not None
    lm_eval, ours = {"semantics": "lm-eval"}, {"semantics": "sftscope"}
    assert scorer.unstripped(lm_eval) and not scorer.unstripped(ours) and not scorer.unstripped({})
    instruction = {**FIRST_WORD, "first_word": "rivers"}
    assert follows(split.final, instruction, "lm-eval") and follows(split.final, instruction, "sftscope")
    assert not follows(split.raw_final, instruction, "lm-eval")
