"""The lexicon behaviour classifier: hard negatives, episode counting, and measured precision/recall."""

from __future__ import annotations

import pytest

from sftscope.analyze.calibration import evaluate_classifier, load_traces
from sftscope.scoring.behaviours import BEHAVIOURS, detect, explain, has_backtracking


@pytest.mark.parametrize(
    "text",
    [
        "The wait time is 5 minutes.",
        "We have to wait 5 minutes for the bus.",
        "Please wait a moment while the page loads.",
        "Hold on to the railing.",
        "I can't wait to see the results.",
    ],
)
def test_everyday_wait_is_not_backtracking(text: str) -> None:
    assert not has_backtracking(text)


@pytest.mark.parametrize(
    "text",
    ["Check-in at 3pm.", "The checklist has 3 items.", "Paychecks arrive monthly.", "I verified my email."],
)
def test_everyday_check_is_not_verification(text: str) -> None:
    assert detect(text).verification == 0


def test_one_backtrack_episode_counts_once() -> None:
    counts = detect("25 * 3 = 75. Wait, that's wrong. Let me try again: 50 + 25 = 75.")
    assert counts.backtracking == 1


def test_separate_episodes_count_separately() -> None:
    text = (
        "25 * 3 = 75, 75 - 8 = 67. Wait, that's not 72. Next I try 50 - 8 = 42 and 42 + 25 = 67 "
        "which is again far from the target. Let me try something different: 50 + 25 - 3 = 72."
    )
    assert detect(text).backtracking == 2


def test_explain_names_the_matched_phrases() -> None:
    found = explain("Let me verify: 3 * 8 = 24. To get 24, we need 3 * 8.")
    assert set(found) == set(BEHAVIOURS)
    assert found["verification"] == ["Let me verify"]
    assert found["backward_chaining"] == ["To get 24, we need"]


def _scores(split: str) -> dict[str, tuple[float, float]]:
    return {
        s.behaviour: (s.precision, s.recall) for s in evaluate_classifier(load_traces()) if s.split == split
    }


def test_labelled_set_is_large_and_balanced() -> None:
    traces = load_traces()
    assert len(traces) >= 60
    assert {t.domain for t in traces} == {"math", "countdown", "other"}
    for name in BEHAVIOURS:
        positives = sum(t.labels[name] for t in traces)
        assert positives >= 10, name
    assert sum(not any(t.labels.values()) for t in traces) >= 20  # hard negatives


def test_calibration_split_precision_and_recall() -> None:
    # In-sample: the lexicon was tuned on these traces, so anything below 0.9 precision / 0.85
    # recall would mean a pattern regressed.
    for name, (precision, recall) in _scores("calibration").items():
        assert precision >= 0.9, name
        assert recall >= 0.85, name


def test_holdout_split_precision_and_recall() -> None:
    # Out-of-sample, with only 3-6 positives per behaviour: one miss moves recall by 0.17-0.33,
    # so the recall floor is 0.5. Precision is held higher because behaviour curves compare
    # checkpoints with the same classifier: a constant miss rate cancels in that comparison, while
    # false alarms on ordinary prose would manufacture behaviour that is not there.
    for name, (precision, recall) in _scores("holdout").items():
        assert precision >= 0.75, name
        assert recall >= 0.5, name
