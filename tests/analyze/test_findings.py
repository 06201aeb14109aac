"""Findings say what the numbers show, including "not observed" and "not measurable"."""

from __future__ import annotations

import numpy as np

from sftscope.analyze import findings
from sftscope.analyze.bootstrap import Estimate
from sftscope.analyze.dips import analyze_curve
from sftscope.analyze.effects import pick_reference
from sftscope.analyze.model import GainCost

STEPS = [0, 1, 2, 4, 8]


def test_optimization_not_measurable_without_cross_domain_curves() -> None:
    finding = findings.optimization([])
    assert finding.observed is None
    assert finding.statement.startswith("Not measurable")


def test_optimization_not_observed_on_a_flat_curve_quotes_the_largest_drop() -> None:
    rng = np.random.default_rng(0)
    flat = rng.binomial(4, 0.5, size=(len(STEPS), 60)) / 4
    dip = analyze_curve("r", "all cross-domain", "cross-domain", True, STEPS, flat)
    assert dip is not None and dip.label == "flat within noise"
    finding = findings.optimization([dip])
    assert finding.observed is False
    assert finding.statement.startswith("Not observed at this scale")
    assert "95% CI" in finding.statement and f"step {dip.lowest_step}" in finding.statement


def test_data_and_capability_not_measurable_with_one_condition() -> None:
    assert findings.data([]).observed is None
    assert findings.capability([], [], {}, [], None).observed is None


def test_cost_counts_only_runs_whose_interval_excludes_zero() -> None:
    def run(name: str, lo: float) -> GainCost:
        cost = Estimate(value=lo + 0.1, lo=lo, hi=lo + 0.2)
        return GainCost(
            run=name,
            condition="long-cot",
            base="b",
            step=8,
            in_domain_gain=None,
            cross_domain_gain=None,
            safety_cost=cost,
        )

    finding = findings.cost([run("a", 0.05), run("b", -0.05)], [], None)
    assert finding.observed is False
    assert finding.statement.startswith("Partly observed: safe behaviour fell beyond noise in 1 of 2")
    assert findings.cost([run("a", 0.05)], [], None).observed is True
    assert findings.cost([], [], None).observed is None


def test_reference_arm_prefers_the_preset_most_arms_share() -> None:
    arms = ["long-cot · long", "long-cot · micro", "short-cot · micro", "answer-only · micro"]
    assert pick_reference(arms, None) == "long-cot · micro"
    assert pick_reference(arms, "short-cot") == "short-cot · micro"
    assert pick_reference(["a", "b"], None) == "a"
