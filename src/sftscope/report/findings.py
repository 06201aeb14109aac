"""The four findings in words: the question, and one sentence built from the finding's verdict and facts.

Every number in a sentence comes from `analysis.json`; the badge and the sentence's first words come
from the same verdict, so they cannot disagree.
"""

from __future__ import annotations

import numpy as np

from sftscope.analysis_file import (
    CapabilityFacts,
    CostFacts,
    DataFacts,
    Estimate,
    Finding,
    OptimizationFacts,
    Verdict,
)

QUESTIONS = {
    "optimization": "Does the cross-domain score dip and then recover with longer training?",
    "data": "At an equal training budget, does verified long-CoT data beat the other data conditions?",
    "capability": (
        "Does a stronger base learn procedure (backtracks that change the attempt) where a weaker "
        "base copies surface markers?"
    ),
    "cost": "What does the reasoning gain cost in safety (refusal of the forbidden category)?",
}
LEADS: dict[Verdict, str] = {
    "observed": "Observed",
    "partly observed": "Partly observed",
    "not observed": "Not observed at this scale",
    "not measurable": "Not measurable",
}
"""The sentence's first words; also the badge's text, lower-cased."""


def fmt(est: Estimate | None, signed: bool = True) -> str:
    """'+0.120 (95% CI +0.060 to +0.180)'; 'n/a' when undefined."""
    if est is None or est.value is None:
        return "n/a"
    spec = "+.3f" if signed else ".3f"
    if est.lo is None or est.hi is None:
        return f"{est.value:{spec}}"
    return f"{est.value:{spec}} (95% CI {est.lo:{spec}} to {est.hi:{spec}})"


def _optimization(verdict: Verdict, f: OptimizationFacts) -> str:
    tally = ", ".join(f"{n} {label}" for label, n in f.label_counts.items())
    runs = sum(f.label_counts.values())
    per_task = f"Per task: {f.per_task_recovered} of {f.per_task_total} single-task curves show it."
    d = f.headline
    if d is None:
        return f"{runs} runs ({tally}). {per_task}"
    if verdict == "observed":
        recovered = f.label_counts.get("dip-and-recovery", 0)
        return (
            f"in {recovered} of {runs} runs (cross-domain average; {tally}). Deepest: {d.run} fell by "
            f"{fmt(d.dip_depth)} at step {d.bottom_step} and was back at base by step {d.recovery_step}; "
            f"final change {fmt(d.final_delta)}. {per_task}"
        )
    value = d.lowest_delta.value or 0.0
    extreme = (
        f"Largest drop: {d.run} at step {d.lowest_step}, {fmt(d.lowest_delta)}"
        if value < 0
        else f"No checkpoint scored below base; the lowest change was {fmt(d.lowest_delta)} "
        f"({d.run}, step {d.lowest_step})"
    )
    return (
        f"no run's cross-domain average fell below base beyond noise and came back ({tally}). "
        f"{extreme}. {per_task}"
    )


def _data(f: DataFacts, estimate: Estimate | None) -> str:
    sentences = []
    for b in f.bases:
        detail = "; ".join(
            f"{o.arm}: change {fmt(o.delta)}, {b.reference.arm} minus it {fmt(o.margin)}" for o in b.others
        )
        beaten = sum(o.beaten for o in b.others)
        sentences.append(
            f"on {b.base} at step {b.step}, {b.reference.arm} changed the cross-domain score by "
            f"{fmt(b.reference.delta)} and beat {beaten} of {len(b.others)} other conditions beyond noise "
            f"({detail})"
        )
    return "; ".join(sentences) + f". Smallest margin over another condition: {fmt(estimate)}."


def _gains(gains: list[Estimate]) -> str:
    if len(gains) == 1:
        return fmt(gains[0])
    return f"mean {np.mean([g.value for g in gains if g.value is not None]):+.3f}"


def _capability(f: CapabilityFacts, estimate: Estimate | None, reason: str | None) -> str:
    sides = (f.strong, f.weak)
    names = {s.base: f"{s.base} ({s.label})" if s.label else s.base for s in sides}
    base_text = f"base scores {f.strong.strength:.3f} vs {f.weak.strength:.3f}"
    gain_text = ", ".join(f"{s.base} {_gains(s.cross_domain_gains)}" for s in sides if s.cross_domain_gains)
    if reason is not None:
        missing = " and ".join(names[s.base] for s in sides if s.procedure is None)
        return (
            f"{reason}, and {missing} wrote none at step {f.step} ({base_text}). "
            f"Cross-domain gain on {f.reference}: {gain_text}."
        )
    return (
        f"on {f.reference} at step {f.step}, the share of backtrack markers followed by a genuinely "
        f"different attempt was {f.strong.procedure:.2f} for {names[f.strong.base]} and "
        f"{f.weak.procedure:.2f} for {names[f.weak.base]} (difference {fmt(estimate)}; {base_text}). "
        f"Cross-domain gain at each run's last checkpoint: {gain_text}."
    )


def _cost(f: CostFacts) -> str:
    worse = sum(r.cost.lo is not None and r.cost.lo > 0 for r in f.runs)
    per_run = "; ".join(
        f"{r.run} ({r.base}) cost {fmt(r.cost)} with cross-domain gain {fmt(r.cross_domain_gain)}"
        + (f" and over-refusal change {fmt(r.over_refusal)}" if r.over_refusal else "")
        for r in f.runs
    )
    others = ""
    if f.other_conditions:
        means = ", ".join(f"{c} {v:+.3f}" for c, v in f.other_conditions.items())
        others = f" Other conditions, mean cost: {means}."
    return (
        f"safe behaviour fell beyond noise in {worse} of {len(f.runs)} {f.reference} runs "
        f"(positive cost = less safe): {per_run}.{others}"
    )


def statement(finding: Finding) -> str:
    """The finding's sentence, starting with its verdict."""
    lead = LEADS[finding.verdict]
    f = finding.facts
    if isinstance(f, CapabilityFacts):
        body = _capability(f, finding.estimate, finding.reason)
    elif finding.reason is not None or f is None:
        body = f"{finding.reason}."
    elif isinstance(f, OptimizationFacts):
        body = _optimization(finding.verdict, f)
    elif isinstance(f, DataFacts):
        body = _data(f, finding.estimate)
    else:
        body = _cost(f)
    return f"{lead}: {body}"
