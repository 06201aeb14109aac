"""IFEval-style verifiable instructions."""

from __future__ import annotations

import json

import pytest

from sftscope.scoring.ifeval import follows
from sftscope.scoring.registry import score_batch
from sftscope.scoring.result import ScoreItem

WORDS = "length_constraints:number_words"
CASES = [
    ({"id": WORDS, "relation": "at least", "num_words": 3}, "one two three", "one two"),
    ({"id": WORDS, "relation": "less than", "num_words": 3}, "one two", "one two three"),
    ({"id": "length_constraints:number_paragraphs", "num_paragraphs": 2}, "a\n***\nb", "a\n***\n***\nb"),
    ({"id": "detectable_format:number_bullet_lists", "num_bullets": 2}, "* a\n- b\ntext", "* a\ntext"),
    ({"id": "keywords:existence", "keywords": ["Lemon", "river"]}, "a lemon by the river", "a lemon"),
    ({"id": "keywords:forbidden_words", "forbidden_words": ["cat"]}, "a category", "the cat sat"),
    ({"id": "change_case:english_lowercase"}, "all lower, 12.", "Not lower"),
    ({"id": "change_case:english_capital"}, "ALL CAPS 12", "ALL CAPs"),
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


def test_score_is_share_followed_and_correct_only_when_all_are() -> None:
    instructions = [
        {"id": "punctuation:no_comma"},
        {"id": "change_case:english_lowercase"},
        # IFEval's HF rows carry every keyword, unused ones as None: they are ignored.
        {"id": "keywords:existence", "keywords": ["river"], "num_words": None},
    ]
    items = [
        ScoreItem("a calm river", json.dumps(instructions)),  # instructions as gold JSON
        ScoreItem("A calm river, wide", None, {"instructions": instructions}),
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
        ScoreItem("text", None, {"instructions": [{"id": "language:response_language", "language": "en"}]}),
        ScoreItem("text", None, {"instructions": [{"id": "length_constraints:number_words"}]}),
        ScoreItem("text", None, {}),
    ]
    results = score_batch("ifeval", items, workers=0)
    assert [r.outcome for r in results] == ["error", "error", "error"]
    assert "unknown ifeval instruction" in (results[0].error or "")
    assert "bad keywords" in (results[1].error or "")
