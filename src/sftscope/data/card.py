"""The data card: what a built condition contains, as JSON (for tools) and Markdown (for people).

It gives rows per source and per transform (the transform logs), the token-length distribution of
the rendered prompt + completion, the share of rows with backtracking markers, the verification pass
rate, the corrupted share, every bad row skipped under --skip-bad, and a content hash of the rows.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from sftscope.data.chat import render_completion, render_prompt, with_suffix
from sftscope.data.records import Example
from sftscope.data.sources import BuildContext
from sftscope.data.spec import DataSpec
from sftscope.data.transforms import TransformLog
from sftscope.errors import InputError
from sftscope.models.loading import load_tokenizer, resolve_model
from sftscope.progress import progress_bar
from sftscope.scoring.behaviours import has_backtracking

DEFAULT_TOKENIZER = "micro-strong"
HISTOGRAM_BINS = 20
TOKENIZE_CHUNK = 256
MD_LIST_LIMIT = 50  # rows quoted in card.md; card.json keeps every one


def default_tokenizer() -> str | None:
    """The shipped micro tokenizer when it exists."""
    return DEFAULT_TOKENIZER if resolve_model(DEFAULT_TOKENIZER) != DEFAULT_TOKENIZER else None


def distribution(values: list[int]) -> dict[str, Any]:
    """min, mean, p50, p90, p99, max and an equal-width histogram."""
    if not values:
        return {"count": 0}
    array = np.asarray(values)
    counts, edges = np.histogram(array, bins=HISTOGRAM_BINS if array.min() < array.max() else 1)
    return {
        "count": len(values),
        "min": int(array.min()),
        "mean": round(float(array.mean()), 2),
        **{f"p{q}": round(float(np.percentile(array, q)), 2) for q in (50, 90, 99)},
        "max": int(array.max()),
        "histogram": [
            {"lo": round(float(lo), 1), "hi": round(float(hi), 1), "count": int(c)}
            for lo, hi, c in zip(edges[:-1], edges[1:], counts, strict=True)
        ],
    }


def open_tokenizer(name: str | None) -> Any:
    """The tokenizer for the card's lengths, loaded and checked before the build spends any time."""
    if name is None:
        return None

    try:
        tokenizer = load_tokenizer(name)
    except (OSError, ValueError) as exc:
        raise InputError(name, f"could not load tokenizer: {exc}", field="tokenizer") from exc
    if getattr(tokenizer, "chat_template", None) is None or tokenizer.eos_token is None:
        raise InputError(name, "the tokenizer needs a chat template and an EOS token", field="tokenizer")
    return tokenizer


def token_lengths(
    rows: list[Example], tokenizer: Any, name: str | None, suffix: str | None
) -> dict[str, Any]:
    """Lengths of prompt + completion as training renders them, or word counts without a tokenizer."""
    if tokenizer is None:
        totals = [
            sum(len(m.content.split()) for m in with_suffix(row.prompt, suffix))
            + len(row.response_text().split())
            for row in rows
        ]
        note = "no tokenizer given and no micro tokenizer shipped: lengths are whitespace-separated words"
        return {"tokenizer": None, "unit": "words", "note": note, "total": distribution(totals)}
    prompt_lengths: list[int] = []
    completion_lengths: list[int] = []
    with progress_bar("token lengths", total=len(rows)) as bar:
        for start in range(0, len(rows), TOKENIZE_CHUNK):
            chunk = rows[start : start + TOKENIZE_CHUNK]
            prompts = [render_prompt(tokenizer, row.prompt, suffix) for row in chunk]
            completions = [render_completion(tokenizer, row) for row in chunk]
            for texts, lengths in ((prompts, prompt_lengths), (completions, completion_lengths)):
                encoded = tokenizer(texts, add_special_tokens=False)["input_ids"]
                lengths.extend(len(ids) for ids in encoded)
            bar.advance(0, len(chunk))
    totals = [p + c for p, c in zip(prompt_lengths, completion_lengths, strict=True)]
    return {
        "tokenizer": name,
        "unit": "tokens",
        "total": distribution(totals),
        "completion": distribution(completion_lengths),
    }


def _verification(logs: list[TransformLog]) -> dict[str, Any] | None:
    verified = [log for log in logs if log.name == "verify"]
    if not verified:
        return None
    counts: Counter[str] = Counter()
    for log in verified:
        counts.update(log.counts)
    rows_in = sum(log.rows_in for log in verified)
    return {"pass_rate": counts["correct"] / rows_in if rows_in else None, "counts": dict(counts)}


