"""The shared prompt bootstrap: single intervals, paired curves, and the tests of change the
adaptive sweep asks."""

from __future__ import annotations

import numpy as np
import pytest

from sftscope.analyze.planted import SHAPES, planted_curve
from sftscope.stats import Bootstrap, bootstrap_curve, dip_shape, interval, significant_changes


def test_interval_sanity() -> None:
    constant = interval(np.full(30, 0.4))
    assert (constant.value, constant.lo, constant.hi) == pytest.approx((0.4, 0.4, 0.4))
    values = np.random.default_rng(1).integers(0, 2, size=200).astype(float)
    est = interval(values, seed=3)
    assert est.lo < est.value < est.hi and interval(values, seed=3) == est  # seeded: reproducible
    half = (est.hi - est.lo) / 2
    assert half == pytest.approx(1.96 * values.std() / np.sqrt(len(values)), rel=0.25)  # ~ normal theory
    small = interval(values[:20], seed=3)
    assert small.hi - small.lo > est.hi - est.lo  # fewer prompts, wider interval
    total = interval(np.array([2.0, 0.0, 1.0]), total=True)
    assert total.value == 3.0 and total.lo is not None and total.lo < 3.0 < total.hi
    assert interval(np.array([0.7])).model_dump() == {"value": 0.7, "lo": 0.7, "hi": 0.7}


def test_interval_is_the_one_step_curve_bootstrap() -> None:
    # One bootstrap for evaluation aggregates and analysis curves: the same seed gives the same interval.
    values = np.random.default_rng(2).random(50)
    boot = bootstrap_curve(values[None, :], seed=7)
    est = interval(values, seed=7)
    assert est.value == pytest.approx(boot.point[0])
    assert (est.lo, est.hi) == pytest.approx(tuple(np.quantile(boot.replicates[:, 0], [0.025, 0.975])))


def test_curve_bootstrap_is_paired_over_prompts() -> None:
    # Prompt difficulty varies a lot, the change between steps is small and the same on every prompt:
    # pairing makes the change certain although each step's own interval is wide.
    rng = np.random.default_rng(0)
    difficulty = rng.random(60)
    boot = bootstrap_curve(np.stack([difficulty, difficulty + 0.05]))
    change = boot.replicates[:, 1] - boot.replicates[:, 0]
    assert np.allclose(change, 0.05)
    assert np.ptp(boot.replicates[:, 0]) > 0.1


def _curve(means: list[float], n: int = 200, seed: int = 0) -> Bootstrap:
    rng = np.random.default_rng(seed)
    return bootstrap_curve(np.stack([rng.random(n) < m for m in means]).astype(float))


def test_significant_changes_flags_only_the_jump() -> None:
    changed = significant_changes(_curve([0.5, 0.5, 0.5, 0.9, 0.9]))
    assert changed.tolist() == [False, False, True, False]


def test_dip_shape_finds_bottom_and_recovery() -> None:
    shape = dip_shape(_curve([0.6, 0.55, 0.2, 0.3, 0.65, 0.8]))
    assert (shape.bottom, shape.recovery, shape.label) == (1, 3, "dip-and-recovery")
    assert dip_shape(_curve([0.6, 0.6, 0.6, 0.6])).label == "flat within noise"


def test_a_loss_that_stays_down_is_rarely_called_a_rebound() -> None:
    # The bottom is the lowest of many equal noisy checkpoints, so a single interval of
    # (last - bottom) finds a "rebound" in about one such curve in five (16 of these 80); the band
    # joint over every (candidate bottom, later checkpoint) pair keeps it near the nominal 5%.
    steps = list(range(0, 65, 2))
    labels = [
        dip_shape(
            bootstrap_curve(
                planted_curve("monotone loss", steps, 100, 2.0, np.random.default_rng(s)).scores, seed=0
            )
        ).label
        for s in range(80)
    ]
    assert labels.count("dip-no-recovery") <= 6
    assert labels.count("monotone loss") >= 60


def test_the_margins_are_the_tests_deciding_bounds_in_standard_errors() -> None:
    steps = list(range(0, 101, 5))
    for s in range(8):
        for planted in SHAPES:
            scores = planted_curve(planted, steps, 100, 1.5, np.random.default_rng(s)).scores  # type: ignore[arg-type]
            shape = dip_shape(bootstrap_curve(scores, seed=0))
            assert (shape.below_margin < 0) == (shape.bottom is not None)
            assert (shape.above_margin > 0) == bool((shape.lo > 0).any())
            assert (shape.rebound_margin is not None and shape.rebound_margin > 0) == shape.rebound
            se = shape.delta_replicates.std(axis=0)
            assert shape.below_margin == pytest.approx(np.min(shape.hi / se))
