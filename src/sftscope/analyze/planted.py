"""Single score curves with a planted shape and a known label, for validating the dip detector and the
adaptive sweep against ground truth.

A curve's true mean score is planted at every checkpoint; each prompt's success probability follows
it through a logit shift on top of the prompt's own difficulty, and the observed per-prompt score is
the mean of `k` Bernoulli samples, as a sweep stores it. Sizes are in *CI widths*: the full width of
the 95% interval of the base's score with this many prompts (2 x 1.96 x its standard error), so a
"dip of 2 CI widths" means the same thing at 40 prompts as at 280.

Shapes (the true mean minus the base, at the checkpoints, linear in log-step between the knots, the
knot drawn uniformly on the log-step axis):
- `dip-and-recovery`: down to -size at a checkpoint, then back above base by the last one;
- `dip-no-recovery`: down to -size, then a partial rebound that ends below base;
- `monotone gain` / `monotone loss`: to +size / -size by some checkpoint, and staying there;
- `flat`: the base's score throughout.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

Shape = Literal["dip-and-recovery", "dip-no-recovery", "monotone gain", "monotone loss", "flat"]
SHAPES: tuple[str, ...] = Shape.__args__  # type: ignore[attr-defined]
DIFFICULTY_SD = 1.2  # logit spread of prompt difficulty, as in `analyze.synthetic`


@dataclass(frozen=True)
class PlantedCurve:
    """One synthetic run's curve on one task."""

    shape: Shape
    """The planted shape (the ground truth)."""
    steps: list[int]
    """Checkpoint steps, base (0) first."""
    truth: np.ndarray
    """True mean score per step."""
    scores: np.ndarray
    """(steps, prompts) observed per-prompt mean scores."""
    size: float
    """Planted size in CI widths: the dip's depth, or the gain or loss (0 when flat)."""
    ci_width: float
    """One CI width in score units."""
    bottom_step: int | None
    """The planted dip's bottom; None without a dip."""


def ci_width(mean: float, n_prompts: int) -> float:
    """Width of the 95% interval of a mean score over `n_prompts` prompts.

    One prompt's score varies by at most the Bernoulli mean(1-mean) (exactly so with one sample per
    prompt, less with several), so with k > 1 this overstates the width and understates sizes.
    """
    return 2 * 1.96 * float(np.sqrt(mean * (1 - mean) / n_prompts))


def _shifts_for(difficulty: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per target, the logit shift that moves the prompts' mean success probability to it (bisection)."""
    lo, hi = np.full(targets.shape, -30.0), np.full(targets.shape, 30.0)
    for _ in range(60):
        mid = (lo + hi) / 2
        low = np.mean(1 / (1 + np.exp(-(difficulty[None, :] + mid[:, None]))), axis=1) < targets
        lo, hi = np.where(low, mid, lo), np.where(low, hi, mid)
    return (lo + hi) / 2


def _profile(shape: Shape, u: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, int | None]:
    """The planted delta at each checkpoint in units of `size`, and the bottom's index (0 = base)."""
    last = u.size - 1
    if shape == "flat":
        return np.zeros_like(u), None
    # The knot (bottom, or where a gain or loss levels off) is uniform on the log-step axis, where
    # training dynamics are spread (a dip in the first tenth of training is as likely as in the rest),
    # snapped to a checkpoint with at least one after it.
    inner = u[1:last] if last > 1 else u[1:2]
    knot = 1 + int(np.argmin(np.abs(inner - rng.uniform(inner[0], inner[-1]))))
    if shape in ("monotone gain", "monotone loss"):
        sign = 1.0 if shape == "monotone gain" else -1.0
        return sign * np.interp(u, [0.0, u[knot], u[last]], [0.0, 1.0, 1.0]), None
    end = rng.uniform(0.25, 0.75) if shape == "dip-and-recovery" else -rng.uniform(0.3, 0.6)
    return np.interp(u, [0.0, u[knot], u[last]], [0.0, -1.0, end]), knot


def planted_curve(
    shape: Shape,
    steps: list[int],
    n_prompts: int,
    size: float,
    rng: np.random.Generator,
    *,
    k: int = 1,
) -> PlantedCurve:
    """A curve of `shape` over `steps` (base first, >= 2 checkpoints after it), of `size` CI widths.

    The base's score is drawn among those that leave room for the whole planted curve inside
    [0.03, 0.97]; a size no base allows (a deep dip over few prompts) is a ValueError.
    """
    if len(steps) < 3 or steps[0] != 0:
        raise ValueError(f"need the base (step 0) and at least two checkpoints, got {steps}")
    u = np.log1p(np.array(steps, dtype=float)) / np.log1p(steps[-1])
    profile, bottom = _profile(shape, u, rng)
    bases = np.linspace(0.15, 0.85, 71)
    widths = np.array([ci_width(b, n_prompts) for b in bases])
    fits = (bases + size * widths * profile.min() >= 0.03) & (bases + size * widths * profile.max() <= 0.97)
    if not fits.any():
        raise ValueError(f"no base score leaves room for {size:.2f} CI widths over {n_prompts} prompts")
    choice = int(rng.choice(np.flatnonzero(fits)))
    width = float(widths[choice])
    truth = bases[choice] + size * width * profile
    difficulty = rng.normal(0.0, DIFFICULTY_SD, n_prompts)
    p = 1 / (1 + np.exp(-(difficulty[None, :] + _shifts_for(difficulty, truth)[:, None])))
    scores = rng.binomial(k, p) / k
    return PlantedCurve(
        shape=shape,
        steps=list(steps),
        truth=truth,
        scores=scores.astype(float),
        size=size if shape != "flat" else 0.0,
        ci_width=width,
        bottom_step=steps[bottom] if bottom is not None else None,
    )