def make_card(
    spec: DataSpec,
    rows: list[Example],
    logs: list[TransformLog],
    ctx: BuildContext,
    lengths: dict[str, Any],
    content_hash: str,
) -> dict[str, Any]:
    """The card as a JSON-ready dict."""

    corrupted = Counter(row.meta["corruption"]["kind"] for row in rows if "corruption" in row.meta)
    with progress_bar("backtracking markers", total=len(rows)) as bar:
        backtracking = sum(has_backtracking(row.reasoning or row.final) for row in rows)
        bar.update(0, completed=len(rows))
    return {
        "name": spec.name,
        "description": spec.description,
        "spec_file": str(ctx.spec_file),
        "skip_bad": ctx.skip_bad,
        "rows": len(rows),
        "content_hash": content_hash,
        "sources": ctx.loads,
        "rows_by_source": dict(Counter(row.source for row in rows)),
        "transforms": [log.model_dump() for log in logs],
        "lengths": lengths,
        "backtracking_share": backtracking / len(rows) if rows else None,
        "verification": _verification(logs),
        "corrupted": {
            "share": sum(corrupted.values()) / len(rows) if rows else 0.0,
            "kinds": dict(corrupted),
        },
        "bad_rows": {
            "count": len(ctx.bad),
            "rows": [{"file": e.file, "line": e.line, "field": e.field, "reason": e.reason} for e in ctx.bad],
        },
    }


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.1f}%"


def _histogram_lines(histogram: list[dict[str, Any]]) -> list[str]:
    peak = max(b["count"] for b in histogram) or 1
    return [
        f"{b['lo']:>10.0f} - {b['hi']:<10.0f} {'#' * round(40 * b['count'] / peak)} {b['count']}"
        for b in histogram
    ]


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown table; cell text is escaped so a '|' or a line break in a reason or path cannot
    break it (a reason that lists several problems has one per line)."""

    def cell(value: Any) -> str:
        return " ".join(str("" if value is None else value).split()).replace("|", "\\|")

    def line(cells: list[Any]) -> str:
        return "| " + " | ".join(cell(c) for c in cells) + " |"

    return [line(header), line(["---"] * len(header)), *(line(r) for r in rows)]


def card_markdown(card: dict[str, Any]) -> str:
    """A readable rendering of the card."""
    verification = card["verification"]
    corrupted = card["corrupted"]
    out = [f"# Data card: {card['name']}", ""]
    if card["description"]:
        out += [card["description"], ""]
    out += _table(
        ["", ""],
        [
            ["rows", card["rows"]],
            ["content hash", f"`{card['content_hash']}`"],
            ["verification pass rate", _share(verification["pass_rate"]) if verification else "not verified"],
            ["corrupted share", f"{_share(corrupted['share'])} {corrupted['kinds'] or ''}"],
            ["rows with backtracking markers", _share(card["backtracking_share"])],
            ["bad rows skipped", card["bad_rows"]["count"]],
        ],
    )
    out += ["", "## Sources", ""]
    out += _table(
        ["source", "kind", "role", "rows", "bad rows"],
        [[s["source"], s["kind"], s["role"], s["rows"], s.get("bad_rows", 0)] for s in card["sources"]],
    )
    out += ["", "Rows by `source` field: " + ", ".join(f"{k} {v}" for k, v in card["rows_by_source"].items())]
    out += ["", "## Transforms", ""]
    out += _table(
        ["#", "transform", "rows in", "rows out", "counts"],
        [
            [
                i,
                log["name"],
                log["rows_in"],
                log["rows_out"],
                ", ".join(f"{k} {v}" for k, v in log["counts"].items()),
            ]
            for i, log in enumerate(card["transforms"])
        ],
    )
    lengths = card["lengths"]
    out += ["", f"## Lengths ({lengths['unit']}, tokenizer: {lengths['tokenizer'] or 'none'})", ""]
    if lengths.get("note"):
        out += [f"Note: {lengths['note']}.", ""]
    total = lengths["total"]
    if total["count"]:
        stats = ["min", "mean", "p50", "p90", "p99", "max"]
        parts = [part for part in ("total", "completion") if part in lengths]
        out += _table(["", *stats], [[part] + [lengths[part][s] for s in stats] for part in parts])
        out += ["", "Prompt + completion histogram:", "", "```", *_histogram_lines(total["histogram"]), "```"]
    bad = card["bad_rows"]
    if bad["count"]:
        out += ["", "## Bad rows skipped (--skip-bad)", ""]
        out += _table(
            ["file", "line", "field", "reason"],
            [[r["file"], r["line"], r["field"], r["reason"]] for r in bad["rows"][:MD_LIST_LIMIT]],
        )
        if bad["count"] > MD_LIST_LIMIT:
            out.append(f"\n{bad['count'] - MD_LIST_LIMIT} more in card.json.")
    return "\n".join(out) + "\n"
