"""Dip-and-recovery: does a score fall below the base model, and does it come back?

The decision rule is `DECISION_RULE`; the report quotes it from analysis.json.
"""

from __future__ import annotations

import numpy as np

from sftscope.analysis_file import DipResult, Estimate, Label
from sftscope.analyze.bootstrap import (
    DEFAULT_BOOT,
    LEVEL,
    Bootstrap,
    bootstrap_curve,
    percentile,
    simultaneous_band,
)

DECISION_RULE = """\
Decision rule (all intervals 95%, from the paired prompt bootstrap):

Work in "goodness" g = score (or -score when lower is better, e.g. attack success). Let
delta(s) = g(s) - g(0) for every checkpoint s > 0, with a *simultaneous* band [lo(s), hi(s)] that
covers all checkpoints of the curve at once (a dip is the lowest of many checkpoints; per-step
intervals would call noise a dip too often).

1. A checkpoint is *below base* when hi(s) < 0 and *above base* when lo(s) > 0.
2. **Dip**: at least one checkpoint is below base. The *bottom* is the lowest point estimate
   among the below-base checkpoints; the dip depth is delta(bottom) with its band.
3. **Recovery step**: the first checkpoint after the bottom whose point estimate is back at or
   above base (delta >= 0).
4. Labels:
   - `dip-and-recovery`: a dip and a recovery step;
   - `dip-no-recovery`: a dip, no recovery step, and a real rebound: the final checkpoint is
     above the bottom (paired percentile interval of g(final) - g(bottom) above 0);
   - `monotone loss`: a dip with neither recovery nor rebound (down and staying down);
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
    delta = boot.point[1:] - boot.point[0]
    delta_reps = boot.replicates[:, 1:] - boot.replicates[:, :1]
    lo, hi = simultaneous_band(delta, delta_reps, LEVEL)
    later = steps[1:]

    def band(i: int) -> Estimate:
        return _raw(direction, Estimate(value=float(delta[i]), lo=float(lo[i]), hi=float(hi[i])))

    below = [i for i in range(len(later)) if hi[i] < 0]
    above = [i for i in range(len(later)) if lo[i] > 0]
    best = int(np.nanargmax(delta))
    lowest = int(np.nanargmin(delta))
    final = len(later) - 1
    final_delta = percentile(delta_reps[:, final], delta[final])
    base = percentile(boot.replicates[:, 0], boot.point[0])

    bottom = min(below, key=lambda i: delta[i]) if below else None
    recovery = None
    if bottom is not None:
        recovery = next((i for i in range(bottom + 1, len(later)) if delta[i] >= 0), None)
    if bottom is None:
        label: Label = "monotone gain" if above else "flat within noise"
    elif recovery is not None:
        label = "dip-and-recovery"
    else:
        rebound_reps = delta_reps[:, final] - delta_reps[:, bottom]
        rebound = percentile(rebound_reps, delta[final] - delta[bottom])
        label = "dip-no-recovery" if rebound.lo is not None and rebound.lo > 0 else "monotone loss"

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
        label=label,
    )
