"""`sftscope report DIR`: analyze the directory's results store and write the page and the summary."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftscope.analyze.bootstrap import DEFAULT_BOOT
from sftscope.analyze.model import Analysis, RunInfo
from sftscope.analyze.pipeline import analyze
from sftscope.evaluate.store import store_file
from sftscope.report import html, markdown

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"


@dataclass(frozen=True)
class ReportFiles:
    """What `build_report` wrote."""

    analysis: Path
    html: Path
    markdown: Path


def write_report(analysis: Analysis, out_dir: Path, title: str) -> ReportFiles:
    """Render an existing Analysis into `out_dir` (analysis.json, report.html, report.md)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path = analysis.write(out_dir)
    html_path = out_dir / HTML_FILE
    html_path.write_text(html.render(analysis, title), encoding="utf-8")
    md_path = out_dir / MARKDOWN_FILE
    md_path.write_text(markdown.render(analysis, title, HTML_FILE), encoding="utf-8")
    return ReportFiles(json_path, html_path, md_path)


def build_report(
    directory: str | Path,
    *,
    out_dir: str | Path | None = None,
    title: str | None = None,
    runs_meta: Mapping[str, RunInfo | Mapping[str, Any]] | None = None,
    reference: str | None = None,
    n_boot: int = DEFAULT_BOOT,
    behaviour_judge: Mapping[str, Any] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> ReportFiles:
    """Analyze a run or study directory (or its results.duckdb) and write the report next to the store.

    `on_stage` is told "analyzing" and then "rendering", for a progress display.
    """
    store = store_file(Path(directory))
    if on_stage:
        on_stage("analyzing")
    analysis = analyze(store, runs_meta, reference=reference, n_boot=n_boot, behaviour_judge=behaviour_judge)
    if on_stage:
        on_stage("rendering")
    out = Path(out_dir) if out_dir is not None else store.parent
    return write_report(analysis, out, title or f"sftscope report: {store.parent.name}")
