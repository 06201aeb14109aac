"""The report's figures, drawn from the Analysis only (never from the store)."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from sftscope.analysis_file import DOMAIN_ORDER, Analysis, Curve, RunInfo
from sftscope.report.style import Styles, new_figure, styled, to_svg


def styles_for(analysis: Analysis) -> Styles:
    return Styles((r.condition for r in analysis.runs), (r.base for r in analysis.runs))


def _info(analysis: Analysis) -> dict[str, RunInfo]:
    return {r.run: r for r in analysis.runs}


def _step_axis(ax: Axes, steps: list[int], log: bool) -> None:
    """Log-spaced checkpoints on a symlog axis (linear below 1, so the base at step 0 stays visible)."""
    ticks = sorted(set(steps))
    if log:
        ax.set_xscale("symlog", linthresh=1, linscale=0.4)
        # At most ~6 labels, always keeping the first and the last checkpoint.
        stride = -(-len(ticks) // 6)
        shown = sorted({*ticks[::-stride], ticks[0]})
        ax.set_xticks(shown, [str(t) for t in shown])
        ax.minorticks_off()
    if ticks:
        # Symlog autoscaling pads into negative steps; the base belongs at the left edge.
        ax.set_xlim(-0.1 if log else None, ticks[-1] * (1.25 if log else 1.03) or None)
    ax.set_xlabel("optimizer step" + (" (log scale)" if log else ""))


def _draw(ax: Axes, curve: Curve, run: RunInfo, styles: Styles, band: bool = True) -> None:
    points = [p for p in curve.points if p.value is not None]
    if not points:
        return
    steps = [p.step for p in points]
    colour, style = styles.colour(run.condition), styles.linestyle(run.base)
    ax.plot(steps, [p.value for p in points], color=colour, linestyle=style, marker=".", markersize=4)
    if band and all(p.lo is not None for p in points):
        lows = [p.lo for p in points]
        highs = [p.hi for p in points]
        ax.fill_between(steps, lows, highs, color=colour, alpha=0.12, linewidth=0)


def _legend(fig: Figure, handles: list[Line2D]) -> None:
    """A legend in a fixed-height band under the panels (so no second 'tight' layout pass is needed)."""
    band = 0.45 / fig.get_figheight()
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, band, 1, 1))


def _line_legend(fig: Figure, styles: Styles, with_base_line: bool) -> None:
    handles = [Line2D([], [], color=styles.colour(c), label=c) for c in styles.conditions]
    handles += [Line2D([], [], color="0.2", linestyle=styles.linestyle(b), label=b) for b in styles.bases]
    if with_base_line:
        handles.append(Line2D([], [], color="0.45", linestyle=(0, (1, 2)), linewidth=1, label="base model"))
    _legend(fig, handles)


def _panels(analysis: Analysis, metric: str, tasks: list[str]) -> dict[str, list[Curve]]:
    return {
        task: [c for c in analysis.curves if c.task == task and c.metric == metric]
        for task in tasks
        if any(c.task == task and c.metric == metric for c in analysis.curves)
    }


def score_tasks(analysis: Analysis) -> list[str]:
    """Domain averages (when a domain has several tasks), then every task, grouped by domain."""
    order = DOMAIN_ORDER
    tasks = sorted(analysis.tasks, key=lambda t: (order.index(t.domain) if t.domain in order else 9, t.task))
    pooled = [f"all {d}" for d in order if sum(t.domain == d for t in tasks) > 1]
    return pooled + [t.task for t in tasks]


@styled
def score_curves(analysis: Analysis) -> str | None:
    """Score over steps per task, CI bands, and each base model's score as a dotted line."""
    panels = _panels(analysis, "score", score_tasks(analysis))
    if not panels:
        return None
    styles, info = styles_for(analysis), _info(analysis)
    domains = {t.task: t.domain for t in analysis.tasks}
    fig, axes = new_figure(len(panels))
    for ax, (task, curves) in zip(axes, panels.items(), strict=True):
        drawn_bases: set[tuple[str, float]] = set()
        for curve in curves:
            run = info[curve.run]
            _draw(ax, curve, run, styles)
            base = next((p.value for p in curve.points if p.step == 0 and p.value is not None), None)
            if base is not None and (run.base, round(base, 6)) not in drawn_bases:
                drawn_bases.add((run.base, round(base, 6)))
                ax.axhline(base, color="0.45", linestyle=(0, (1, 2)), linewidth=1)
        _step_axis(ax, [p.step for c in curves for p in c.points], analysis.log_spaced_steps)
        pooled = task.startswith("all ")
        ax.set_title(f"{task} (mean)" if pooled else f"{task} · {domains.get(task, '')}")
        ax.set_ylabel("score (higher = better)" if pooled else "score")
    _line_legend(fig, styles, with_base_line=True)
    return to_svg(fig)


