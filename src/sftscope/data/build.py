"""Build a data condition from its spec: read the sources, run the transforms, write the data dir.

DIR/train.jsonl   native Example rows
DIR/spec.yaml     the resolved spec (defaults filled in, paths absolute, tokenizer used)
DIR/card.json     the data card; `content_hash` keys study caching
DIR/card.md       the same card for people
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sftscope.data.card import card_markdown, default_tokenizer, make_card, open_tokenizer, token_lengths
from sftscope.data.io import write_records
from sftscope.data.records import Example
from sftscope.data.sources import BuildContext, load_source, source_label
from sftscope.data.spec import DataSpec, dump_spec, load_spec
from sftscope.data.transforms import TransformLog
from sftscope.hashing import file_sha256
from sftscope.outdir import claim, fresh_output, require_free_space
from sftscope.progress import console


def run_spec(
    spec: DataSpec, spec_path: str | Path, *, skip_bad: bool = False
) -> tuple[list[Example], list[TransformLog], BuildContext]:
    """Load the sources and apply the transforms in memory; logs each step to the console."""
    ctx = BuildContext(spec_file=Path(spec_path), seed=spec.seed, skip_bad=skip_bad)
    rows: list[Example] = []
    for index, source in enumerate(spec.sources):
        ctx.where = f"sources[{index}]"
        loaded = load_source(source, ctx)
        console.print(f"source {source_label(source)}: {len(loaded)} rows")
        rows += loaded
    logs: list[TransformLog] = []
    for index, transform in enumerate(spec.transforms):
        ctx.where = f"transforms[{index}]"
        rows, log = transform.apply(rows, ctx)
        logs.append(log)
        console.print(log.summary())
    if ctx.bad:
        console.print(f"[yellow]skipped {len(ctx.bad)} bad rows (listed in the data card)[/yellow]")
    return rows, logs, ctx


def build_dataset(
    spec_path: str | Path,
    out_dir: str | Path,
    *,
    skip_bad: bool = False,
    tokenizer: str | None = None,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Build the condition into `out_dir` and return its card.

    `out_dir` may be absent, empty or an earlier build; any other folder only with `overwrite`. It is
    replaced only once the new build is complete (see `sftscope.outdir`).
    """
    out = Path(out_dir)
    claim(out, "data build", overwrite=overwrite, legacy=_is_data_dir)  # before minutes of building
    spec = load_spec(spec_path)
    spec.tokenizer = tokenizer or spec.tokenizer or default_tokenizer()
    length_tokenizer = open_tokenizer(spec.tokenizer)
    rows, logs, ctx = run_spec(spec, spec_path, skip_bad=skip_bad)
    if not rows:
        raise ctx.error("the spec produced no rows: nothing to train on")
    lengths = token_lengths(rows, length_tokenizer, spec.tokenizer, spec.suffix)
    require_free_space(out.parent, _text_bytes(rows), "train.jsonl")
    with fresh_output(out, "data build", overwrite=overwrite, legacy=_is_data_dir) as tmp:
        train = write_records(rows, tmp / "train.jsonl")
        card = make_card(spec, rows, logs, ctx, lengths, file_sha256(train))
        (tmp / "spec.yaml").write_text(dump_spec(spec), encoding="utf-8")
        text = json.dumps(card, indent=2, ensure_ascii=False) + "\n"
        (tmp / "card.json").write_text(text, encoding="utf-8")
        (tmp / "card.md").write_text(card_markdown(card), encoding="utf-8")
    return card


def _is_data_dir(folder: Path) -> bool:
    """A build from before output folders were marked."""
    return (folder / "card.json").is_file() and (folder / "train.jsonl").is_file()


def _text_bytes(rows: list[Example]) -> int:
    """A lower bound of train.jsonl's size (JSON adds keys, quotes and escapes to the text)."""
    return sum(
        sum(len(m.content) for m in row.prompt) + len(row.reasoning or "") + len(row.final or "")
        for row in rows
    )
