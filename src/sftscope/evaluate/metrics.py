"""Aggregates of a sweep: per (run, step, task) avg@k, unbiased pass@k, maj@k, truncation rate, mean
output tokens and error count, each with a percentile bootstrap CI over prompts.

Every metric is first reduced to one value per prompt, then averaged (or, for the error count,
summed) over prompts; the bootstrap resamples prompts, since prompts, not samples, are the units
a benchmark draws.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass
from math import comb
from pathlib import Path

import numpy as np
import pyarrow as pa

from sftscope.outdir import atomic_file
from sftscope.stats import DEFAULT_BOOT, interval

CORRECT = 1.0 - 1e-9  # a sample counts as correct (pass@k, maj@k) at full score; avg@k keeps partial credit


def pass_at_k(n: int, c: int, k: int) -> float:
    """Chen et al. (2021): the chance that k of n samples, c of them correct, include a correct one."""
    if k > n:
        raise ValueError(f"pass@{k} needs at least {k} samples, got {n}")
    return 1.0 - comb(n - c, k) / comb(n, k)


def majority(answers: list[str | None], scores: list[float]) -> float:
    """maj@k of one prompt: the score of the most frequent extracted answer (first seen wins ties)."""
    counts = Counter(a for a in answers if a is not None)
    if not counts:
        return 0.0
    top = max(counts.values())
    winner = next(a for a in answers if a is not None and counts[a] == top)
    return scores[answers.index(winner)]


def prompt_value(metric: str, scores: list[float], answers: list[str | None]) -> float:
    """One prompt's value of avg@k / pass@k / maj@k; samples are in sample_idx order."""
    kind, k = metric.split("@")
    k_int = int(k)
    if len(scores) < k_int:
        raise ValueError(f"{metric} needs {k_int} samples per prompt, got {len(scores)}")
    if kind == "avg":
        return float(np.mean(scores[:k_int]))
    if kind == "pass":
        return pass_at_k(len(scores), sum(s >= CORRECT for s in scores), k_int)
    if kind == "maj":
        return majority(answers[:k_int], [1.0 if s >= CORRECT else 0.0 for s in scores[:k_int]])
    raise ValueError(f"unknown metric '{metric}'")


@dataclass
class Aggregate:
    """One metric of one (run, step, task)."""

    run: str
    step: int
    task: str
    domain: str
    higher_is_better: bool
    metric: str
    value: float
    ci_lo: float
    ci_hi: float
    n_prompts: int
    n_samples: int


SCHEMA = pa.schema(
    [
        ("run", pa.string()),
        ("step", pa.int64()),
        ("task", pa.string()),
        ("domain", pa.string()),
        ("higher_is_better", pa.bool_()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("ci_lo", pa.float64()),
        ("ci_hi", pa.float64()),
        ("n_prompts", pa.int64()),
        ("n_samples", pa.int64()),
    ]
)


def aggregate(
    samples: pa.Table,
    metrics: dict[str, list[str]] | None = None,
    *,
    n_boot: int = DEFAULT_BOOT,
    seed: int = 0,
) -> list[Aggregate]:
    """Aggregates of a `ResultsStore.samples()` table; tasks missing from `metrics` get avg@(samples)."""
    metrics = metrics or {}
    groups: dict[tuple[str, int, str], dict[str, list[dict]]] = {}
    for row in samples.select(
        [
            "run",
            "step",
            "task",
            "domain",
            "higher_is_better",
            "prompt_id",
            "sample_idx",
            "extracted",
            "score",
            "status",
            "output_tokens",
        ]
    ).to_pylist():
        groups.setdefault((row["run"], row["step"], row["task"]), {}).setdefault(row["prompt_id"], []).append(
            row
        )
    out: list[Aggregate] = []
    for (run, step, task), prompts in sorted(groups.items()):
        rows = [sorted(r, key=lambda x: x["sample_idx"]) for _, r in sorted(prompts.items())]
        first = rows[0][0]
        n_samples = sum(len(r) for r in rows)
        fewest = min(len(r) for r in rows)
        per_prompt: dict[str, np.ndarray] = {}
        for metric in metrics.get(task) or [f"avg@{fewest}"]:
            if int(metric.split("@")[1]) > fewest:
                continue  # not enough samples stored yet for this k
            per_prompt[metric] = np.array(
                [
                    prompt_value(metric, [x["score"] or 0.0 for x in r], [x["extracted"] for x in r])
                    for r in rows
                ]
            )
        per_prompt["truncation_rate"] = np.array(
            [np.mean([x["status"] == "truncated" for x in r]) for r in rows]
        )
        tokens = [[x["output_tokens"] for x in r if x["output_tokens"] is not None] for r in rows]
        if all(tokens):
            per_prompt["mean_output_tokens"] = np.array([np.mean(t) for t in tokens])
        per_prompt["errors"] = np.array([sum(x["status"] in ("error", "timeout") for x in r) for r in rows])
        for name, values in per_prompt.items():
            est = interval(values, total=name == "errors", n_boot=n_boot, seed=seed)
            out.append(
                Aggregate(
                    run,
                    step,
                    task,
                    first["domain"],
                    bool(first["higher_is_better"]),
                    name,
                    est.value,
                    est.lo,
                    est.hi,
                    len(rows),
                    n_samples,
                )
            )
    return out


def write_aggregates(aggregates: list[Aggregate], directory: str | Path) -> tuple[Path, Path]:
    """aggregates.parquet and aggregates.json in `directory` (beside the store)."""
    import json

    import pyarrow.parquet as pq

    directory = Path(directory)
    rows = [asdict(a) for a in aggregates]
    parquet, js = directory / "aggregates.parquet", directory / "aggregates.json"
    with atomic_file(parquet) as tmp:
        pq.write_table(pa.Table.from_pylist(rows, schema=SCHEMA), tmp)
    with atomic_file(js) as tmp:
        tmp.write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    return parquet, js
