"""Optional LLM-judge mode for the four behaviours, as Gandhi et al. 2025 counted them.

The judge reads the whole output (the reasoning is the point here) and answers with JSON counts.
It goes through `sftscope.scoring.judge.ask_judge`, so any OpenAI-compatible endpoint works and
HTTP failures read the same as the safety judge's. A reply without four non-negative integer counts
raises `JudgeError`: a count is never guessed. Its precision and recall on the labelled traces come
from `calibration.evaluate_classifier(traces, judge_classifier(params))`, exactly as the lexicon's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from typing import Any

from sftscope.analyze.calibration import Classifier
from sftscope.endpoint import public_url
from sftscope.scoring.behaviours import BEHAVIOURS, BehaviourCounts
from sftscope.scoring.judge import JudgeError, ask_judge, chat_url, validate_params

PROMPT = """Below is a reasoning trace written by a language model. Count how many times it shows \
each of these four cognitive behaviours (Gandhi et al., 2025):

- backtracking: it realises a path does not work and explicitly goes back to try a different approach \
("this doesn't work, let me try ...").
- verification: it systematically checks an intermediate or final result ("let me check: 3 * 8 = 24").
- subgoal_setting: it breaks the problem into smaller intermediate goals ("first find x, then ...").
- backward_chaining: it reasons backwards from the goal to what would be needed ("to get 24 we need ...").

Count acts of reasoning, not words: "wait time is 5 minutes" is not backtracking, "check-in at 3pm" \
is not verification.

Trace:
<<<
{trace}
>>>

Answer with one JSON object and nothing else, for example:
{{"backtracking": 0, "verification": 1, "subgoal_setting": 2, "backward_chaining": 0}}"""

_OBJECT = re.compile(r"\{[^{}]*\}", re.S)


def parse_counts(reply: str) -> BehaviourCounts:
    """The four counts in a judge reply (the last JSON object in it); `JudgeError` otherwise."""
    for match in reversed(_OBJECT.findall(reply)):
        try:
            data = json.loads(match)
        except json.JSONDecodeError:
            continue
        if isinstance(data, dict) and set(BEHAVIOURS) <= set(data):
            values = {name: data[name] for name in BEHAVIOURS}
            if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in values.values()):
                raise JudgeError(f"behaviour counts must be non-negative integers, got {values}")
            return BehaviourCounts(**values)
    raise JudgeError(f"no JSON object with the four behaviour counts in the reply: {reply[:200]!r}")


def judge_detector(params: Mapping[str, Any], timeout_s: float = 60.0) -> Callable[[str], BehaviourCounts]:
    """A drop-in for `behaviours.detect` that asks the judge (params as for the safety judge)."""
    validate_params(params)

    def detect(text: str) -> BehaviourCounts:
        reply = ask_judge(params, PROMPT.format(trace=text), timeout_s)
        try:
            return parse_counts(reply)
        except JudgeError as exc:
            url = public_url(chat_url(str(params["base_url"])))
            raise JudgeError(f"behaviour judge at {url}: {exc}") from None

    return detect


def judge_classifier(params: Mapping[str, Any], timeout_s: float = 60.0) -> Classifier:
    """The judge as a present/absent classifier, for precision and recall on the labelled set."""
    detect = judge_detector(params, timeout_s)
    return lambda text: detect(text).present()
