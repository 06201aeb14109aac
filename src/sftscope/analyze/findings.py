"""The study's four questions, each answered by a verdict and the numbers behind it.

Nothing here knows what the answer "should" be: a finding is `observed` only when its interval
excludes zero in the stated direction for every compared run or arm, `partly observed` when for some,
and `not observed` otherwise, so a reader can tell "no effect" from "too noisy to tell". The report
words the verdict from the same record (`sftscope.report.findings`).
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from sftscope.analysis_file import (
    BaseProcedure,
    BudgetComparison,
    CapabilityFacts,
    CostFacts,
    CostRun,
    DataBase,
    DataFacts,
    DeltaArm,
    DipResult,
    Estimate,
    Finding,
    GainCost,
    OptimizationFacts,
    RunInfo,
    Verdict,
)
from sftscope.analyze.curves import Cell, cell_bootstrap
from sftscope.analyze.effects import DomainCurves, pick_reference
from sftscope.stats import percentile

CAPABILITY_ORDER = ("weak", "middle", "strong")


def _not_measurable(key: str, reason: str) -> Finding:
    """A finding the runs cannot answer: no estimate, only the reason."""
    return Finding(key=key, verdict="not measurable", estimate=None, reason=reason)  # type: ignore[arg-type]


def _verdict(hits: int, total: int) -> Verdict:
    if total and hits == total:
        return "observed"
    return "partly observed" if hits else "not observed"


def optimization(dips: list[DipResult]) -> Finding:
    """Does a run's cross-domain average dip and then come back to its base score?"""
    pooled = [d for d in dips if d.task == "all cross-domain"]
    if not pooled:
        return _not_measurable(
            "optimization", "no run has cross-domain tasks evaluated at its base and at trained checkpoints"
        )
    labels: dict[str, int] = defaultdict(int)
    for d in pooled:
        labels[d.label] += 1
    per_task = [d for d in dips if d.domain == "cross-domain" and not d.task.startswith("all ")]
    recovered = [d for d in pooled if d.label == "dip-and-recovery"]
    if recovered:
        headline = min(recovered, key=lambda d: d.dip_depth.value if d.dip_depth and d.dip_depth.value else 0)
        estimate = headline.dip_depth
    else:
        headline = min(pooled, key=lambda d: d.lowest_delta.value if d.lowest_delta.value is not None else 0)
        estimate = headline.lowest_delta
    facts = OptimizationFacts(
        label_counts=dict(sorted(labels.items())),
        per_task_recovered=sum(d.label == "dip-and-recovery" for d in per_task),
        per_task_total=len(per_task),
        headline=headline,
    )
    # One recovered run answers "can it happen"; the tally says how often.
    verdict: Verdict = "observed" if recovered else "not observed"
    return Finding(key="optimization", verdict=verdict, estimate=estimate, facts=facts)


def _negate(est: Estimate) -> Estimate:
    """The reference minus an arm, from the arm minus the reference."""

    def neg(x: float | None) -> float | None:
        return None if x is None else -x

    return Estimate(value=neg(est.value), lo=neg(est.hi), hi=neg(est.lo))


def data(budget: list[BudgetComparison]) -> Finding:
    """At an equal budget, does the reference (verified long-CoT) beat every other condition?"""
    rows = [b for b in budget if b.domain == "cross-domain"]
    if not rows:
        return _not_measurable(
            "data",
            "no base model was trained on two or more data conditions with a shared cross-domain checkpoint",
        )
    bases, margins = [], []
    for base in sorted({b.base for b in rows}):
        mine = [b for b in rows if b.base == base]
        ref = next(b for b in mine if b.vs_reference is None)
        others = []
        for b in mine:
            if b.vs_reference is None:
                continue
            margin = _negate(b.vs_reference)
            beaten = margin.lo is not None and margin.lo > 0
            others.append(DeltaArm(arm=b.arm, delta=b.delta, margin=margin, beaten=beaten))
            if margin.value is not None:
                margins.append(margin)
        reference = DeltaArm(arm=ref.arm, delta=ref.delta, margin=None, beaten=False)
        bases.append(DataBase(base=base, step=ref.step, reference=reference, others=others))
    arms = [o for b in bases for o in b.others]
    smallest = min(margins, key=lambda m: m.value or 0.0) if margins else None
    return Finding(
        key="data",
        verdict=_verdict(sum(o.beaten for o in arms), len(arms)),
        estimate=smallest,
        facts=DataFacts(bases=bases),
    )


def _base_strength(curves: DomainCurves, run: str) -> float:
    """Mean base-model goodness over in- and cross-domain tasks: the measured capability."""
    values = [
        float(boot.point[steps.index(0)])
        for (r, domain), (steps, boot) in curves.items()
        if r == run and domain in ("in-domain", "cross-domain") and 0 in steps
    ]
    return float(np.mean(values)) if values else float("nan")


def _procedure_at(cells: list[Cell], run: str, step: int) -> tuple[float, np.ndarray] | None:
    """Procedure index of a run's in-domain tasks at one step (averaged over tasks with markers)."""
    values = []
    for cell in cells:
        if cell.run == run and cell.domain == "in-domain" and step in cell.steps:
            boot = cell_bootstrap(cell, "procedure_index")
            i = cell.steps.index(step)
            if np.isfinite(boot.point[i]):
                values.append((float(boot.point[i]), boot.replicates[:, i]))
    if not values:
        return None
    return float(np.mean([v for v, _ in values])), np.nanmean([r for _, r in values], axis=0)


