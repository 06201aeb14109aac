"""The report files: self-contained HTML, a Markdown summary, and the `sftscope report` command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.analysis_file import Analysis, MethodNote, SweepPlanEntry
from sftscope.analyze.pipeline import analyze
from sftscope.analyze.synthetic import synthetic_runs, write_synthetic_store
from sftscope.cli import app
from sftscope.report import html, markdown
from sftscope.report.build import ReportFiles, write_report
from sftscope.report.findings import LEADS, statement
from sftscope.report.markdown import escape


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
        sentence = statement(finding)
        assert escape(sentence) in summary
        if finding.verdict != "not measurable":
            assert "95% CI" in sentence
    assert "| run | curve | base |" in summary


@pytest.mark.parametrize("verdict", ["observed", "partly observed", "not observed"])
def test_badge_and_sentence_come_from_one_verdict(analysis: Analysis, verdict: str) -> None:
    data = next(f for f in analysis.findings if f.key == "data").model_copy(update={"verdict": verdict})
    page = html.render(analysis.model_copy(update={"findings": [data]}), "T")
    lead = LEADS[data.verdict]  # type: ignore[index]
    badge = re.search(r'id="finding-data">.*?<span class="badge ([a-z-]+)">([^<]+)</span><p>([^<]+)', page)
    assert badge is not None
    assert badge.group(1) == verdict.replace(" ", "-") and badge.group(2) == lead.lower()
    assert badge.group(3).startswith(f"{lead}:")


def test_methods_come_from_the_analysis(analysis: Analysis) -> None:
    method = MethodNote(key="x", title="A planted method", text="computed by a planted rule")
    page = html.render(analysis.model_copy(update={"methods": [method]}), "T")
    assert "A planted method" in page and "computed by a planted rule" in page
    assert "Dip decision rule" not in page  # nothing is taken from analyze's modules


def test_run_names_are_escaped_in_markdown(analysis: Analysis) -> None:
    runs = [r.model_copy(update={"run": "evil_*run*[x](http://e)<b>|"}) for r in analysis.runs[:1]]
    renamed = analysis.model_copy(update={"runs": runs, "notes": ["note about evil_*run*"]})
    summary = markdown.render(renamed, "T_*", "report.html")
    assert "# T\\_\\*" in summary
    assert "evil\\_\\*run\\*" in summary
    assert "[x](http://e)" not in summary and "<b>" not in summary


def test_report_reads_analysis_json_alone(analysis: Analysis, tmp_path: Path) -> None:
    analysis.write(tmp_path)  # no results store next to it
    result = CliRunner().invoke(app, ["report", str(tmp_path), "--title", "Only JSON"])
    assert result.exit_code == 0, result.output
    assert "<title>Only JSON</title>" in (tmp_path / "report.html").read_text(encoding="utf-8")
    (tmp_path / "analysis.json").write_text("{}", encoding="utf-8")
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2 and "not an sftscope analysis.json" in " ".join(result.output.split())


def test_report_command_on_a_study_directory(study: Path) -> None:
    (study / "runs.json").write_text(
        "{"
        + ", ".join(f'"{k}": {v.model_dump_json(exclude={"run"})}' for k, v in synthetic_runs().items())
        + "}"
    )
    assert CliRunner().invoke(app, ["analyze", str(study), "--n-boot", "100"]).exit_code == 0
    result = CliRunner().invoke(app, ["report", str(study), "--title", "Demo"])
    assert result.exit_code == 0, result.output
    html = Path(result.stdout.strip().splitlines()[-1])
    assert html == study / "report.html" and html.is_file()
    assert "<title>Demo</title>" in html.read_text(encoding="utf-8")
    assert "long-cot" in (study / "report.md").read_text(encoding="utf-8")  # conditions came from runs.json


def test_report_command_without_a_store_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "run `sftscope analyze` on the directory first" in " ".join(result.output.split())
    (tmp_path / "sweep.duckdb").touch()  # a store named by `eval --store`: the error points at it
    result = CliRunner().invoke(app, ["analyze", str(tmp_path)])
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
    from sftscope.analysis_file import Estimate
    from sftscope.report.tables import cell

    assert cell(Estimate(value=-1e-17, lo=-0.0004, hi=0.02)) == "+0.000\n[+0.000, +0.020]"
    assert cell(Estimate(value=-0.0006, lo=None, hi=None)) == "-0.001"


def test_an_adaptive_sweep_says_which_checkpoints_it_evaluated_and_why(analysis: Analysis) -> None:
    plan = [
        SweepPlanEntry(run="r1", step=8, round=0, reason="coarse"),
        SweepPlanEntry(run="r1", step=6, round=1, reason="pin dip bottom (all cross-domain)"),
    ]
    page = html.render(analysis.model_copy(update={"sweep_plan": plan}), "T")
    assert 'data-key="sweep-plan"' in page and "pin dip bottom (all cross-domain)" in page
    assert 'data-key="sweep-plan"' not in html.render(analysis, "T")  # dense sweeps: no table
