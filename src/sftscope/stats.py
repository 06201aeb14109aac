"""The paired prompt bootstrap and the curve statistics built on it, shared by evaluate/ and analyze/.

The method, as the report quotes it, is `METHOD`. A single aggregate (evaluate's per-checkpoint CI)
is the one-step case of the curve bootstrap. `dip_shape` is the dip-and-recovery decision rule
(`sftscope.analyze.dips.DECISION_RULE` states it), here so that the adaptive sweep refines exactly
where the analysis will look. `Estimate` and `Label` are the analysis file's types.
"""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from sftscope.analysis_file import Estimate, Label

DEFAULT_BOOT = 1000
LEVEL = 0.95
METHOD = """\
Every checkpoint of a run is evaluated on the same prompts, so a curve is a (steps x prompts)
matrix of per-prompt means. Resampling *prompts* (columns) with one set of weights for all steps
keeps the pairing: the difference between two checkpoints is measured on the same questions, and
prompt difficulty cancels. A missing cell (a prompt not evaluated at a step) is NaN and simply
carries no weight at that step. Each task has its own resamples, the same for all its runs, so
differences between runs are paired too; a domain average is the average of its tasks' replicates.
Intervals are 95% percentile intervals over the resamples; a dip uses a simultaneous band over all
checkpoints of a curve (see the dip decision rule)."""


@dataclass(frozen=True)
class Bootstrap:
    """Point curve and its bootstrap replicates."""

    point: np.ndarray
    """Shape (steps,): the curve on the full sample."""
    replicates: np.ndarray
    """Shape (n_boot, steps): the curve under each resample of prompts."""


def task_seed(task: str) -> int:
    """The bootstrap seed of a task: the same for all its runs (pairing), different across tasks."""
    return zlib.crc32(task.encode("utf-8"))


@functools.lru_cache(maxsize=64)
def resample_weights(n_prompts: int, n_boot: int, seed: int) -> np.ndarray:
    """(n_boot, n_prompts) multinomial weights: how often each prompt was drawn in each resample.

    Cached and deterministic: every run of a task (columns aligned by prompt id) gets the *same*
    resamples, so differences between runs or conditions are paired on the same prompts.
    """
    draws = np.random.default_rng(seed).integers(0, n_prompts, size=(n_boot, n_prompts))
    weights = np.stack([np.bincount(row, minlength=n_prompts) for row in draws]).astype(float)
    weights.flags.writeable = False  # shared by every caller through the cache
    return weights


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
    total: bool = False,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> Bootstrap:
    """Bootstrap a (steps, prompts) matrix of per-prompt values: the mean over prompts per step.

    With `denominator`, the curve is a ratio of sums (e.g. effective markers / all markers) rather
    than a mean of per-prompt ratios, so prompts with more markers weigh more, as they should. With
    `total`, it is the sum over prompts (e.g. an error count).
    """
    values = np.asarray(values, dtype=float)
    ones = np.ones((1, values.shape[1]))
    weights = resample_weights(values.shape[1], n_boot, seed)
    if total:
        filled = np.nan_to_num(values).T
        return Bootstrap((ones @ filled)[0], weights @ filled)
    if denominator is None:
        return Bootstrap(_weighted_means(values, ones)[0], _weighted_means(values, weights))
    denominator = np.asarray(denominator, dtype=float)

    def ratio(w: np.ndarray) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            den = w @ np.nan_to_num(denominator).T
            return np.where(den > 0, (w @ np.nan_to_num(values).T) / den, np.nan)

    return Bootstrap(ratio(ones)[0], ratio(weights))


def mean_bootstrap(boots: list[Bootstrap]) -> Bootstrap:
    """The bootstrap of the mean of several curves over the same steps (e.g. a domain's tasks).

    Each curve is resampled over its own prompts (its own seed), so averaging the replicates gives
    the bootstrap of the average.
    """
    point = np.mean([b.point for b in boots], axis=0)
    return Bootstrap(point, np.mean([b.replicates for b in boots], axis=0))


def percentile(replicates: np.ndarray, point: float | None, level: float = LEVEL) -> Estimate:
    """Percentile interval of one statistic's replicates."""
    finite = replicates[np.isfinite(replicates)]
    value = float(point) if point is not None and np.isfinite(point) else None
    if value is None or finite.size == 0:
        return Estimate(value=value, lo=None, hi=None)
    alpha = (1 - level) / 2
    lo, hi = np.quantile(finite, [alpha, 1 - alpha])
    return Estimate(value=value, lo=float(lo), hi=float(hi))


def interval(
    values: np.ndarray,
    *,
    total: bool = False,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
    level: float = LEVEL,
) -> Estimate:
    """Mean (or sum) of per-prompt values with its percentile interval; one prompt has no spread."""
    values = np.asarray(values, dtype=float)
    if values.size < 2:
        value = float(np.sum(values) if total else np.mean(values))
        return Estimate(value=value, lo=value, hi=value)
    boot = bootstrap_curve(values[None, :], total=total, n_boot=n_boot, seed=seed)
    return percentile(boot.replicates[:, 0], boot.point[0], level)


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


