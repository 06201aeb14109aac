"""Dip-and-recovery labels on synthetic curves with known shape."""

from __future__ import annotations

import numpy as np
import pytest

from sftscope.analyze.dips import analyze_curve

STEPS = [0, 1, 2, 4, 8, 16, 32, 64, 128, 256]


def synthetic_scores(shift: list[float], seed: int, n_prompts: int = 80, k: int = 4) -> np.ndarray:
    """Per-prompt mean of k Bernoulli samples; prompts differ in difficulty, `shift` moves all logits."""
    rng = np.random.default_rng(seed)
    difficulty = rng.normal(0.0, 1.5, n_prompts)
    rows = [rng.binomial(k, 1 / (1 + np.exp(-(difficulty + s)))) / k for s in shift]
    return np.array(rows)


DIP_RECOVER = [0, -0.3, -1.0, -1.2, -0.8, -0.2, 0.3, 0.6, 0.8, 0.8]
DIP_STAY = [0, -0.3, -1.0, -1.4, -1.4, -1.2, -0.9, -0.7, -0.6, -0.6]


def _label(shift: list[float], seed: int = 0) -> str:
    result = analyze_curve("run", "task", "cross-domain", True, STEPS, synthetic_scores(shift, seed))
    assert result is not None
    return result.label


def test_dip_that_recovers() -> None:
    result = analyze_curve("run", "task", "cross-domain", True, STEPS, synthetic_scores(DIP_RECOVER, 0))
    assert result is not None
    assert result.label == "dip-and-recovery"
    assert result.bottom_step in (4, 8)
    assert result.dip_depth is not None and result.dip_depth.hi is not None and result.dip_depth.hi < 0
    assert result.recovery_step is not None and 16 <= result.recovery_step <= 64
    assert result.final_delta.value is not None and result.final_delta.value > 0
    assert result.best_step >= result.recovery_step


def test_dip_that_never_recovers() -> None:
    result = analyze_curve("run", "task", "cross-domain", True, STEPS, synthetic_scores(DIP_STAY, 0))
    assert result is not None
    assert result.label == "dip-no-recovery"
    assert result.recovery_step is None
    assert result.final_delta.hi is not None and result.final_delta.hi < 0


@pytest.mark.parametrize("seed", range(3))
def test_shapes_are_stable_across_seeds(seed: int) -> None:
    assert _label(DIP_RECOVER, seed) == "dip-and-recovery"
    assert _label(DIP_STAY, seed) == "dip-no-recovery"
    assert _label([0, -0.4, -0.8, -1.2, -1.6, -1.8, -2.0, -2.0, -2.2, -2.2], seed) == "monotone loss"
    assert _label([0, 0.2, 0.4, 0.8, 1.2, 1.5, 1.8, 2.0, 2.0, 2.0], seed) == "monotone gain"


@pytest.mark.parametrize("seed", range(8))
def test_pure_noise_is_never_called_a_dip(seed: int) -> None:
    assert _label([0.0] * len(STEPS), seed) not in ("dip-and-recovery", "dip-no-recovery", "monotone loss")


def test_pure_noise_is_flat_within_noise_at_the_nominal_rate() -> None:
    # The band is simultaneous over the 9 checkpoints, so pure noise is called anything but flat in
    # at most ~5% of curves; per-step intervals would give ~20-40% here. This is a rate, not a
    # per-seed promise: seed 7 above is a genuine borderline case (a low base draw and a high step
    # 64 give a gain whose lower bound is +0.0002), and hiding it would mean tuning to the seed.
    labels = [_label([0.0] * len(STEPS), seed) for seed in range(60)]
    assert labels.count("flat within noise") >= 56


def test_lower_is_better_scores_are_oriented() -> None:
    # Attack success rising then falling is a dip in safety, reported as a positive raw delta.
    rise = [-x for x in DIP_RECOVER]
    result = analyze_curve("run", "asr", "safety", False, STEPS, synthetic_scores(rise, 0))
    assert result is not None
    assert result.label == "dip-and-recovery"
    assert result.dip_depth is not None and result.dip_depth.lo is not None and result.dip_depth.lo > 0


def test_curve_without_base_or_checkpoints_is_skipped() -> None:
    scores = synthetic_scores([0.0, 0.0], 0)
    assert analyze_curve("run", "task", "general", True, [10, 20], scores) is None
    assert analyze_curve("run", "task", "general", True, [0], scores[:1]) is None
