"""CLI commands of the analyze and report stages: `sftscope analyze DIR`, `sftscope report DIR`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from sftscope.analysis_file import RunMeta
from sftscope.analyze.pipeline import analyze
from sftscope.analyze.runs import read_runs_file
from sftscope.cli.errors import reports_errors
from sftscope.errors import SftscopeError
from sftscope.evaluate.store import STORE_FILE, store_file
from sftscope.report.build import analysis_path, build_report

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
    judge = _judge(judge_url, judge_model, judge_key_env)
    analysis = analyze(directory, _runs_meta(runs), reference=reference, n_boot=n_boot, behaviour_judge=judge)
    target = out or store_file(directory).parent
    target.mkdir(parents=True, exist_ok=True)
    typer.echo(str(analysis.write(target)))


@reports_errors
def report_command(
    directory: Path = typer.Argument(
        ..., help="A directory holding analysis.json (or the file itself); else a run or study store."
    ),
    out: Path | None = typer.Option(None, "--out", help="Where to write the report (default: DIR)."),
    title: str | None = typer.Option(
        None, "--title", help="Report title (default: from the directory name)."
    ),
) -> None:
    """Write report.html (self-contained, plots inline) and report.md from DIR's analysis.json.

    A directory with a results store but no analysis.json is analyzed first with the defaults of
    `sftscope analyze` (run that command for other options). Prints the HTML report's path.
    """
    path = analysis_path(directory)
    store = path.parent / STORE_FILE
    if not path.is_file() and store.is_file():
        typer.echo(f"no analysis.json in {path.parent}: analyzing {store} with the defaults", err=True)
        analyze(store).write(path.parent)
    elif path.is_file() and store.is_file() and store.stat().st_mtime > path.stat().st_mtime:
        typer.echo(
            f"note: {path} is older than {store}; run `sftscope analyze` again to include new rows", err=True
        )
    files = build_report(directory, out_dir=out, title=title)
    typer.echo(str(files.html))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("analyze")(analyze_command)
    app.command("report")(report_command)
