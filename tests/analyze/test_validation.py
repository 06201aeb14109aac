"""Planted curves mean what they say, and the shipped detector-validation figures are the benchmark's
own: consistent with its confusion table, never typed in."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sftscope.analyze import validation
from sftscope.analyze.planted import SHAPES, ci_width, planted_curve
from sftscope.errors import InputError

STEPS = [0, 1, 2, 4, 8, 16, 32, 64]


@pytest.mark.parametrize("shape", SHAPES)
def test_planted_sizes_are_in_ci_widths_of_the_base(shape: str) -> None:
    curve = planted_curve(shape, STEPS, 280, 2.0, np.random.default_rng(3))  # type: ignore[arg-type]
    delta = curve.truth - curve.truth[0]
    assert curve.ci_width == pytest.approx(ci_width(curve.truth[0], 280))
    assert curve.scores.shape == (len(STEPS), 280)
    if shape == "flat":
        assert np.allclose(delta, 0) and curve.size == 0
    elif shape == "monotone gain":
        assert delta.max() == pytest.approx(2.0 * curve.ci_width) and np.all(np.diff(delta) >= 0)
    else:
        assert delta.min() == pytest.approx(-2.0 * curve.ci_width)
    if shape.startswith("dip"):
        assert curve.bottom_step == STEPS[int(np.argmin(delta))] and 0 < curve.bottom_step < STEPS[-1]
        assert (delta[-1] > 0) == (shape == "dip-and-recovery")
    # the observed means follow the planted ones within noise (a few standard errors)
    assert np.all(np.abs(curve.scores.mean(axis=1) - curve.truth) < 2 * curve.ci_width)


def test_a_dip_too_deep_for_its_prompts_is_refused() -> None:
    with pytest.raises(ValueError, match="no base score leaves room"):
        planted_curve("dip-and-recovery", STEPS, 10, 3.0, np.random.default_rng(0))


def test_shipped_figures_agree_with_their_own_confusion_table() -> None:
    figures = validation.detector_validation()
    assert figures is not None, "run benchmarks/detector_validation.py --write"
    confusion = figures.confusion
    assert figures.runs >= 200 and sum(sum(c.values()) for c in confusion.values()) == figures.runs
    assert {s: sum(c.values()) for s, c in confusion.items()} == figures.runs_per_shape
    dip = "dip-and-recovery"
    called = sum(c.get(dip, 0) for c in confusion.values())
    assert figures.precision == pytest.approx(confusion[dip].get(dip, 0) / called)
    assert figures.recall == pytest.approx(confusion[dip].get(dip, 0) / figures.runs_per_shape[dip])
    negatives = ("flat", "monotone gain", "monotone loss")
    false = sum(confusion[s].get(dip, 0) for s in negatives)
    total = sum(figures.runs_per_shape[s] for s in negatives)
    assert figures.false_positive_rate == pytest.approx(false / total)


def test_a_damaged_figures_file_is_one_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "detector_validation.json"
    bad.write_text('{"runs": "many"}', encoding="utf-8")
    monkeypatch.setattr(validation, "VALIDATION_FILE", str(bad))
    with pytest.raises(InputError, match="not the benchmark's output"):
        validation.detector_validation()
    monkeypatch.setattr(validation, "VALIDATION_FILE", str(tmp_path / "absent.json"))
    assert validation.detector_validation() is None
