"""`sftscope demo`: the micro-scale study of the four questions, offline, on CPU, in minutes."""

from __future__ import annotations

from pathlib import Path

import typer

import sftscope
from sftscope.cli.errors import on_interrupt, reports_errors
from sftscope.cli.study import finish_run
from sftscope.errors import InputError
from sftscope.study.runner import run_study


def shipped_study(name: str) -> Path:
    """A study spec of the checkout this package runs from (studies/ beside src/)."""

    path = Path(sftscope.__file__).resolve().parents[2] / "studies" / f"{name}.yaml"
    if not path.is_file():
        raise InputError(str(path), "study spec not found: the demo runs from a clone (pip install -e .)")
    return path


@reports_errors
def demo_command(
    quick: bool = typer.Option(
        False, "--quick", help="The CI smoke version (≤ 3 min): studies/demo-quick.yaml."
    ),
    out: Path | None = typer.Option(None, "--out", help="Study directory; default runs/<study name>."),
    workers: int | None = typer.Option(None, "--workers", min=1, help="Jobs at once (default: the spec's)."),
) -> None:
    """Run studies/demo.yaml with the shipped micro-weak and micro-strong bases and print the report path.

    It asks the study's four questions at micro scale: does the cross-domain score dip and recover
    over long training (optimization); does verified long-CoT beat short-CoT, answer-only and corrupted
    traces (data); does the strong base gain where the weak one does not (capability); and what does it
    cost on the safety proxy (cost). Resumable: run it again to continue. Opens nothing.
    """

    with on_interrupt("finished jobs are kept; `sftscope demo` again resumes the study"):
        outcome = run_study(
            shipped_study("demo-quick" if quick else "demo"), out, executor="local", workers=workers
        )
    finish_run(outcome.root, outcome.failed, outcome.report)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("demo")(demo_command)
