"""CLI commands of the analyze and report stages: `sftscope analyze DIR`, `sftscope report DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from sftscope.cli.errors import reports_errors
from sftscope.errors import SftscopeError

if TYPE_CHECKING:
    from sftscope.analyze.model import RunMeta

_DIR_HELP = "A run or study directory holding results.duckdb (or the store file itself)."
_RUNS_HELP = (
    "JSON file {run: {condition, base, capability, preset, seed}}; default: runs.json next to the store, "
    "else each run's config.yaml/manifest.json."
)
_REFERENCE_HELP = "Data condition the others are compared with (default: the one named long-CoT)."
_JUDGE_URL = typer.Option(
    None, "--judge-url", help="Count behaviours with an LLM judge at this OpenAI-compatible endpoint."
)
_JUDGE_MODEL = typer.Option(None, "--judge-model", help="The judge model's name (with --judge-url).")
_JUDGE_KEY = typer.Option(None, "--judge-key-env", help="Environment variable holding the judge's API key.")


def _judge(url: str | None, model: str | None, key_env: str | None) -> dict[str, Any] | None:
    """Params of the behaviour judge, or None for the lexicon."""
    if url is None and model is None:
        return None
    if url is None or model is None:
        raise SftscopeError("--judge-url and --judge-model go together")
    return {"base_url": url, "model": model, **({"api_key_env": key_env} if key_env else {})}


def _runs_meta(path: Path | None) -> dict[str, RunMeta] | None:
    from sftscope.analyze.runs import read_runs_file

    return None if path is None else read_runs_file(path)


@reports_errors
def analyze_command(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    out: Path | None = typer.Option(None, "--out", help="Where to write analysis.json (default: DIR)."),
    runs: Path | None = typer.Option(None, "--runs", help=_RUNS_HELP),
    reference: str | None = typer.Option(None, "--reference", help=_REFERENCE_HELP),
    n_boot: int = typer.Option(1000, "--n-boot", min=100, help="Bootstrap resamples per interval."),
    judge_url: str | None = _JUDGE_URL,
    judge_model: str | None = _JUDGE_MODEL,
    judge_key_env: str | None = _JUDGE_KEY,
) -> None:
    """Compute curves, dips, effects and findings with bootstrap intervals; write analysis.json.

    Prints the file's path.
    """
    from sftscope.analyze.pipeline import analyze
    from sftscope.evaluate.store import store_file

    judge = _judge(judge_url, judge_model, judge_key_env)
    analysis = analyze(directory, _runs_meta(runs), reference=reference, n_boot=n_boot, behaviour_judge=judge)
    target = out or store_file(directory).parent
    target.mkdir(parents=True, exist_ok=True)
    typer.echo(str(analysis.write(target)))


@reports_errors
def report_command(
    directory: Path = typer.Argument(..., help=_DIR_HELP),
    out: Path | None = typer.Option(None, "--out", help="Where to write the report (default: DIR)."),
    title: str | None = typer.Option(
        None, "--title", help="Report title (default: from the directory name)."
    ),
    runs: Path | None = typer.Option(None, "--runs", help=_RUNS_HELP),
    reference: str | None = typer.Option(None, "--reference", help=_REFERENCE_HELP),
    n_boot: int = typer.Option(1000, "--n-boot", min=100, help="Bootstrap resamples per interval."),
    judge_url: str | None = _JUDGE_URL,
    judge_model: str | None = _JUDGE_MODEL,
    judge_key_env: str | None = _JUDGE_KEY,
) -> None:
    """Analyze DIR and write report.html (self-contained, plots inline), report.md and analysis.json.

    Prints the HTML report's path.
    """
    from sftscope.progress import progress_bar
    from sftscope.report.build import build_report

    runs_meta, judge = _runs_meta(runs), _judge(judge_url, judge_model, judge_key_env)
    with progress_bar("report", total=2) as bar:

        def stage(name: str) -> None:
            bar.update(0, completed={"analyzing": 0, "rendering": 1}[name], status=name)

        files = build_report(
            directory,
            out_dir=out,
            title=title,
            runs_meta=runs_meta,
            reference=reference,
            n_boot=n_boot,
            behaviour_judge=judge,
            on_stage=stage,
        )
        bar.update(0, completed=2, status="done")
    typer.echo(str(files.html))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("analyze")(analyze_command)
    app.command("report")(report_command)