@dataclass(frozen=True)
class DipShape:
    """The dip-and-recovery rule applied to a bootstrapped goodness curve whose first step is the base.

    Indices count the checkpoints after the base (0 = the first trained checkpoint).
    """

    delta: np.ndarray
    """Goodness minus base per checkpoint."""
    delta_replicates: np.ndarray
    """(n_boot, checkpoints) replicates of `delta`."""
    lo: np.ndarray
    """Simultaneous band of `delta`, lower bound."""
    hi: np.ndarray
    """Simultaneous band of `delta`, upper bound."""
    bottom: int | None
    """The dip's bottom: the lowest checkpoint significantly below base; None without a dip."""
    rebound: bool
    """Some checkpoint after the bottom is significantly above it."""
    recovery: int | None
    """The first checkpoint after the bottom back at or above base, given a rebound; else None."""
    label: Label
    """The curve's shape."""
    below_margin: float
    """The dip test's deciding bound in standard errors: the lowest `hi` over its standard error
    (negative: some checkpoint is below base)."""
    above_margin: float
    """The gain test's deciding bound in standard errors: the highest `lo` over its standard error
    (positive: some checkpoint is above base)."""
    rebound_margin: float | None
    """The rebound test's deciding bound in standard errors: the highest lower bound of (later -
    bottom) over its standard error (positive: a rebound); None without a checkpoint after a bottom."""


def _in_se(bound: np.ndarray, replicates: np.ndarray) -> np.ndarray:
    """Band bounds over their standard errors; a step that does not vary is certain (+-inf, or NaN
    when its bound is 0)."""
    se = np.nanstd(replicates, axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(se > 0, bound / se, np.sign(bound) * np.inf)


def _rebound_bounds(
    delta: np.ndarray, reps: np.ndarray, below: list[int], bottom: int, level: float
) -> tuple[np.ndarray, np.ndarray]:
    """Lower band bounds of g(later) - g(bottom) for every checkpoint after the bottom, and the
    same over their standard errors.

    The bottom is the lowest of the below-base checkpoints, so its noise is biased low and one
    interval of (later - bottom) would see rebounds in curves that went down and stayed there. The
    band is therefore simultaneous over every (candidate bottom, later checkpoint) pair: whichever
    candidate turned out lowest, its statement holds at `level` with all the others.
    """
    pairs = [(i, j) for i in below for j in range(i + 1, delta.size)]
    if not any(i == bottom for i, _ in pairs):
        return np.empty(0), np.empty(0)
    first, later = np.array(pairs).T
    diff, diff_reps = delta[later] - delta[first], reps[:, later] - reps[:, first]
    lo, _ = simultaneous_band(diff, diff_reps, level)
    mine = first == bottom
    return lo[mine], _in_se(lo, diff_reps)[mine]


def _extreme(values: np.ndarray, pick: Callable[[np.ndarray], float]) -> float:
    """`pick` (min or max) of the values that are not NaN; NaN if none is."""
    known = values[~np.isnan(values)]
    return float(pick(known)) if known.size else float("nan")


def dip_shape(boot: Bootstrap, level: float = LEVEL) -> DipShape:
    """The decision rule of `sftscope.analyze.dips` on a goodness curve (base first, >= 2 steps)."""
    delta = boot.point[1:] - boot.point[0]
    reps = boot.replicates[:, 1:] - boot.replicates[:, :1]
    lo, hi = simultaneous_band(delta, reps, level)
    below = [i for i in range(delta.size) if hi[i] < 0]
    above = [i for i in range(delta.size) if lo[i] > 0]
    bottom = min(below, key=lambda i: delta[i]) if below else None
    rebound, rebound_margin = False, None
    if bottom is not None:
        rebound_lo, rebound_in_se = _rebound_bounds(delta, reps, below, bottom, level)
        rebound = bool((rebound_lo > 0).any())
        rebound_margin = _extreme(rebound_in_se, np.max) if rebound_lo.size else None
    recovery = None
    if bottom is not None and rebound:
        recovery = next((i for i in range(bottom + 1, delta.size) if delta[i] >= 0), None)
    if bottom is None:
        label: Label = "monotone gain" if above else "flat within noise"
    elif not rebound:
        label = "monotone loss"
    else:
        label = "dip-and-recovery" if recovery is not None else "dip-no-recovery"
    below_margin = _extreme(_in_se(hi, reps), np.min)
    above_margin = _extreme(_in_se(lo, reps), np.max)
    return DipShape(
        delta, reps, lo, hi, bottom, rebound, recovery, label, below_margin, above_margin, rebound_margin
    )


def significant_changes(boot: Bootstrap, level: float = LEVEL) -> np.ndarray:
    """(steps - 1,) booleans: does the curve change between consecutive steps beyond noise?

    Paired differences of neighbouring steps, judged with one simultaneous band over all of them
    (the adaptive sweep asks this of every interval at once).
    """
    diff = np.diff(boot.point)
    reps = np.diff(boot.replicates, axis=1)
    lo, hi = simultaneous_band(diff, reps, level)
    return (lo > 0) | (hi < 0)
