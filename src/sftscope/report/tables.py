"""The report's tables as plain rows of strings, rendered by both the HTML page and the Markdown summary.

A cell may hold a second line (after a newline): the 95% interval, shown smaller in HTML.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sftscope.analysis_file import DOMAIN_ORDER, Analysis, CurvePoint, Estimate


@dataclass
class Table:
    """A titled table; `note` says how to read it."""

    key: str
    title: str
    headers: list[str]
    rows: list[list[str]] = field(default_factory=list)
    note: str = ""


def cell(est: Estimate | None, signed: bool = True) -> str:
    """'+0.120' over '[+0.060, +0.180]'; an en dash when there is nothing to show."""
    if est is None or est.value is None:
        return "–"
    spec = "+.3f" if signed else ".3f"

    def shown(value: float) -> str:
        # A difference that rounds to zero is "+0.000", not "-0.000" (a float's -1e-17 or -0.0).
        return f"{0.0 if round(value, 3) == 0 else value:{spec}}"

    if est.lo is None or est.hi is None:
        return shown(est.value)
    return f"{shown(est.value)}\n[{shown(est.lo)}, {shown(est.hi)}]"


def _estimate(point: CurvePoint | None) -> Estimate | None:
    return Estimate(value=point.value, lo=point.lo, hi=point.hi) if point else None


def scores_table(analysis: Analysis) -> Table:
    """Every run's score on every task at its base (step 0) and at its last evaluated step: the
    numbers behind the score curves, present even when nothing else can be computed yet."""
    table = Table(
        "scores",
        "Scores per task: base and last evaluated step",
        ["run", "task", "domain", "step 0", "last step", "score there"],
        note="Score = the task's mean over prompts as its scorer defines it (whether higher is better is "
        "in the task table); below it, its 95% interval.",
    )
    rank = {d: i for i, d in enumerate(DOMAIN_ORDER)}
    curves = [c for c in analysis.curves if c.metric == "score" and c.points]
    for c in sorted(curves, key=lambda c: (c.run, rank.get(c.domain, len(rank)), c.task)):
        base = next((p for p in c.points if p.step == 0), None)
        last = max(c.points, key=lambda p: p.step)
        later = last.step > 0
        row = [c.run, c.task, c.domain, cell(_estimate(base), signed=False), str(last.step) if later else "–"]
        table.rows.append([*row, cell(_estimate(last), signed=False) if later else "–"])
    return table


def dip_table(analysis: Analysis, pooled: bool) -> Table:
    """Dip statistics of the domain means (`pooled`) or of every single task."""
    table = Table(
        "dips" if pooled else "dips-tasks",
        "Dip and recovery: domain means per run" if pooled else "Dip and recovery per run and task",
        [
            "run",
            "curve",
            "base",
            "lowest Δ (step)",
            "recovery step",
            "best Δ (step)",
            "final Δ (step)",
            "label",
        ],
        note="Δ = score − base score. Lowest and best carry a simultaneous 95% band over all "
        "checkpoints; final a 95% percentile interval. A dip counts only when a checkpoint's band "
        "excludes 0 (decision rule in the appendix)."
        + (" Domain means average the domain's tasks, lower-is-better scores flipped." if pooled else ""),
    )
    chosen = [d for d in analysis.dips if d.task.startswith("all ") == pooled]
    for d in sorted(chosen, key=lambda d: (d.task, d.run)):
        table.rows.append(
            [
                d.run,
                d.task,
                cell(d.base, signed=False),
                f"{cell(d.lowest_delta)} ({d.lowest_step})",
                str(d.recovery_step) if d.recovery_step is not None else "–",
                f"{cell(d.best_delta)} ({d.best_step})",
                f"{cell(d.final_delta)} ({d.final_step})",
                d.label,
            ]
        )
    return table


def effects_tables(analysis: Analysis, max_steps: int = 8) -> list[Table]:
    """One condition × base × step table per domain (Δ vs base), at up to `max_steps` checkpoints."""
    tables = []
    for domain in DOMAIN_ORDER:
        rows = [e for e in analysis.effects if e.domain == domain]
        if not rows:
            continue
        steps = sorted({e.step for e in rows if e.step > 0})
        if len(steps) > max_steps:
            stride = -(-len(steps) // max_steps)
            steps = sorted({*steps[::-stride]})
        table = Table(
            f"effects-{domain}",
            f"{domain}: change from the base model by condition, base and step",
            ["condition", "base", "preset", "runs", "base score", *[f"step {s}" for s in steps]],
            note="Mean over the domain's tasks (goodness: lower-is-better scores flipped), paired 95% "
            "intervals. Cells in one column used the same number of optimizer steps: columns are "
            "equal-budget comparisons.",
        )
        for key in sorted({(e.condition, e.base, e.preset) for e in rows}, key=str):
            mine = {e.step: e for e in rows if (e.condition, e.base, e.preset) == key}
            base = mine.get(0)
            table.rows.append(
                [
                    key[0],
                    key[1],
                    key[2] or "–",
                    str(next(iter(mine.values())).n_runs),
                    cell(base.score, signed=False) if base else "–",
                    *[cell(mine[s].delta) if s in mine else "" for s in steps],
                ]
            )
        tables.append(table)
    return tables


def budget_table(analysis: Analysis) -> Table:
    """One row per base and arm; per domain its change from the base and its margin to the reference."""
    domains = [d for d in DOMAIN_ORDER if any(b.domain == d for b in analysis.budget)]
    table = Table(
        "budget",
        "Equal-budget comparison of data conditions",
        ["base", "arm", "step", *[f"Δ {d}" for d in domains], *[f"vs reference, {d}" for d in domains]],
        note="Every arm of a base at the largest step all of them reached (the same number of optimizer "
        "steps). Δ = change from the base model; 'vs reference' = this arm − the reference arm, paired "
        "over prompts.",
    )
    for base, arm in sorted({(b.base, b.arm) for b in analysis.budget}):
        mine = {b.domain: b for b in analysis.budget if (b.base, b.arm) == (base, arm)}
        step = next(iter(mine.values())).step
        deltas = [cell(mine[d].delta) if d in mine else "" for d in domains]
        margins = [
            ("reference" if mine[d].vs_reference is None else cell(mine[d].vs_reference)) if d in mine else ""
            for d in domains
        ]
        table.rows.append([base, arm, str(step), *deltas, *margins])
    return table


def capability_table(analysis: Analysis, focus: str | None) -> Table:
    """Per run at its last checkpoint: gains, cost, and whether its backtracks are procedure or surface."""
    table = Table(
        "capability",
        "Capability: gains, safety cost and behaviour per run (last checkpoint)",
        [
            "run",
            "condition",
            "base",
            "step",
            "in-domain Δ",
            "cross-domain Δ",
            "safety cost",
            "over-refusal Δ",
            "procedure share",
            "backtracks / resp.",
            "length (tokens)",
        ],
        note=f"Behaviour columns are measured on {focus or 'the first task'}. Procedure share = "
        "backtrack markers followed by a genuinely different attempt / all markers. Safety cost > 0 = "
        "less safe behaviour.",
    )
    info = {r.run: r for r in analysis.runs}

    def last(run: str, metric: str, step: int) -> Estimate | None:
        curve = next(
            (c for c in analysis.curves if c.run == run and c.task == focus and c.metric == metric), None
        )
        return _estimate(next((p for p in curve.points if p.step == step), None) if curve else None)

    for g in analysis.gain_cost:
        capability = info[g.run].capability if g.run in info else None
        table.rows.append(
            [
                g.run,
                g.condition,
                f"{g.base} ({capability})" if capability else g.base,
                str(g.step),
                cell(g.in_domain_gain),
                cell(g.cross_domain_gain),
                cell(g.safety_cost),
                cell(g.over_refusal),
                cell(last(g.run, "procedure_index", g.step), signed=False),
                cell(last(g.run, "backtracking", g.step), signed=False),
                cell(last(g.run, "output_tokens", g.step), signed=False).split("\n")[0],
            ]
        )
    return table


def calibration_table(analysis: Analysis) -> Table:
    table = Table(
        "calibration",
        "Behaviour classifier: precision and recall on the project's labelled traces",
        ["classifier", "behaviour", "split", "traces", "positives", "precision", "recall"],
        note="The lexicon was tuned on the calibration split only; the held-out split is the honest "
        "estimate.",
    )
    for r in analysis.calibration:
        table.rows.append(
            [
                r.classifier,
                r.behaviour,
                r.split,
                str(r.n),
                str(r.support),
                f"{r.precision:.2f}",
                f"{r.recall:.2f}",
            ]
        )
    return table


def runs_table(analysis: Analysis) -> Table:
    table = Table("runs", "Runs", ["run", "condition", "base", "capability", "preset", "seed"])
    for r in analysis.runs:
        table.rows.append(
            [r.run, r.condition, r.base, r.capability or "–", r.preset or "–", str(r.seed or "–")]
        )
    return table


def tasks_table(analysis: Analysis) -> Table:
    table = Table(
        "tasks",
        "Tasks and sample outcomes",
        ["task", "domain", "higher is better", "prompts", "samples", "statuses", "unsandboxed"],
        note="Every row of the store is counted here; error rows carry no score and are left out of means. "
        "Unsandboxed: rows whose code ran without the sandbox.",
    )
    for t in analysis.tasks:
        statuses = ", ".join(f"{k} {v}" for k, v in t.statuses.items())
        table.rows.append(
            [
                t.task,
                t.domain,
                "yes" if t.higher_is_better else "no",
                str(t.n_prompts),
                str(t.n_samples),
                statuses,
                str(t.unsandboxed),
            ]
        )
    return table


def sweep_plan_table(analysis: Analysis) -> Table:
    """Which checkpoints an adaptive sweep evaluated, in which round, and why (empty for dense sweeps)."""
    table = Table(
        "sweep-plan",
        "Checkpoints evaluated by the adaptive sweep, and why",
        ["run", "step", "round", "reason"],
        note="Round 0 is the coarse log-spaced set; later rounds bisect where the curve was not yet pinned. "
        "Saved checkpoints not listed were not evaluated.",
    )
    for entry in sorted(analysis.sweep_plan, key=lambda e: (e.run, e.step)):
        table.rows.append([entry.run, str(entry.step), str(entry.round), entry.reason])
    return table
