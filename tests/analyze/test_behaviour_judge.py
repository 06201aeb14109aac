"""The optional LLM-judge behaviour mode, against a stub OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sftscope.analyze.behaviour_judge import judge_classifier, judge_detector, parse_counts
from sftscope.analyze.calibration import evaluate_classifier, load_traces
from sftscope.analyze.pipeline import analyze
from sftscope.analyze.synthetic import synthetic_runs, write_synthetic_store
from sftscope.scoring.behaviours import BehaviourCounts, detect
from sftscope.scoring.judge import JudgeError

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from openai_stub import serve


def _answering(reply: Callable[[str], str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The stub server's reply: `reply` of the judge prompt, as an OpenAI chat completion."""

    def completion(body: dict[str, Any]) -> dict[str, Any]:
        content = reply(body["messages"][0]["content"])
        return {"choices": [{"message": {"role": "assistant", "content": content}}]}

    return completion


def _lexicon_reply(prompt: str) -> str:
    """A 'judge' that counts with the lexicon, so the plumbing can be checked exactly."""
    trace = re.search(r"<<<\n(.*)\n>>>", prompt, re.S)
    assert trace is not None
    return "Here are the counts:\n" + json.dumps(detect(trace.group(1)).as_dict())


@pytest.fixture(scope="module")
def lexicon_judge() -> Iterator[dict[str, str]]:
    with serve() as (state, url):
        state.reply = _answering(_lexicon_reply)
        yield {"base_url": url, "model": "stub"}


def test_parse_counts_reads_the_last_json_object() -> None:
    counts = '{"backtracking": 2, "verification": 0, "subgoal_setting": 1, "backward_chaining": 0}'
    reply = f'Format: {{"a": 1}}. Answer: {counts}'
    assert parse_counts(reply) == BehaviourCounts(backtracking=2, subgoal_setting=1)


@pytest.mark.parametrize(
    "reply",
    [
        "I think there is some backtracking.",
        '{"backtracking": 1, "verification": 0}',
        '{"backtracking": -1, "verification": 0, "subgoal_setting": 0, "backward_chaining": 0}',
        '{"backtracking": 1.5, "verification": 0, "subgoal_setting": 0, "backward_chaining": 0}',
    ],
)
def test_malformed_replies_are_errors_not_guesses(reply: str) -> None:
    with pytest.raises(JudgeError):
        parse_counts(reply)


def test_judge_detector_goes_through_the_endpoint(lexicon_judge: dict[str, str]) -> None:
    text = "25 * 3 = 75. Wait, that's not 72. Let me check: 50 + 25 - 3 = 72."
    assert judge_detector(lexicon_judge)(text) == detect(text)


def test_judge_calibration_uses_the_same_labelled_set(lexicon_judge: dict[str, str]) -> None:
    traces = load_traces()
    assert evaluate_classifier(traces, judge_classifier(lexicon_judge)) == evaluate_classifier(traces)


def test_unreadable_judge_reply_names_the_endpoint() -> None:
    with serve() as (state, url):
        state.reply = _answering(lambda prompt: "no numbers here")
        with pytest.raises(JudgeError, match=r"behaviour judge at http://127\.0\.0\.1"):
            judge_detector({"base_url": url, "model": "stub"})("Wait, no.")


def test_analysis_in_judge_mode(lexicon_judge: dict[str, str], tmp_path: Path) -> None:
    write_synthetic_store(tmp_path / "results.duckdb", n_prompts=8, k=1)
    analysis = analyze(tmp_path, synthetic_runs(), n_boot=100, behaviour_judge=lexicon_judge)
    assert analysis.behaviour_classifier.startswith("judge stub at http://127.0.0.1")
    assert {r.classifier for r in analysis.calibration} == {"lexicon", "judge"}
