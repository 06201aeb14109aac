"""Learning-rate schedule shapes and checkpoint step sets."""

from __future__ import annotations

import math

import pytest

from sftscope.train.config import CheckpointSchedule
from sftscope.train.schedules import checkpoint_steps, lr_multiplier, resume_steps, warmup_steps


def test_warmup_is_linear_from_zero_then_the_decay_starts_at_the_peak() -> None:
    assert warmup_steps(640, 0.1) == 64
    for kind in ("cosine", "constant", "linear"):
        f = lr_multiplier(kind, total=100, warmup=10)
        assert [f(s) for s in (0, 5, 9)] == pytest.approx([0.0, 0.5, 0.9])
        assert f(10) == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("cosine", [1.0, 0.5 * (1 + math.cos(math.pi * 0.25)), 0.5, 0.0]),
        ("constant", [1.0, 1.0, 1.0, 1.0]),
        ("linear", [1.0, 0.75, 0.5, 0.0]),
    ],
)
def test_decay_values_at_known_steps(kind: str, expected: list[float]) -> None:
    f = lr_multiplier(kind, total=110, warmup=10)  # 100 decay steps after warmup
    assert [f(s) for s in (10, 35, 60, 110)] == pytest.approx(expected)


def test_no_warmup_starts_at_the_peak() -> None:
    assert lr_multiplier("cosine", total=8, warmup=0)(0) == 1.0


def test_checkpoint_schedule_is_the_union_of_its_rules_plus_the_final_step() -> None:
    schedule = CheckpointSchedule(every=10, log_spaced=True, steps=[3, 25, 999])
    assert checkpoint_steps(schedule, 45) == [1, 2, 3, 4, 8, 10, 16, 20, 25, 30, 32, 40, 45]
    assert checkpoint_steps(CheckpointSchedule(), 7) == [7]
    assert checkpoint_steps(CheckpointSchedule(every=5), 10) == [5, 10]
    assert checkpoint_steps(CheckpointSchedule(log_spaced=True), 640)[-3:] == [256, 512, 640]


def test_bad_schedule_values_are_rejected() -> None:
    with pytest.raises(ValueError, match="every"):
        CheckpointSchedule(every=0)
    with pytest.raises(ValueError, match="steps"):
        CheckpointSchedule(steps=[0])


def test_resume_steps_are_the_checkpoint_steps_plus_the_resume_grid() -> None:
    schedule = CheckpointSchedule(every=5)
    assert resume_steps(schedule, None, 12) == {5, 10, 12}
    assert resume_steps(schedule, 4, 12) == {4, 5, 8, 10, 12}
