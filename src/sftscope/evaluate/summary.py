"""The end of a sweep: aggregates written beside the store, and a compact table on the terminal."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sftscope.endpoint import METER
from sftscope.evaluate.metrics import Aggregate, aggregate, write_aggregates
from sftscope.evaluate.spec import TaskSpec
from sftscope.evaluate.store import SCORED, STORE_FILE, ResultsStore, StatusCount
from sftscope.evaluate.sweep import SweepStats
from sftscope.evaluate.targets import Target


def aggregates_dir(store_path: Path) -> Path:
    """`RUN/results.duckdb` -> `RUN/` (aggregates.*); any other store gets a folder of its own name, so
    stores sharing a directory (a study's per-base stores) do not overwrite each other's aggregates."""
    if store_path.name == STORE_FILE:
        return store_path.parent
    return store_path.parent / f"{store_path.stem}.aggregates"


def print_summary(
    store: ResultsStore,
    specs: list[TaskSpec],
    targets: list[Target],
    stats: SweepStats,
    *,
    n_boot: int = 1000,
    console: Console | None = None,
) -> list[Aggregate]:
    """Aggregate the whole store, write aggregates.parquet/.json, print the sweep's runs x steps x tasks."""
    aggregates = aggregate(store.samples(), {s.name: s.metrics for s in specs}, n_boot=n_boot)
    folder = aggregates_dir(store.path)
    folder.mkdir(parents=True, exist_ok=True)
    write_aggregates(aggregates, folder)
    # Logs are not terminals; rich would wrap them at 80 columns.
    console = console or Console(width=None if sys.stdout.isatty() else 200)
    steps = sorted({t.step for t in targets})
    index = {(a.run, a.step, a.task, a.metric): a for a in aggregates}
    counts = store.status_counts()
    for run in sorted({t.run for t in targets}):
        title = f"{run}: each task's first metric in %, [95% bootstrap CI over prompts]"
        table = Table(title=title, title_justify="left")
        columns = ("task", "domain", "metric", *(f"step {s}" for s in steps), "trunc", "tokens", "not scored")
        for column in columns:
            left = column in ("task", "domain", "metric", "not scored")
            table.add_column(column, justify="left" if left else "right", no_wrap=True)
        last = steps[-1]
        for spec in specs:
            metric = spec.metrics[0]
            cells = [_cell(index.get((run, s, spec.name, metric))) for s in steps]
            trunc = index.get((run, last, spec.name, "truncation_rate"))
            tokens = index.get((run, last, spec.name, "mean_output_tokens"))
            table.add_row(
                spec.name,
                spec.domain,
                metric,
                *cells,
                "-" if trunc is None else f"{trunc.value:.0%}",
                "-" if tokens is None else f"{tokens.value:.0f}",
                unscored(counts, run, set(steps), spec.name),
            )
        console.print(table)
    errors = stats.statuses.get("error", 0) + stats.statuses.get("timeout", 0)
    rate = stats.output_tokens / stats.generate_s if stats.generate_s else 0.0
    console.print(
        f"{stats.computed} rows computed ({errors} error/timeout), {stats.reused} reused, "
        f"{stats.loaded} model(s) loaded, {rate:.0f} output tokens/s; trunc and tokens at step {steps[-1]}, "
        f"not scored: rows of these steps whose status is neither ok nor wrong; aggregates in {folder}"
    )
    for line in METER.lines():  # endpoints this sweep called (served model, judges)
        console.print(f"endpoint {line}", markup=False, highlight=False)
    return aggregates


def unscored(counts: list[StatusCount], run: str, steps: set[int], task: str) -> str:
    """'error 3, truncated 2': a task's rows at these steps whose score says nothing about the answer."""
    totals: dict[str, int] = {}
    for c in counts:
        if c.run == run and c.step in steps and c.task == task and c.status not in SCORED:
            totals[c.status] = totals.get(c.status, 0) + c.count
    return ", ".join(f"{status} {n}" for status, n in sorted(totals.items())) or "-"


def _cell(found: Aggregate | None) -> str:
    if found is None:
        return "-"
    return f"{100 * found.value:.0f} [{100 * found.ci_lo:.0f},{100 * found.ci_hi:.0f}]"
