"""CLI commands of the pretrain stage: `sftscope pretrain --preset NAME` builds a micro base model."""

from __future__ import annotations

from pathlib import Path

import typer

from sftscope.cli.errors import reports_errors
from sftscope.models.micro import PRESETS
from sftscope.train.pretrain import pretrain


@reports_errors
def pretrain_command(
    preset: str = typer.Option(..., "--preset", help=f"Micro base to build: one of {', '.join(PRESETS)}."),
    out: Path | None = typer.Option(
        None, "--out", help="Where to export the base (default: the shipped models/bases/<preset>/)."
    ),
    work: Path | None = typer.Option(
        None, "--work", help="Corpus, initial weights and training run (default: ./pretrain-runs/<preset>)."
    ),
    steps: int | None = typer.Option(None, "--steps", min=1, help="Override the preset's step budget."),
    retrain_tokenizer: bool = typer.Option(
        False, "--retrain-tokenizer", help="Train the BPE tokenizer anew instead of reusing the shipped one."
    ),
    threads: int = typer.Option(
        1, "--threads", min=1, help="torch CPU threads; the shipped bases used 1 (float sums depend on it)."
    ),
    overwrite: bool = typer.Option(
        False,
        "--overwrite",
        help="Replace --out and --work/run even if they hold files pretrain did not write.",
    ),
) -> None:
    """Pretrain a micro base on the procedural micro-world corpus with the project's training loop.

    Same preset, same seeds and the shipped tokenizer give the same weights on CPU.
    Prints the base's directory.
    """
    import torch
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    torch.set_num_threads(threads)
    base = pretrain(
        preset, out=out, work=work, steps=steps, retrain_tokenizer=retrain_tokenizer, overwrite=overwrite
    )
    typer.echo(str(base))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("pretrain")(pretrain_command)
