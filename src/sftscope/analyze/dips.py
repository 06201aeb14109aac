"""Dip-and-recovery: does a score fall below the base model, and does it come back?

The decision rule is `DECISION_RULE` (implemented by `sftscope.stats.dip_shape`); the report quotes
it from analysis.json.
"""

from __future__ import annotations

import numpy as np

from sftscope.analysis_file import DipResult, Estimate
from sftscope.stats import DEFAULT_BOOT, Bootstrap, bootstrap_curve, dip_shape, percentile

DECISION_RULE = """\
Decision rule (all intervals 95%, from the paired prompt bootstrap):

Work in "goodness" g = score (or -score when lower is better, e.g. attack success). Let
delta(s) = g(s) - g(0) for every checkpoint s > 0, with a *simultaneous* band [lo(s), hi(s)] that
covers all checkpoints of the curve at once (a dip is the lowest of many checkpoints; per-step
intervals would call noise a dip too often).

1. A checkpoint is *below base* when hi(s) < 0 and *above base* when lo(s) > 0.
2. **Dip**: at least one checkpoint is below base. The *bottom* is the lowest point estimate
   among the below-base checkpoints; the dip depth is delta(bottom) with its band.
3. **Rebound**: some checkpoint after the bottom is above it, by a paired band simultaneous over
   every (below-base checkpoint, later checkpoint) pair. The bottom is the lowest of several noisy
   points, so a single interval of g(later) - g(bottom) would find rebounds in curves that went down
   and stayed there; the joint band holds whichever checkpoint turned out lowest.
4. **Recovery step**: given a rebound, the first checkpoint after the bottom whose point estimate
   is back at or above base (delta >= 0).
5. Labels:
   - `dip-and-recovery`: a dip, a rebound and a recovery step;
   - `dip-no-recovery`: a dip and a rebound that stays below base;
   - `monotone loss`: a dip without a rebound (down and staying down);
   - `monotone gain`: no dip and at least one checkpoint above base;
   - `flat within noise`: no checkpoint below or above base.
Best delta is the highest point estimate (simultaneous band, since it is selected); final delta is
the last checkpoint (percentile interval, since it is fixed in advance). Reported values are in
score units: for a lower-is-better task a dip is a *rise* of the raw score.
"""


def _raw(direction: float, goodness: Estimate) -> Estimate:
    """Goodness units back to raw score units (a sign flip swaps the bounds)."""

    def flip(x: float | None) -> float | None:
        return None if x is None else direction * x

    lo, hi = flip(goodness.lo), flip(goodness.hi)
    if direction < 0:
        lo, hi = hi, lo
    return Estimate(value=flip(goodness.value), lo=lo, hi=hi)


def analyze_curve(
    run: str,
    task: str,
    domain: str,
    higher_is_better: bool,
    steps: list[int],
    scores: np.ndarray,
    *,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> DipResult | None:
    """Apply the decision rule to a (steps, prompts) matrix of per-prompt mean scores.

    Returns None when there is no base checkpoint (step 0) or no checkpoint after it.
    """
    direction = 1.0 if higher_is_better else -1.0
    boot = bootstrap_curve(direction * np.asarray(scores, dtype=float), n_boot=n_boot, seed=seed)
    return judge_curve(run, task, domain, higher_is_better, steps, boot, int(np.asarray(scores).shape[1]))


def judge_curve(
    run: str,
    task: str,
    domain: str,
    higher_is_better: bool,
    steps: list[int],
    boot: Bootstrap,
    n_prompts: int,
) -> DipResult | None:
    """The decision rule on an already bootstrapped curve, in goodness units (higher = better).

    Separate from `analyze_curve` so that averaged curves (all cross-domain tasks of a run) are
    judged by the same rule from their averaged replicates.
    """
    if len(steps) < 2 or steps[0] != 0:
        return None
    direction = 1.0 if higher_is_better else -1.0
    shape = dip_shape(boot)
    delta, later = shape.delta, steps[1:]

    def band(i: int) -> Estimate:
        return _raw(direction, Estimate(value=float(delta[i]), lo=float(shape.lo[i]), hi=float(shape.hi[i])))

    best = int(np.nanargmax(delta))
    lowest = int(np.nanargmin(delta))
    final = len(later) - 1
    final_delta = percentile(shape.delta_replicates[:, final], delta[final])
    base = percentile(boot.replicates[:, 0], boot.point[0])
    bottom, recovery = shape.bottom, shape.recovery
    return DipResult(
        run=run,
        task=task,
        domain=domain,
        higher_is_better=higher_is_better,
        steps=list(steps),
        n_prompts=n_prompts,
        base=_raw(direction, base),
        lowest_step=later[lowest],
        lowest_delta=band(lowest),
        bottom_step=later[bottom] if bottom is not None else None,
        dip_depth=band(bottom) if bottom is not None else None,
        recovery_step=later[recovery] if recovery is not None else None,
        recovery_delta=band(recovery) if recovery is not None else None,
        best_step=later[best],
        best_delta=band(best),
        final_step=later[final],
        final_delta=_raw(direction, final_delta),
        label=shape.label,
    )
