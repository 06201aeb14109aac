"""Effects of data condition and base model: equal-budget tables and reasoning gain vs safety cost.

Everything is in *goodness* per domain (the mean over the domain's tasks, lower-is-better scores
flipped). Because every run of a task shares one resample of its prompts, replicates can be
averaged over runs and subtracted between conditions: the intervals are paired over prompts.
Seeds are averaged as fixed runs; with several seeds per cell the interval does not include
seed-to-seed variation, which the report states.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from sftscope.analysis_file import OVER_REFUSAL, BudgetComparison, EffectRow, Estimate, GainCost, RunInfo
from sftscope.analyze.curves import Cell, domain_bootstrap
from sftscope.stats import Bootstrap, percentile

DomainCurves = dict[tuple[str, str], tuple[list[int], Bootstrap]]


def domain_curves(cells: list[Cell]) -> DomainCurves:
    """(run, domain) -> steps and bootstrapped mean goodness over the domain's tasks."""
    grouped: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        grouped[(cell.run, cell.domain)].append(cell)
    out = {}
    for key, group in grouped.items():
        result = domain_bootstrap(group)
        if result is not None:
            out[key] = result
    return out


def _at(curve: tuple[list[int], Bootstrap], step: int) -> tuple[float, np.ndarray]:
    steps, boot = curve
    i = steps.index(step)
    return float(boot.point[i]), boot.replicates[:, i]


def _mean_at(curves: list[tuple[list[int], Bootstrap]], step: int) -> tuple[float, np.ndarray]:
    values = [_at(c, step) for c in curves]
    return float(np.mean([v for v, _ in values])), np.mean([r for _, r in values], axis=0)


def _diff(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> Estimate:
    return percentile(a[1] - b[1], a[0] - b[0])


def _groups(curves: DomainCurves, runs: list[RunInfo]) -> dict[tuple[str, str, str | None, str], list]:
    """(condition, base, preset, domain) -> the domain curves of its runs (seeds)."""
    info = {r.run: r for r in runs}
    groups: dict[tuple[str, str, str | None, str], list] = defaultdict(list)
    for (run, domain), curve in sorted(curves.items()):
        meta = info.get(run, RunInfo(run=run))
        groups[(meta.condition, meta.base, meta.preset, domain)].append(curve)
    return groups


def _common_steps(group: list[tuple[list[int], Bootstrap]]) -> list[int]:
    return sorted(set.intersection(*(set(steps) for steps, _ in group)))


def effect_rows(curves: DomainCurves, runs: list[RunInfo]) -> list[EffectRow]:
    """The condition x base x step table: every step all runs of a cell reached, with delta vs base."""
    rows = []
    for (condition, base, preset, domain), group in _groups(curves, runs).items():
        steps = _common_steps(group)
        if 0 not in steps:
            continue
        at_base = _mean_at(group, 0)
        for step in steps:
            here = _mean_at(group, step)
            rows.append(
                EffectRow(
                    condition=condition,
                    base=base,
                    preset=preset,
                    domain=domain,
                    step=step,
                    n_runs=len(group),
                    score=percentile(here[1], here[0]),
                    delta=_diff(here, at_base),
                )
            )
    return rows


def pick_reference(arms: list[str], reference: str | None) -> str:
    """The arm others are compared with: the caller's condition, else one named long-CoT, else the first.

    When that condition was trained with several presets ("long-cot · long", "long-cot · micro"), the
    arm whose preset most other arms share is taken: that is the data-condition comparison.
    """
    matching = [a for a in arms if reference is not None and a.split(" · ")[0] == reference]
    candidates = matching or [a for a in arms if "long" in a.lower()] or list(arms)
    presets = [a.partition(" · ")[2] for a in arms]
    return min(candidates, key=lambda a: (-presets.count(a.partition(" · ")[2]), a))


def budget_comparisons(
    curves: DomainCurves, runs: list[RunInfo], reference: str | None = None
) -> list[BudgetComparison]:
    """Per base and domain, every arm (condition, and preset when several) at the largest shared step.

    Rows at the same step are equal-budget comparisons: the same number of optimizer steps.
    """
    groups = _groups(curves, runs)
    presets: dict[str, set[str | None]] = defaultdict(set)
    for _, base, preset, _ in groups:
        presets[base].add(preset)
    by_base: dict[tuple[str, str], dict[str, list]] = defaultdict(dict)
    for (condition, base, preset, domain), group in groups.items():
        arm = condition if len(presets[base]) == 1 else f"{condition} · {preset}"
        by_base[(base, domain)][arm] = group
    out = []
    for (base, domain), arms in sorted(by_base.items()):
        shared = sorted(set.intersection(*(set(_common_steps(g)) for g in arms.values())))
        if len(arms) < 2 or 0 not in shared or len(shared) < 2:
            continue
        step = shared[-1]
        ref = pick_reference(list(arms), reference)
        ref_value = _mean_at(arms[ref], step)
        for arm, group in sorted(arms.items()):
            here = _mean_at(group, step)
            out.append(
                BudgetComparison(
                    base=base,
                    domain=domain,
                    step=step,
                    arm=arm,
                    reference=ref,
                    delta=_diff(here, _mean_at(group, 0)),
                    vs_reference=None if arm == ref else _diff(here, ref_value),
                )
            )
    return out


def _change(curve: tuple[list[int], Bootstrap] | None, last: int, sign: float = 1.0) -> Estimate | None:
    """sign * (goodness at `last` - goodness at base), paired over prompts."""
    if curve is None or 0 not in curve[0] or last not in curve[0]:
        return None
    final, base = _at(curve, last), _at(curve, 0)
    return percentile(sign * (final[1] - base[1]), sign * (final[0] - base[0]))


def gain_costs(curves: DomainCurves, runs: list[RunInfo]) -> list[GainCost]:
    """Per run, at its last checkpoint: in-/cross-domain gain and safety cost (goodness lost). A run
    with only its base evaluated (step 0) has nothing to compare and is left out."""
    out = []
    for meta in runs:
        mine = {domain: c for (run, domain), c in curves.items() if run == meta.run}
        last = max((max(steps) for steps, _ in mine.values()), default=0)
        if last == 0:
            continue
        out.append(
            GainCost(
                run=meta.run,
                condition=meta.condition,
                base=meta.base,
                step=last,
                in_domain_gain=_change(mine.get("in-domain"), last),
                cross_domain_gain=_change(mine.get("cross-domain"), last),
                safety_cost=_change(mine.get("safety"), last, sign=-1.0),
                over_refusal=_change(mine.get(OVER_REFUSAL), last, sign=-1.0),
            )
        )
    return out
