"""Precision and recall of a behaviour classifier on the project's labelled traces.

The labelled set (`data/behaviour_traces.jsonl`) has two splits: `calibration` traces were used
to tune the lexicon in `sftscope.scoring.behaviours`; `holdout` traces were written alongside but
never used for tuning, so their numbers are the honest estimate. Both are reported.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from importlib import resources
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from sftscope.errors import InputError
from sftscope.scoring.behaviours import BEHAVIOURS, detect

DOMAINS = ("math", "countdown", "other")
SPLITS = ("calibration", "holdout")


class LabelledTrace(BaseModel):
    """One hand-labelled reasoning trace."""

    id: str
    """Stable identifier, e.g. `cal-001`."""
    split: Literal["calibration", "holdout"]
    """`calibration` traces tuned the lexicon; `holdout` traces did not."""
    domain: Literal["math", "countdown", "other"]
    """Where the trace comes from."""
    text: str
    """The reasoning text."""
    labels: dict[str, bool]
    """Behaviour name -> present, for all four behaviours."""


class BehaviourScore(BaseModel):
    """Confusion counts and derived metrics of one behaviour on one split."""

    behaviour: str
    """One of the four behaviour names."""
    split: str
    """`calibration`, `holdout` or `all`."""
    tp: int
    """True positives."""
    fp: int
    """False positives."""
    fn: int
    """False negatives."""
    tn: int
    """True negatives."""

    @property
    def precision(self) -> float:
        """TP / (TP + FP); 1.0 when nothing was predicted (no false alarms were possible)."""
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        """TP / (TP + FN); 1.0 when there were no positives to find."""
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def default_traces_path() -> Path:
    return Path(str(resources.files("sftscope.analyze") / "data" / "behaviour_traces.jsonl"))


def load_traces(path: Path | None = None) -> list[LabelledTrace]:
    """Read the labelled set; a bad line raises InputError naming file, line and field."""
    path = path or default_traces_path()
    traces: list[LabelledTrace] = []
    for line_no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            trace = LabelledTrace.model_validate(json.loads(line))
        except json.JSONDecodeError as err:
            raise InputError(path, f"malformed JSON: {err.msg}", line=line_no) from err
        except ValueError as err:
            field = str(err.errors()[0]["loc"][0]) if hasattr(err, "errors") else None
            raise InputError(path, f"invalid labelled trace: {err}", line=line_no, field=field) from err
        missing = set(BEHAVIOURS) - set(trace.labels)
        if missing:
            raise InputError(path, f"missing labels {sorted(missing)}", line=line_no, field="labels")
        traces.append(trace)
    return traces


Classifier = Callable[[str], dict[str, bool]]


def lexicon_classifier(text: str) -> dict[str, bool]:
    return detect(text).present()


def evaluate_classifier(
    traces: Iterable[LabelledTrace], classify: Classifier = lexicon_classifier
) -> list[BehaviourScore]:
    """Per behaviour and per split (plus `all`), the confusion counts of `classify` against the labels."""
    traces = list(traces)
    predictions = [classify(t.text) for t in traces]
    scores = []
    for split in (*SPLITS, "all"):
        rows = [(t, p) for t, p in zip(traces, predictions, strict=True) if split in ("all", t.split)]
        for name in BEHAVIOURS:
            pairs = [(t.labels[name], bool(p.get(name))) for t, p in rows]
            scores.append(
                BehaviourScore(
                    behaviour=name,
                    split=split,
                    tp=sum(g and p for g, p in pairs),
                    fp=sum(p and not g for g, p in pairs),
                    fn=sum(g and not p for g, p in pairs),
                    tn=sum(not g and not p for g, p in pairs),
                )
            )
    return scores


def misclassified(traces: Iterable[LabelledTrace], classify: Classifier = lexicon_classifier) -> list[str]:
    """Human-readable list of the disagreements, for tuning and for the report's appendix."""
    out = []
    for trace in traces:
        predicted = classify(trace.text)
        for name in BEHAVIOURS:
            if trace.labels[name] != bool(predicted.get(name)):
                kind = "missed" if trace.labels[name] else "false alarm"
                out.append(f"{trace.id} [{trace.split}] {name}: {kind} -- {trace.text[:90]}")
    return out
