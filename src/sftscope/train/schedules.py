"""Learning-rate schedules (as multipliers of the peak lr) and checkpoint step sets."""

from __future__ import annotations

import math
from collections.abc import Callable

from sftscope.train.config import CheckpointSchedule


def warmup_steps(total: int, warmup_ratio: float) -> int:
    """Warmup length in steps, truncated as verl/HF do (int(ratio * total))."""
    return int(warmup_ratio * total)


def lr_multiplier(kind: str, total: int, warmup: int) -> Callable[[int], float]:
    """f(s) = lr multiplier for 0-based step s, the HF/verl formulas the reference used:
    linear warmup s / warmup (so step 0 has lr 0 when warming up), then cosine to 0, constant, or
    linear to 0 at `total`."""

    def multiplier(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)
        if kind == "constant":
            return 1.0
        progress = (step - warmup) / max(1, total - warmup)
        if kind == "cosine":
            return max(0.0, 0.5 * (1.0 + math.cos(math.pi * progress)))
        if kind == "linear":
            return max(0.0, 1.0 - progress)
        raise ValueError(f"unknown lr schedule '{kind}'")

    return multiplier


def checkpoint_steps(schedule: CheckpointSchedule, total: int) -> list[int]:
    """The sorted 1-based optimizer steps that save a checkpoint: the union of the rules, plus `total`."""
    steps = {total}
    if schedule.every:
        steps.update(range(schedule.every, total + 1, schedule.every))
    if schedule.log_spaced:
        power = 1
        while power <= total:
            steps.add(power)
            power *= 2
    steps.update(step for step in schedule.steps if step <= total)
    return sorted(steps)


def resume_steps(schedule: CheckpointSchedule, resume_every: int | None, total: int) -> set[int]:
    """The steps that save the state a preempted run resumes from: every checkpoint step, and every
    `resume_every` steps between them."""
    steps = set(checkpoint_steps(schedule, total))
    if resume_every:
        steps.update(range(resume_every, total + 1, resume_every))
    return steps
