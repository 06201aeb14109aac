"""The report files: self-contained HTML, a Markdown summary, and the `sftscope report` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.analyze.model import Analysis
from sftscope.analyze.pipeline import analyze
from sftscope.analyze.synthetic import synthetic_runs, write_synthetic_store
from sftscope.cli import app
from sftscope.report.build import ReportFiles, write_report


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("study")
    write_synthetic_store(directory / "results.duckdb", n_prompts=20)
    return directory


@pytest.fixture(scope="module")
def analysis(study: Path) -> Analysis:
    return analyze(study, synthetic_runs(), n_boot=200)


@pytest.fixture(scope="module")
def files(analysis: Analysis, tmp_path_factory: pytest.TempPathFactory) -> ReportFiles:
    return write_report(analysis, tmp_path_factory.mktemp("report"), "T")


def test_html_is_self_contained(files: ReportFiles) -> None:
    page = files.html.read_text(encoding="utf-8")
    assert page.count("<svg") >= 4
    assert "<script" not in page
    assert not re.search(r"""(?:src|href)\s*=\s*["']?(?:https?:)?//""", page)
    assert "@import" not in page
    assert not re.search(r"url\((?!#)", page)  # only in-page references (SVG clip paths)


def test_every_finding_is_stated_with_its_numbers(analysis: Analysis, files: ReportFiles) -> None:
    page, summary = files.html.read_text(encoding="utf-8"), files.markdown.read_text(encoding="utf-8")
    for finding in analysis.findings:
        assert f'id="finding-{finding.key}"' in page
        assert finding.statement in summary
        if finding.observed is not None:
            assert "95% CI" in finding.statement
    assert "| run | curve | base |" in summary
    assert files.analysis.is_file()


def test_report_command_on_a_study_directory(study: Path) -> None:
    (study / "runs.json").write_text(
        "{"
        + ", ".join(f'"{k}": {v.model_dump_json(exclude={"run"})}' for k, v in synthetic_runs().items())
        + "}"
    )
    result = CliRunner().invoke(app, ["report", str(study), "--n-boot", "100", "--title", "Demo"])
    assert result.exit_code == 0, result.output
    html = Path(result.stdout.strip().splitlines()[-1])
    assert html == study / "report.html" and html.is_file()
    assert "<title>Demo</title>" in html.read_text(encoding="utf-8")
    assert "long-cot" in (study / "report.md").read_text(encoding="utf-8")  # conditions came from runs.json


def test_report_command_without_a_store_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "no results store" in " ".join(result.output.split())
    (tmp_path / "sweep.duckdb").touch()  # a store named by `eval --store`: the error points at it
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert f"pass the store file itself, e.g. {tmp_path / 'sweep.duckdb'}" in " ".join(result.output.split())


def test_a_store_of_base_scores_only_still_tabulates_them(analysis: Analysis) -> None:
    from sftscope.report.markdown import render

    at_base = [c.model_copy(update={"points": [p for p in c.points if p.step == 0]}) for c in analysis.curves]
    summary = render(analysis.model_copy(update={"curves": at_base}), "T", "report.html")
    section = summary.split("### Scores per task: base and last evaluated step")[1].split("###")[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]  # after the header
    score_curves = [c for c in at_base if c.metric == "score" and c.points]
    assert score_curves and len(rows) == len(score_curves)  # every task's base score...
    assert all(row.endswith("| – | – |") and "[" in row for row in rows)  # ...with its CI, no later step


def test_a_difference_that_rounds_to_zero_has_no_minus_sign() -> None:
    from sftscope.analyze.bootstrap import Estimate
    from sftscope.report.tables import cell

    assert cell(Estimate(value=-1e-17, lo=-0.0004, hi=0.02)) == "+0.000\n[+0.000, +0.020]"
    assert cell(Estimate(value=-0.0006, lo=None, hi=None)) == "-0.001"
