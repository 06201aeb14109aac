"""Findings say what the numbers show, including "not observed" and "not measurable"."""

from __future__ import annotations

import numpy as np

from sftscope.analysis_file import BudgetComparison, DataFacts, Estimate, GainCost, OptimizationFacts
from sftscope.analyze import findings
from sftscope.analyze.dips import analyze_curve
from sftscope.analyze.effects import pick_reference

STEPS = [0, 1, 2, 4, 8]


def test_optimization_not_measurable_without_cross_domain_curves() -> None:
    finding = findings.optimization([])
    assert finding.verdict == "not measurable" and finding.reason and finding.estimate is None


def test_optimization_not_observed_on_a_flat_curve_keeps_the_largest_drop() -> None:
    rng = np.random.default_rng(0)
    flat = rng.binomial(4, 0.5, size=(len(STEPS), 60)) / 4
    dip = analyze_curve("r", "all cross-domain", "cross-domain", True, STEPS, flat)
    assert dip is not None and dip.label == "flat within noise"
    finding = findings.optimization([dip])
    assert finding.verdict == "not observed"
    assert isinstance(finding.facts, OptimizationFacts) and finding.facts.headline == dip
    assert finding.estimate == dip.lowest_delta


def test_data_and_capability_not_measurable_with_one_condition() -> None:
    assert findings.data([]).verdict == "not measurable"
    assert findings.capability([], [], {}, [], None).verdict == "not measurable"


def _arm(arm: str, margin_lo: float | None) -> BudgetComparison:
    vs = (
        None
        if margin_lo is None
        else Estimate(value=-(margin_lo + 0.1), lo=-(margin_lo + 0.2), hi=-margin_lo)
    )
    delta = Estimate(value=0.1, lo=0.0, hi=0.2)
    return BudgetComparison(
        base="b", domain="cross-domain", step=8, arm=arm, reference="long", delta=delta, vs_reference=vs
    )


def test_data_is_partly_observed_when_the_reference_beats_some_arms() -> None:
    partly = findings.data([_arm("long", None), _arm("short", 0.05), _arm("answer", -0.05)])
    assert partly.verdict == "partly observed"
    assert isinstance(partly.facts, DataFacts) and [o.beaten for o in partly.facts.bases[0].others] == [
        True,
        False,
    ]
    assert findings.data([_arm("long", None), _arm("short", 0.05)]).verdict == "observed"
    assert findings.data([_arm("long", None), _arm("short", -0.05)]).verdict == "not observed"


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

    finding = findings.cost([run("a", 0.05), run("b", -0.05)], None)
    assert finding.verdict == "partly observed"
    assert findings.cost([run("a", 0.05)], None).verdict == "observed"
    assert findings.cost([run("b", -0.05)], None).verdict == "not observed"
    assert findings.cost([], None).verdict == "not measurable"


def test_reference_arm_prefers_the_preset_most_arms_share() -> None:
    arms = ["long-cot · long", "long-cot · micro", "short-cot · micro", "answer-only · micro"]
    assert pick_reference(arms, None) == "long-cot · micro"
    assert pick_reference(arms, "short-cot") == "short-cot · micro"
    assert pick_reference(["a", "b"], None) == "a"
