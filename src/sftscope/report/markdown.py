"""The Markdown summary: findings and the key tables, for a README, a PR or a terminal."""

from __future__ import annotations

import re

from sftscope.analysis_file import Analysis
from sftscope.report import plots, tables
from sftscope.report.findings import statement
from sftscope.report.tables import Table

# Characters that would turn a run or task name into markup (emphasis, links, HTML, table cells).
_MARKUP = re.compile(r"([\\`*_\[\]<>|~#])")


def escape(text: str) -> str:
    """Text shown literally in Markdown, on one line."""
    return _MARKUP.sub(r"\\\1", text).replace("\n", " ")


def render_table(table: Table) -> str:
    if not table.rows:
        return ""
    lines = [f"### {escape(table.title)}", "", "| " + " | ".join(escape(h) for h in table.headers) + " |"]
    lines.append("|" + "---|" * len(table.headers))
    lines += ["| " + " | ".join(escape(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"_{escape(table.note)}_"]
    return "\n".join(lines) + "\n"


def render(analysis: Analysis, title: str, html_name: str) -> str:
    parts = [
        f"# {escape(title)}",
        "",
        f"Results store {escape(analysis.source)}: {len(analysis.runs)} runs, {len(analysis.tasks)} tasks. "
        f"Intervals are 95% bootstraps over prompts. Figures: [{html_name}]({html_name}).",
        "",
        "## Findings",
        "",
        *(f"- **{f.key.capitalize()}**: {escape(statement(f))}" for f in analysis.findings),
        "",
        "## Tables",
        "",
        render_table(tables.scores_table(analysis)),
        render_table(tables.dip_table(analysis, pooled=True)),
        render_table(tables.budget_table(analysis)),
        render_table(tables.capability_table(analysis, plots.focus_task(analysis))),
        render_table(tables.sweep_plan_table(analysis)),
        render_table(tables.tasks_table(analysis)),
        render_table(tables.calibration_table(analysis)),
    ]
    if analysis.notes:
        parts += ["## Notes", "", *(f"- {escape(n)}" for n in analysis.notes), ""]
    return "\n".join(p for p in parts if p is not None)
