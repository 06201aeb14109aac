"""The Markdown summary: findings and the key tables, for a README, a PR or a terminal."""

from __future__ import annotations

from sftscope.analyze.model import Analysis
from sftscope.report import plots, tables
from sftscope.report.tables import Table


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(table: Table) -> str:
    if not table.rows:
        return ""
    lines = [f"### {table.title}", "", "| " + " | ".join(table.headers) + " |"]
    lines.append("|" + "---|" * len(table.headers))
    lines += ["| " + " | ".join(_md(c) for c in row) + " |" for row in table.rows]
    if table.note:
        lines += ["", f"_{table.note}_"]
    return "\n".join(lines) + "\n"


def render(analysis: Analysis, title: str, html_name: str) -> str:
    parts = [
        f"# {title}",
        "",
        f"Results store `{analysis.source}`: {len(analysis.runs)} runs, {len(analysis.tasks)} tasks. "
        f"Intervals are 95% bootstraps over prompts. Figures: [{html_name}]({html_name}).",
        "",
        "## Findings",
        "",
        *(f"- **{f.key.capitalize()}**: {f.statement}" for f in analysis.findings),
        "",
        "## Tables",
        "",
        render_table(tables.scores_table(analysis)),
        render_table(tables.dip_table(analysis, pooled=True)),
        render_table(tables.budget_table(analysis)),
        render_table(tables.capability_table(analysis, plots.focus_task(analysis))),
        render_table(tables.calibration_table(analysis)),
    ]
    if analysis.notes:
        parts += ["## Notes", "", *(f"- {n}" for n in analysis.notes), ""]
    return "\n".join(p for p in parts if p is not None)