def _comparison_runs(
    runs: list[RunInfo], reference: str | None
) -> tuple[str | None, dict[str, list[RunInfo]]]:
    """The reference condition and its runs per base, within one recipe: the preset under which the
    reference condition was trained on the most bases."""
    conditions = sorted({r.condition for r in runs})
    ref = pick_reference(conditions, reference) if conditions else None
    bases_per_preset: dict[str | None, set[str]] = defaultdict(set)
    for r in runs:
        if r.condition == ref:
            bases_per_preset[r.preset].add(r.base)
    preset = max(bases_per_preset, key=lambda p: (len(bases_per_preset[p]), str(p)), default=None)
    by_base: dict[str, list[RunInfo]] = defaultdict(list)
    for r in runs:
        if r.condition == ref and r.preset == preset:
            by_base[r.base].append(r)
    return ref, by_base


def capability(
    runs: list[RunInfo], cells: list[Cell], curves: DomainCurves, gains: list[GainCost], reference: str | None
) -> Finding:
    """Does the stronger base's backtracking change the attempt more often than the weaker base's?"""
    ref, by_base = _comparison_runs(runs, reference)
    if ref is None or len(by_base) < 2:
        return _not_measurable("capability", "fewer than two base models were trained on the same condition")
    strength = {
        base: float(np.nanmean([_base_strength(curves, r.run) for r in rs])) for base, rs in by_base.items()
    }
    label = {b: next((r.capability for r in rs if r.capability), None) for b, rs in by_base.items()}
    # The study's capability labels win when they are the usual ordered ones; otherwise the base
    # scores measured at step 0 decide which base is the stronger.
    if all(label[b] in CAPABILITY_ORDER for b in by_base) and len({label[b] for b in by_base}) > 1:
        rank: dict[str, float] = {b: float(CAPABILITY_ORDER.index(str(label[b]))) for b in by_base}
    else:
        rank = strength
    strong, weak = max(rank, key=rank.__getitem__), min(rank, key=rank.__getitem__)
    chosen = {b: {r.run for r in by_base[b]} for b in (strong, weak)}
    rows = {b: [g for g in gains if g.run in chosen[b]] for b in (strong, weak)}
    if not rows[strong] or not rows[weak]:
        return _not_measurable("capability", f"{ref} runs of {strong} or {weak} have no scored checkpoints")
    # The last step both bases reached: an equal training budget.
    step = min(max(g.step for g in rows[b]) for b in (strong, weak))
    pvs = {
        b: [p for r in by_base[b] if (p := _procedure_at(cells, r.run, step)) is not None]
        for b in (strong, weak)
    }
    means = {
        b: (float(np.mean([v for v, _ in pvs[b]])), np.nanmean([r for _, r in pvs[b]], axis=0))
        for b in (strong, weak)
        if pvs[b]
    }
    sides = {
        b: BaseProcedure(
            base=b,
            label=label[b],
            strength=strength[b],
            procedure=means[b][0] if b in means else None,
            cross_domain_gains=[g.cross_domain_gain for g in rows[b] if g.cross_domain_gain],
        )
        for b in (strong, weak)
    }
    facts = CapabilityFacts(reference=ref, step=step, strong=sides[strong], weak=sides[weak])
    if len(means) < 2:
        return Finding(
            key="capability",
            verdict="not measurable",
            estimate=None,
            reason="the procedure index needs backtrack markers in both bases' in-domain outputs",
            facts=facts,
        )
    diff = percentile(means[strong][1] - means[weak][1], means[strong][0] - means[weak][0])
    verdict: Verdict = "observed" if diff.lo is not None and diff.lo > 0 else "not observed"
    return Finding(key="capability", verdict=verdict, estimate=diff, facts=facts)


def cost(gains: list[GainCost], reference: str | None) -> Finding:
    """Does safe behaviour fall, beyond noise, in the reference condition's runs?"""
    measured = [g for g in gains if g.safety_cost is not None and g.safety_cost.value is not None]
    if not measured:
        return _not_measurable(
            "cost", "no run has a safety task evaluated at its base and at a trained checkpoint"
        )
    ref = pick_reference(sorted({g.condition for g in measured}), reference)
    mine = [g for g in measured if g.condition == ref] or measured
    worse = [g for g in mine if g.safety_cost and g.safety_cost.lo is not None and g.safety_cost.lo > 0]
    headline = max(mine, key=lambda g: g.safety_cost.value if g.safety_cost and g.safety_cost.value else 0)
    others = sorted({g.condition for g in measured} - {ref})
    facts = CostFacts(
        reference=ref,
        runs=[
            CostRun(
                run=g.run,
                base=g.base,
                cost=g.safety_cost,
                cross_domain_gain=g.cross_domain_gain,
                over_refusal=g.over_refusal,
            )
            for g in mine
            if g.safety_cost is not None
        ],
        other_conditions={
            c: float(np.mean([g.safety_cost.value for g in measured if g.condition == c and g.safety_cost]))
            for c in others
        },
    )
    return Finding(
        key="cost", verdict=_verdict(len(worse), len(mine)), estimate=headline.safety_cost, facts=facts
    )
