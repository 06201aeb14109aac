"""CLI commands of the train stage."""

from __future__ import annotations

from pathlib import Path

import typer

from sftscope.cli.errors import on_interrupt, reports_errors
from sftscope.errors import InputError
from sftscope.train.config import load_config
from sftscope.train.disk import run_plan
from sftscope.train.loop import resume as resume_run
from sftscope.train.loop import train
from sftscope.train.plan import format_plan


@reports_errors
def train_command(
    config: Path | None = typer.Argument(None, help="Train config YAML (see specs/train/)."),
    overrides: list[str] | None = typer.Argument(
        None, help="key=value overrides, e.g. lr=1e-4 schedule.every=10"
    ),
    preset: str | None = typer.Option(
        None, "--preset", help="Recipe under the file's values: paper, micro, ..."
    ),
    resume: Path | None = typer.Option(
        None,
        "--resume",
        help="Continue this run from its last checkpoint. A config given too must be the run's own.",
    ),
    resume_from: int | None = typer.Option(
        None, "--resume-from", help="With --resume: continue from this checkpoint step, dropping later ones."
    ),
    plan: bool = typer.Option(
        False,
        "--plan",
        help="Print memory per GPU, disk and steps from the model's config.json; train nothing.",
    ),
    gpus: int = typer.Option(1, "--gpus", min=1, help="GPUs the --plan shards weights and optimizer over."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace whatever is at the config's `out` (a run or a folder of yours)."
    ),
) -> None:
    """Fine-tune a causal LM on a data directory, with dense checkpoints and exact resume.

    Runs under `accelerate launch` unchanged (DDP or FSDP). Prints the run directory on stdout.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one progress bar (ours), not one per checkpoint write
    # typer hands a lone override to the CONFIG slot when no file is given.
    items = list(overrides or [])
    key, is_override, _ = str(config).partition("=")  # a value may be a path: look at the key only
    if config is not None and is_override and "/" not in key and not config.exists():
        items.insert(0, str(config))
        config = None
    if resume_from is not None and resume is None:
        raise InputError("command line", "--resume-from needs --resume RUN", field="--resume-from")
    if resume is not None:
        # A recipe given with --resume is checked against the run's own (overrides alone apply over
        # it), so a changed recipe is an error naming the fields; `out` is the run itself.
        base = config if config is not None else resume / "config.yaml"
        given = config is not None or (bool(items or preset) and base.is_file())
        resolved = load_config(base, [*items, f"out={resume}"], preset) if given else None
        target, start = resume, lambda: resume_run(resume, resolved, resume_from)
    else:
        resolved = load_config(config, items, preset)
        if plan:
            typer.echo(format_plan(run_plan(resolved, gpus), resolved))
            return
        target, start = Path(resolved.out), lambda: train(resolved, overwrite=overwrite)
    # Checkpoints are written atomically: the last complete one stands.
    with on_interrupt(f"continue from the last checkpoint with `sftscope train --resume {target}`"):
        run_dir = start()
    typer.echo(str(run_dir))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("train")(train_command)
