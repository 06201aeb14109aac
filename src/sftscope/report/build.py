"""`sftscope report DIR`: read the directory's `analysis.json` and write the page and the summary.

The report computes nothing: every number, label and methods paragraph comes from `analysis.json`
(`sftscope.analysis_file`), which `sftscope analyze` wrote.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sftscope.analysis_file import ANALYSIS_FILE, Analysis
from sftscope.errors import InputError
from sftscope.outdir import atomic_file
from sftscope.report import html, markdown

HTML_FILE = "report.html"
MARKDOWN_FILE = "report.md"


@dataclass(frozen=True)
class ReportFiles:
    """What `write_report` wrote."""

    html: Path
    markdown: Path


def analysis_path(directory: str | Path) -> Path:
    """`DIR/analysis.json`, or the path itself when it names the file."""
    path = Path(directory)
    return path if path.name == ANALYSIS_FILE or path.suffix == ".json" else path / ANALYSIS_FILE


def read_analysis(path: Path) -> Analysis:
    """The analysis record, or a located error when the file is missing or not an analysis."""
    if not path.is_file():
        raise InputError(str(path), "no analysis here: run `sftscope analyze` on the directory first")
    try:
        return Analysis.read(path)
    except ValueError as exc:
        first = str(exc).splitlines()
        raise InputError(str(path), f"not an sftscope analysis.json ({first[0] if first else exc})") from exc


def write_report(analysis: Analysis, out_dir: Path, title: str) -> ReportFiles:
    """Render an analysis into `out_dir` (report.html, report.md)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = ReportFiles(out_dir / HTML_FILE, out_dir / MARKDOWN_FILE)
    for path, text in (
        (files.html, html.render(analysis, title)),
        (files.markdown, markdown.render(analysis, title, HTML_FILE)),
    ):
        with atomic_file(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
    return files


def build_report(
    directory: str | Path, *, out_dir: str | Path | None = None, title: str | None = None
) -> ReportFiles:
    """Render `DIR/analysis.json` into `out_dir` (default: next to it)."""
    path = analysis_path(directory)
    analysis = read_analysis(path)
    out = Path(out_dir) if out_dir is not None else path.parent
    return write_report(analysis, out, title or f"sftscope report: {path.parent.resolve().name}")
