"""The self-contained HTML page: inline CSS, inline SVG figures, no scripts, fonts or external files."""

from __future__ import annotations

import html

from sftscope.analysis_file import Analysis, Finding
from sftscope.report import plots, tables
from sftscope.report.findings import LEADS, QUESTIONS, statement
from sftscope.report.tables import Table

CSS = """
:root { --ink: #1b1f24; --muted: #59636e; --rule: #d7dce1; --ok: #1a7f37; --no: #6e7781; --na: #9a6700; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 1180px; padding: 28px 32px 60px; color: var(--ink);
       font: 15px/1.5 Georgia, "Times New Roman", serif; background: #fff; }
h1 { font-size: 26px; margin: 0 0 4px; } h2 { font-size: 20px; margin: 36px 0 8px; border-bottom: 1px solid
var(--rule); padding-bottom: 4px; } h3 { font-size: 16px; margin: 22px 0 6px; }
.meta, .note, figcaption { color: var(--muted); font-size: 13px; }
.findings { display: grid; grid-template-columns: repeat(2, minmax(0, 1fr)); gap: 12px; }
.finding { border: 1px solid var(--rule); border-radius: 6px; padding: 10px 14px; }
.finding h3 { margin: 0 0 4px; font-size: 15px; }
.badge { display: inline-block; font: 600 11px/1 system-ui, sans-serif; text-transform: uppercase;
         letter-spacing: .04em; color: #fff; border-radius: 3px; padding: 4px 6px; margin-bottom: 6px; }
.badge.observed { background: var(--ok); } .badge.partly-observed { background: #4d8f5b; }
.badge.not-observed { background: var(--no); }
.badge.not-measurable { background: var(--na); }
figure.plot { margin: 12px 0 20px; } figure.plot svg { max-width: 100%; height: auto; display: block; }
table { border-collapse: collapse; font: 12.5px/1.35 system-ui, sans-serif; margin: 6px 0 4px; }
th, td { padding: 4px 8px; border-bottom: 1px solid var(--rule); text-align: left; vertical-align: top;
         white-space: nowrap; }
th { border-bottom: 1.5px solid var(--ink); font-weight: 600; }
td small { color: var(--muted); display: block; font-size: 11px; }
.scroll { overflow-x: auto; } pre { font-size: 12px; background: #f6f8fa; padding: 10px; overflow-x: auto; }
ul.errors { font-size: 12.5px; color: var(--muted); }
"""


def _esc(text: str) -> str:
    return html.escape(text, quote=True)


def _badge(finding: Finding) -> str:
    kind = finding.verdict.replace(" ", "-")
    return f'<span class="badge {kind}">{_esc(LEADS[finding.verdict].lower())}</span>'


def _finding(finding: Finding) -> str:
    return (
        f'<div class="finding" id="finding-{_esc(finding.key)}"><h3>{_esc(finding.key.capitalize())}: '
        f"{_esc(QUESTIONS[finding.key])}</h3>{_badge(finding)}<p>{_esc(statement(finding))}</p></div>"
    )


def _cell(text: str) -> str:
    main, _, sub = text.partition("\n")
    return _esc(main) + (f"<small>{_esc(sub)}</small>" if sub else "")


def render_table(table: Table) -> str:
    if not table.rows:
        return ""
    head = "".join(f"<th>{_esc(h)}</th>" for h in table.headers)
    body = "".join("<tr>" + "".join(f"<td>{_cell(c)}</td>" for c in row) + "</tr>" for row in table.rows)
    note = f'<p class="note">{_esc(table.note)}</p>' if table.note else ""
    return (
        f'<h3 id="table-{_esc(table.key)}">{_esc(table.title)}</h3><div class="scroll">'
        f'<table class="data" data-key="{_esc(table.key)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>{note}"
    )


def _figure(key: str, svg: str | None, caption: str) -> str:
    if svg is None:
        return f'<p class="note">No data for: {_esc(caption)}</p>'
    return f'<figure class="plot" id="fig-{key}">{svg}<figcaption>{_esc(caption)}</figcaption></figure>'


def render(analysis: Analysis, title: str) -> str:
    """The whole page as one string."""
    focus = plots.focus_task(analysis)
    steps_word = "log-scaled" if analysis.log_spaced_steps else "linear"
    shape = ["output_tokens", "truncated", "repetition"]
    behaviours = ["backtracking", "verification", "subgoal_setting", "backward_chaining", "procedure_index"]
    sections = [
        f"<h1>{_esc(title)}</h1>",
        f'<p class="meta">Results store: {_esc(analysis.source)} · {len(analysis.runs)} runs · '
        f"{len(analysis.tasks)} tasks · all intervals are 95% bootstraps over prompts, paired across "
        "checkpoints.</p>",
        '<h2 id="findings">Findings</h2><div class="findings">'
        + "".join(_finding(f) for f in analysis.findings)
        + "</div>",
        '<h2 id="scores">Scores over training</h2>',
        _figure(
            "scores",
            plots.score_curves(analysis),
            f"Score per task over optimizer steps ({steps_word} axis); shaded: pointwise 95% interval; "
            "dotted: the base model. Colour = data condition, line style = base model.",
        ),
        render_table(tables.dip_table(analysis, pooled=True)),
        '<h2 id="shape">Response shape and behaviours</h2>',
        _figure("shape", plots.metric_curves(analysis, shape, focus or ""), f"Response shape on {focus}."),
        _figure(
            "behaviours",
            plots.metric_curves(analysis, behaviours, focus or ""),
            f"Behaviours per response on {focus} (counted by the {analysis.behaviour_classifier}, see "
            "the appendix) and the share of "
            "backtrack markers followed by a genuinely different attempt (procedure) rather than none "
            "(surface).",
        ),
        '<h2 id="data">Data conditions at equal budget</h2>',
        render_table(tables.budget_table(analysis)),
        *(render_table(t) for t in tables.effects_tables(analysis)),
        '<h2 id="capability">Capability and safety cost</h2>',
        render_table(tables.capability_table(analysis, focus)),
        _figure(
            "gain-cost",
            plots.gain_cost_scatter(analysis),
            "Reasoning gain against safety cost per run, at its last checkpoint, with 95% intervals.",
        ),
        '<h2 id="appendix">Appendix</h2>',
        render_table(tables.scores_table(analysis)),
        render_table(tables.dip_table(analysis, pooled=False)),
        render_table(tables.sweep_plan_table(analysis)),
        render_table(tables.runs_table(analysis)),
        render_table(tables.tasks_table(analysis)),
        render_table(tables.calibration_table(analysis)),
        "<h3>Labelled traces the classifier gets wrong</h3><ul class='errors'>"
        + "".join(f"<li>{_esc(e)}</li>" for e in analysis.calibration_errors)
        + "</ul>",
        *(f"<h3>{_esc(m.title)}</h3><pre>{_esc(m.text)}</pre>" for m in analysis.methods),
        ("<h3>Notes</h3><ul>" + "".join(f"<li>{_esc(n)}</li>" for n in analysis.notes) + "</ul>")
        if analysis.notes
        else "",
    ]
    body = "\n".join(s for s in sections if s)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )
