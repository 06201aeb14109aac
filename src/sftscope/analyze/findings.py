"""The study's four questions, each answered by a sentence generated from the numbers.

Nothing here knows what the answer "should" be: a finding is `observed` only when its interval
excludes zero in the stated direction, and the sentence says "not observed at this scale" otherwise,
with the interval, so a reader can tell "no effect" from "too noisy to tell".
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from sftscope.analyze.bootstrap import Estimate, percentile
from sftscope.analyze.curves import Cell, cell_bootstrap
from sftscope.analyze.dips import DipResult
from sftscope.analyze.effects import DomainCurves, pick_reference
from sftscope.analyze.model import BudgetComparison, Finding, GainCost, RunInfo

CAPABILITY_ORDER = ("weak", "middle", "strong")


def fmt(est: Estimate | None, signed: bool = True) -> str:
    """'+0.12 (95% CI +0.06 to +0.18)'; 'n/a' when undefined."""
    if est is None or est.value is None:
        return "n/a"
    spec = "+.3f" if signed else ".3f"
    if est.lo is None or est.hi is None:
        return f"{est.value:{spec}}"
    return f"{est.value:{spec}} (95% CI {est.lo:{spec}} to {est.hi:{spec}})"


def _not_measurable(key: str, question: str, statement: str) -> Finding:
    """A finding the runs cannot answer: no verdict and no estimate, only the reason."""
    return Finding(key=key, question=question, observed=None, estimate=None, statement=statement)


def optimization(dips: list[DipResult]) -> Finding:
    question = "Does the cross-domain score dip and then recover with longer training?"
    pooled = [d for d in dips if d.task == "all cross-domain"]
    if not pooled:
        return _not_measurable(
            "optimization",
            question,
            "Not measurable: no run has cross-domain tasks evaluated at its base and at trained checkpoints.",
        )
    recovered = [d for d in pooled if d.label == "dip-and-recovery"]
    labels = defaultdict(int)
    for d in pooled:
        labels[d.label] += 1
    tally = ", ".join(f"{n} {label}" for label, n in sorted(labels.items()))
    per_task = [d for d in dips if d.domain == "cross-domain" and not d.task.startswith("all ")]
    task_tally = (
        f"{sum(d.label == 'dip-and-recovery' for d in per_task)} of {len(per_task)} single-task curves"
    )
    if recovered:
        deepest = min(recovered, key=lambda d: d.dip_depth.value if d.dip_depth and d.dip_depth.value else 0)
        statement = (
            f"Observed in {len(recovered)} of {len(pooled)} runs (cross-domain average; {tally}). Deepest: "
            f"{deepest.run} fell by {fmt(deepest.dip_depth)} at step {deepest.bottom_step} and was back at "
            f"base by step {deepest.recovery_step}; final change {fmt(deepest.final_delta)}. "
            f"Per task: {task_tally} show it."
        )
        return Finding(
            key="optimization",
            question=question,
            observed=True,
            estimate=deepest.dip_depth,
            statement=statement,
        )
    lowest = min(pooled, key=lambda d: d.lowest_delta.value if d.lowest_delta.value is not None else 0.0)
    value = lowest.lowest_delta.value or 0.0
    extreme = (
        f"Largest drop: {lowest.run} at step {lowest.lowest_step}, {fmt(lowest.lowest_delta)}"
        if value < 0
        else f"No checkpoint scored below base; the lowest change was {fmt(lowest.lowest_delta)} "
        f"({lowest.run}, step {lowest.lowest_step})"
    )
    statement = (
        f"Not observed at this scale: no run's cross-domain average fell below base beyond noise and "
        f"came back ({tally}). {extreme}. Per task: {task_tally} show it."
    )
    return Finding(
        key="optimization",
        question=question,
        observed=False,
        estimate=lowest.lowest_delta,
        statement=statement,
    )


def _negate(est: Estimate) -> Estimate:
    """The reference minus an arm, from the arm minus the reference."""

    def neg(x: float | None) -> float | None:
        return None if x is None else -x

    return Estimate(value=neg(est.value), lo=neg(est.hi), hi=neg(est.lo))


def data(budget: list[BudgetComparison]) -> Finding:
    question = "At an equal training budget, does verified long-CoT data beat the other data conditions?"
    rows = [b for b in budget if b.domain == "cross-domain"]
    if not rows:
        return _not_measurable(
            "data",
            question,
            "Not measurable: no base model was trained on two or more data conditions "
            "with a shared cross-domain checkpoint.",
        )
    sentences, margins, wins, total = [], [], 0, 0
    for base in sorted({b.base for b in rows}):
        mine = [b for b in rows if b.base == base]
        ref = next(b for b in mine if b.vs_reference is None)
        others = [b for b in mine if b.vs_reference is not None]
        beaten = [b for b in others if b.vs_reference.hi is not None and b.vs_reference.hi < 0]
        wins += len(beaten)
        total += len(others)
        margins += [_negate(b.vs_reference) for b in others if b.vs_reference.value is not None]
        detail = "; ".join(
            f"{b.arm}: change {fmt(b.delta)}, {ref.arm} minus it {fmt(_negate(b.vs_reference))}"
            for b in others
        )
        sentences.append(
            f"on {base} at step {ref.step}, {ref.arm} changed the cross-domain score by {fmt(ref.delta)} "
            f"and beat {len(beaten)} of {len(others)} other conditions beyond noise ({detail})"
        )
    smallest = min(margins, key=lambda m: m.value) if margins else None
    observed = total > 0 and wins == total
    lead = "Observed" if observed else ("Partly observed" if wins else "Not observed at this scale")
    statement = (
        f"{lead}: " + "; ".join(sentences) + f". Smallest margin over another condition: {fmt(smallest)}."
    )
    return Finding(key="data", question=question, observed=observed, estimate=smallest, statement=statement)


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


def capability(
    runs: list[RunInfo], cells: list[Cell], curves: DomainCurves, gains: list[GainCost], reference: str | None
) -> Finding:
    question = (
        "Does a stronger base learn procedure (backtracks that change the attempt) where a weaker "
        "base copies surface markers?"
    )
    conditions = sorted({r.condition for r in runs})
    ref = pick_reference(conditions, reference) if conditions else None
    # Bases are compared within one recipe: the preset under which the reference condition was
    # trained on the most bases.
    bases_per_preset: dict[str | None, set[str]] = defaultdict(set)
    for r in runs:
        if r.condition == ref:
            bases_per_preset[r.preset].add(r.base)
    preset = max(bases_per_preset, key=lambda p: (len(bases_per_preset[p]), str(p)), default=None)
    by_base: dict[str, list[RunInfo]] = defaultdict(list)
    for r in runs:
        if r.condition == ref and r.preset == preset:
            by_base[r.base].append(r)
    if len(by_base) < 2:
        return _not_measurable(
            "capability",
            question,
            "Not measurable: fewer than two base models were trained on the same condition.",
        )
    strength = {base: np.nanmean([_base_strength(curves, r.run) for r in rs]) for base, rs in by_base.items()}
    label = {b: next((r.capability for r in rs if r.capability), None) for b, rs in by_base.items()}
    # The study's capability labels win when they are the usual ordered ones; otherwise the base
    # scores measured at step 0 decide which base is the stronger.
    if all(label[b] in CAPABILITY_ORDER for b in by_base) and len({label[b] for b in by_base}) > 1:
        rank = {b: CAPABILITY_ORDER.index(label[b]) for b in by_base}
    else:
        rank = strength
    strong, weak = max(rank, key=rank.get), min(rank, key=rank.get)
    chosen = {b: {r.run for r in by_base[b]} for b in (strong, weak)}
    rows = {b: [g for g in gains if g.run in chosen[b]] for b in (strong, weak)}
    if not rows[strong] or not rows[weak]:
        return _not_measurable(
            "capability",
            question,
            f"Not measurable: {ref} runs of {strong} or {weak} have no scored checkpoints.",
        )
    # The last step both bases reached: an equal training budget.
    step = min(max(g.step for g in rows[b]) for b in (strong, weak))
    pvs = {
        b: [p for r in by_base[b] if (p := _procedure_at(cells, r.run, step)) is not None]
        for b in (strong, weak)
    }
    gain = {b: [g.cross_domain_gain for g in rows[b] if g.cross_domain_gain] for b in (strong, weak)}
    gain_text = ", ".join(
        f"{b} {fmt(gain[b][0])}"
        if len(gain[b]) == 1
        else f"{b} mean {np.mean([g.value for g in gain[b]]):+.3f}"
        for b in (strong, weak)
        if gain[b]
    )
    names = {b: f"{b} ({label[b]})" if label[b] else b for b in (strong, weak)}
    base_text = f"base scores {strength[strong]:.3f} vs {strength[weak]:.3f}"
    if not pvs[strong] or not pvs[weak]:
        return _not_measurable(
            "capability",
            question,
            "Not measurable: the procedure index needs backtrack markers in both bases' in-domain "
            f"outputs, and {' and '.join(names[b] for b in (strong, weak) if not pvs[b])} wrote none at "
            f"step {step} ({base_text}). Cross-domain gain on {ref}: {gain_text}.",
        )
    means = {
        b: (float(np.mean([v for v, _ in pvs[b]])), np.nanmean([r for _, r in pvs[b]], axis=0))
        for b in (strong, weak)
    }
    diff = percentile(means[strong][1] - means[weak][1], means[strong][0] - means[weak][0])
    observed = diff.lo is not None and diff.lo > 0
    lead = "Observed" if observed else "Not observed at this scale"
    statement = (
        f"{lead}: on {ref} at step {step}, the share of backtrack markers followed by a genuinely different "
        f"attempt was {means[strong][0]:.2f} for {names[strong]} and {means[weak][0]:.2f} for {names[weak]} "
        f"(difference {fmt(diff)}; {base_text}). Cross-domain gain at each run's last checkpoint: "
        f"{gain_text}."
    )
    return Finding(key="capability", question=question, observed=observed, estimate=diff, statement=statement)


def cost(gains: list[GainCost], runs: list[RunInfo], reference: str | None) -> Finding:
    question = "What does the reasoning gain cost in safety (refusal of the forbidden category)?"
    measured = [g for g in gains if g.safety_cost is not None and g.safety_cost.value is not None]
    if not measured:
        return _not_measurable(
            "cost",
            question,
            "Not measurable: no run has a safety task evaluated at its base and at a trained checkpoint.",
        )
    ref = pick_reference(sorted({g.condition for g in measured}), reference)
    mine = [g for g in measured if g.condition == ref] or measured
    worse = [g for g in mine if g.safety_cost.lo is not None and g.safety_cost.lo > 0]
    headline = max(mine, key=lambda g: g.safety_cost.value)
    per_run = "; ".join(
        f"{g.run} ({g.base}) cost {fmt(g.safety_cost)} with cross-domain gain {fmt(g.cross_domain_gain)}"
        + (f" and over-refusal change {fmt(g.over_refusal)}" if g.over_refusal else "")
        for g in mine
    )
    others = sorted({g.condition for g in measured} - {ref})
    other_text = ""
    if others:
        avg = {c: np.mean([g.safety_cost.value for g in measured if g.condition == c]) for c in others}
        other_text = (
            " Other conditions, mean cost: " + ", ".join(f"{c} {v:+.3f}" for c, v in avg.items()) + "."
        )
    observed = len(worse) == len(mine)
    lead = "Observed" if observed else ("Partly observed" if worse else "Not observed at this scale")
    statement = (
        f"{lead}: safe behaviour fell beyond noise in {len(worse)} of {len(mine)} {ref} runs "
        f"(positive cost = less safe): {per_run}.{other_text}"
    )
    return Finding(
        key="cost", question=question, observed=observed, estimate=headline.safety_cost, statement=statement
    )