def focus_task(analysis: Analysis) -> str | None:
    """The task the shape and behaviour figures show: the first in-domain task, else the first task."""
    in_domain = sorted(t.task for t in analysis.tasks if t.domain == "in-domain")
    return in_domain[0] if in_domain else (sorted(t.task for t in analysis.tasks) or [None])[0]


@styled
def metric_curves(analysis: Analysis, metrics: list[str], task: str) -> str | None:
    """One panel per metric, for one task, every run."""
    curves = {m: [c for c in analysis.curves if c.task == task and c.metric == m] for m in metrics}
    curves = {m: cs for m, cs in curves.items() if any(p.value is not None for c in cs for p in c.points)}
    if not curves:
        return None
    styles, info = styles_for(analysis), _info(analysis)
    fig, axes = new_figure(len(curves), columns=3)
    for ax, (metric, cs) in zip(axes, curves.items(), strict=True):
        for curve in cs:
            _draw(ax, curve, info[curve.run], styles)
        _step_axis(ax, [p.step for c in cs for p in c.points], analysis.log_spaced_steps)
        ax.set_title(analysis.metric_labels.get(metric, metric))
        if metric == "procedure_index":
            ax.set_ylim(-0.05, 1.05)
        else:
            ax.set_ylim(bottom=0)  # lengths, rates and counts: zero is the honest baseline
    _line_legend(fig, styles, with_base_line=False)
    return to_svg(fig)


@styled
def gain_cost_scatter(analysis: Analysis) -> str | None:
    """Each run's reasoning gain (x) against its safety cost (y), with 95% intervals."""
    panels = [
        (label, attr)
        for label, attr in (("in-domain gain", "in_domain_gain"), ("cross-domain gain", "cross_domain_gain"))
        if any(getattr(g, attr) and g.safety_cost for g in analysis.gain_cost)
    ]
    if not panels:
        return None
    styles = styles_for(analysis)
    fig, axes = new_figure(len(panels), columns=2, panel=(4.2, 3.2))
    for ax, (label, attr) in zip(axes, panels, strict=True):
        for g in analysis.gain_cost:
            gain, cost = getattr(g, attr), g.safety_cost
            if gain is None or cost is None or gain.value is None or cost.value is None:
                continue
            xerr = [[gain.value - (gain.lo or gain.value)], [(gain.hi or gain.value) - gain.value]]
            yerr = [[cost.value - (cost.lo or cost.value)], [(cost.hi or cost.value) - cost.value]]
            ax.errorbar(
                gain.value,
                cost.value,
                xerr=xerr,
                yerr=yerr,
                color=styles.colour(g.condition),
                marker=styles.marker(g.base),
                markersize=6,
                linestyle="none",
                elinewidth=0.8,
                capsize=2,
            )
        ax.axhline(0, color="0.5", linewidth=0.8)
        ax.axvline(0, color="0.5", linewidth=0.8)
        ax.set_xlabel(f"{label} at last checkpoint")
        ax.set_ylabel("safety cost (loss of safe behaviour)")
        ax.set_title(f"{label} vs safety cost")
    handles = [
        Line2D([], [], color=styles.colour(c), marker="o", linestyle="none", label=c)
        for c in styles.conditions
    ]
    handles += [
        Line2D([], [], color="0.2", marker=styles.marker(b), linestyle="none", label=b) for b in styles.bases
    ]
    _legend(fig, handles)
    return to_svg(fig)
