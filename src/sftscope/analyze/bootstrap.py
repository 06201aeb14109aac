"""Paired bootstrap over prompts for per-checkpoint curves (the method is `METHOD`)."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from sftscope.analysis_file import Estimate
from sftscope.evaluate.metrics import DEFAULT_BOOT, resample_prompts

LEVEL = 0.95
METHOD = """\
Every checkpoint of a run is evaluated on the same prompts, so a curve is a (steps x prompts)
matrix of per-prompt means. Resampling *prompts* (columns) with one set of weights for all steps
keeps the pairing: the difference between two checkpoints is measured on the same questions, and
prompt difficulty cancels. A missing cell (a prompt not evaluated at a step) is NaN and simply
carries no weight at that step.
Intervals are 95% percentile intervals over the resamples; a dip uses a simultaneous band over all
checkpoints of a curve (see the dip decision rule)."""


@dataclass(frozen=True)
class Bootstrap:
    """Point curve and its bootstrap replicates."""

    point: np.ndarray
    """Shape (steps,): the curve on the full sample."""
    replicates: np.ndarray
    """Shape (n_boot, steps): the curve under each resample of prompts."""


@functools.lru_cache(maxsize=64)
def _weights(n_prompts: int, n_boot: int, seed: int) -> np.ndarray:
    """Multinomial resampling weights, one row per replicate (how often each prompt was drawn).

    Cached and deterministic: every run of a task (columns aligned by prompt id) gets the *same*
    resamples, so differences between runs or conditions are paired on the same prompts.
    """
    draws = resample_prompts(n_prompts, n_boot, seed)
    return np.stack([np.bincount(row, minlength=n_prompts) for row in draws]).astype(float)


def _weighted_means(values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(n_boot, steps) weighted column means of a (steps, prompts) matrix that may hold NaN."""
    present = ~np.isnan(values)
    total = weights @ np.where(present, values, 0.0).T
    count = weights @ present.T.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan)


def bootstrap_curve(
    values: np.ndarray,
    denominator: np.ndarray | None = None,
    *,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> Bootstrap:
    """Bootstrap a (steps, prompts) matrix of per-prompt values.

    With `denominator`, the curve is a ratio of sums (e.g. effective markers / all markers) rather
    than a mean of per-prompt ratios, so prompts with more markers weigh more, as they should.
    """
    values = np.asarray(values, dtype=float)
    ones = np.ones((1, values.shape[1]))
    weights = _weights(values.shape[1], n_boot, seed)
    if denominator is None:
        return Bootstrap(_weighted_means(values, ones)[0], _weighted_means(values, weights))
    denominator = np.asarray(denominator, dtype=float)

    def ratio(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            den = w @ np.nan_to_num(denominator).T
            return np.where(den > 0, (w @ np.nan_to_num(values).T) / den, np.nan)

    return Bootstrap(ratio(ones)[0], ratio(weights))


def percentile(replicates: np.ndarray, point: float | None, level: float = LEVEL) -> Estimate:
    """Percentile interval of one statistic's replicates."""
    finite = replicates[np.isfinite(replicates)]
    value = float(point) if point is not None and np.isfinite(point) else None
    if value is None or finite.size == 0:
        return Estimate(value=value, lo=None, hi=None)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return Estimate(value=value, lo=float(lo), hi=float(hi))


def pointwise(boot: Bootstrap, level: float = LEVEL) -> list[Estimate]:
    """One percentile interval per step (for plotting bands)."""
    return [percentile(boot.replicates[:, i], boot.point[i], level) for i in range(boot.point.size)]


def simultaneous_band(
    point: np.ndarray, replicates: np.ndarray, level: float = LEVEL
) -> tuple[np.ndarray, np.ndarray]:
    """A band that covers the whole curve at once (studentised max-|t| bootstrap).

    A dip is the *lowest* of many checkpoints; judging it with a per-step 95% interval would call
    noise a dip far more often than 5% of the time (with 10 checkpoints, roughly one curve in five).
    The band's half-width is c * se(step), with c the `level` quantile of the largest standardised
    deviation over all steps, so the family of statements holds at `level` jointly.
    """
    se = np.nanstd(replicates, axis=0)
    usable = se > 0
    if not usable.any():
        return point.copy(), point.copy()
    deviation = np.abs(replicates[:, usable] - point[usable]) / se[usable]
    critical = float(np.nanquantile(np.nanmax(deviation, axis=1), level))
    return point - critical * se, point + critical * se
