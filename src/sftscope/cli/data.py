"""CLI commands of the data stage: `sftscope data build` and `sftscope data show`."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console, Group
from rich.panel import Panel
from rich.text import Text

from sftscope.cli.errors import reports_errors
from sftscope.data.build import build_dataset
from sftscope.data.io import read_records
from sftscope.errors import InputError

data_app = typer.Typer(help="Build and inspect data conditions.", no_args_is_help=True)
stdout = Console()


@data_app.command("build")
@reports_errors
def build(
    spec: Path = typer.Argument(..., help="The data spec (YAML)."),
    out: Path = typer.Option(..., "--out", "-o", help="Directory for train.jsonl, spec.yaml and the card."),
    skip_bad: bool = typer.Option(
        False,
        "--skip-bad",
        help="Skip bad input rows instead of stopping; they are counted and listed in the card.",
    ),
    tokenizer: str | None = typer.Option(
        None, "--tokenizer", help="Tokenizer (name or path) for the card's token lengths; overrides the spec."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace OUT even if it holds files that are not an earlier build."
    ),
) -> None:
    """Build a data condition from SPEC into OUT and write its data card.

    OUT is replaced only when the build is complete; a folder that is not an earlier build is refused.
    """

    card = build_dataset(spec, out, skip_bad=skip_bad, tokenizer=tokenizer, overwrite=overwrite)
    verification = card["verification"]
    pass_rate = "n/a" if verification is None else f"{verification['pass_rate']:.1%}"
    stdout.print(
        f"wrote {card['rows']} rows to {out / 'train.jsonl'} (pass rate {pass_rate}, "
        f"corrupted {card['corrupted']['share']:.1%}, bad rows skipped {card['bad_rows']['count']}, "
        f"hash {card['content_hash'][:12]})"
    )


def _clip(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit] + f" … ({len(text) - limit} more characters; --full shows all)"


@data_app.command("show")
@reports_errors
def show(
    path: Path = typer.Argument(..., help="A data directory (from `data build`) or a .jsonl/.parquet file."),
    n: int = typer.Option(3, "-n", help="How many examples to show."),
    full: bool = typer.Option(False, "--full", help="Do not shorten long reasoning or metadata."),
) -> None:
    """Pretty-print the first N examples: prompt, reasoning (dimmed), final part, gold answer, meta."""

    file = path / "train.jsonl" if path.is_dir() else path
    if not file.exists():
        raise InputError(str(file), "no such data file (build one with `sftscope data build`)")
    rows = read_records(file).records
    card = path / "card.json" if path.is_dir() else None
    if card is not None and card.exists():
        summary = json.loads(card.read_text(encoding="utf-8"))
        stdout.print(
            f"[bold]{summary['name']}[/bold]: {summary['rows']} rows, hash {summary['content_hash'][:12]}"
        )
    limit = None if full else 1500
    for row in rows[:n]:
        parts = [Text(f"{m.role}: ", style="bold cyan") + Text(m.content) for m in row.prompt]
        if row.reasoning is not None:
            parts.append(Text("<think>\n" + _clip(row.reasoning, limit) + "\n</think>", style="dim"))
        parts.append(Text(row.final or "(empty final)", style="bold" if row.final else "red"))
        parts.append(Text(f"answer: {row.answer}", style="green"))
        if row.meta:
            parts.append(
                Text("meta: " + _clip(json.dumps(row.meta, ensure_ascii=False), limit), style="magenta")
            )
        stdout.print(Panel(Group(*parts), title=f"{row.id} · {row.source}", title_align="left"))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.add_typer(data_app, name="data")
