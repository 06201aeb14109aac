"""Per-output measurements: response shape, the four behaviours, and procedure versus surface.

Each metric is a number per sample; curves average them per prompt, then over prompts. The whole
output is read (reasoning and final part): short-CoT and answer-only conditions have no think block,
and their behaviours, if any, are in the final part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from sftscope.analyze.procedure import count_procedure
from sftscope.scoring.behaviours import BEHAVIOURS, BehaviourCounts, detect, episodes

# n-gram length for the repetition rate: 4 words is long enough that ordinary prose rarely repeats
# one ("the answer is 12" aside), short enough to catch degenerate loops early.
REPETITION_N = 4

METRICS: dict[str, str] = {
    "score": "score",
    "output_tokens": "response length (tokens)",
    "truncated": "truncation rate",
    "repetition": "4-gram repetition rate",
    "backtracking": "backtracking episodes / response",
    "verification": "verification episodes / response",
    "subgoal_setting": "subgoal-setting episodes / response",
    "backward_chaining": "backward-chaining episodes / response",
    "effective_backtracks": "effective backtracks / response",
    "surface_markers": "surface backtrack markers / response",
}
"""Metric name -> axis label. `procedure_index` is a ratio of the last two and is added by curves."""


_TEXT_METRICS = ("repetition", *BEHAVIOURS, "effective_backtracks", "surface_markers")


def repetition_rate(text: str, n: int = REPETITION_N) -> float:
    """Share of word n-grams that already occurred earlier in the same text (0 = no repeats)."""
    words = text.split()
    grams = [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]
    if not grams:
        return 0.0
    return 1.0 - len(set(grams)) / len(grams)


def is_truncated(status: str | None, finish_reason: str | None) -> bool:
    """Cut off by the token limit: the scorer's own verdict, or the engine's finish reason."""
    return status == "truncated" or finish_reason == "length"


def sample_features(
    outputs: Sequence[str | None],
    statuses: Sequence[str | None],
    finish_reasons: Sequence[str | None] | None = None,
    detector: Callable[[str], BehaviourCounts] = detect,
) -> dict[str, np.ndarray]:
    """Metric name -> one value per sample (excluding `score` and `output_tokens`, read from the store).

    `detector` counts the four behaviours: the lexicon by default, or the LLM judge.
    """
    finish_reasons = finish_reasons if finish_reasons is not None else [None] * len(outputs)
    columns: dict[str, list[float]] = {name: [] for name in METRICS if name not in ("score", "output_tokens")}
    # The same text recurs (a shared base checkpoint listed under every run, identical short
    # answers), and the regex work dominates the analysis time, so each distinct text is read once.
    memo: dict[str, list[float]] = {}
    for output, status, finish in zip(outputs, statuses, finish_reasons, strict=True):
        text = output or ""
        if text not in memo:
            # The effective-backtracking counter judges the lexicon's backtrack episodes in any mode:
            # it needs their positions, which a judge does not give.
            markers = episodes(text, "backtracking")
            if detector is detect:
                counts = {
                    name: len(markers) if name == "backtracking" else len(episodes(text, name))
                    for name in BEHAVIOURS
                }
            else:
                counts = detector(text).as_dict()
            procedure = count_procedure(text, markers)
            memo[text] = [
                repetition_rate(text),
                *(float(counts[name]) for name in BEHAVIOURS),
                float(procedure.effective),
                float(procedure.surface),
            ]
        columns["truncated"].append(float(is_truncated(status, finish)))
        for name, value in zip(_TEXT_METRICS, memo[text], strict=True):
            columns[name].append(value)
    return {name: np.asarray(values, dtype=float) for name, values in columns.items()}
