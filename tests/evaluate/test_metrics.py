"""Aggregates: pass@k against the closed form, maj@k, avg@k, and the table-level
aggregate that keeps truncated and error rows visible."""

from __future__ import annotations

from itertools import combinations
from math import comb
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sftscope.evaluate.metrics import (
    aggregate,
    majority,
    pass_at_k,
    prompt_value,
    write_aggregates,
)


@pytest.mark.parametrize("n", [1, 2, 5, 8])
def test_pass_at_k_matches_the_closed_form_and_enumeration(n: int) -> None:
    for c in range(n + 1):
        for k in range(1, n + 1):
            closed = 1 - comb(n - c, k) / comb(n, k)
            # Enumerate every k-subset of n samples whose first c are correct.
            subsets = list(combinations(range(n), k))
            enumerated = sum(any(i < c for i in s) for s in subsets) / len(subsets)
            assert pass_at_k(n, c, k) == pytest.approx(closed) == pytest.approx(enumerated)
    with pytest.raises(ValueError):
        pass_at_k(2, 1, 3)


def test_known_values() -> None:
    assert pass_at_k(10, 3, 1) == pytest.approx(0.3)  # pass@1 is the mean
    assert pass_at_k(10, 0, 5) == 0.0 and pass_at_k(10, 6, 5) == 1.0  # fewer than k wrong: certain


def test_majority_and_avg() -> None:
    assert majority(["4", "5", "4", None], [1.0, 0.0, 1.0, 0.0]) == 1.0
    assert majority(["5", "4", "4", "5"], [0.0, 1.0, 1.0, 0.0]) == 0.0  # a tie goes to the first seen
    assert majority([None, None], [0.0, 0.0]) == 0.0
    assert prompt_value("avg@2", [1.0, 0.5, 0.0], ["a", "b", "c"]) == 0.75  # partial credit kept; first k
    assert prompt_value("pass@2", [1.0, 0.5, 0.0], ["a", "b", "c"]) == pytest.approx(pass_at_k(3, 1, 2))
    assert prompt_value("maj@3", [0.0, 1.0, 1.0], ["x", "y", "y"]) == 1.0
    with pytest.raises(ValueError):
        prompt_value("avg@4", [1.0], ["a"])


def _table(rows: list[dict]) -> pa.Table:
    base = {
        "run": "r",
        "step": 0,
        "task": "t",
        "domain": "general",
        "higher_is_better": True,
        "extracted": None,
        "output_tokens": 10,
    }
    return pa.Table.from_pylist([{**base, **row} for row in rows])


def test_aggregate_counts_truncation_and_errors_apart(tmp_path: Path) -> None:
    rows = [
        {"prompt_id": "a", "sample_idx": 0, "score": 1.0, "status": "ok", "extracted": "1"},
        {"prompt_id": "a", "sample_idx": 1, "score": 0.0, "status": "truncated"},
        {"prompt_id": "b", "sample_idx": 0, "score": 0.0, "status": "error"},
        {
            "prompt_id": "b",
            "sample_idx": 1,
            "score": 0.0,
            "status": "wrong",
            "extracted": "2",
            "output_tokens": 30,
        },
    ]
    found = {
        a.metric: a for a in aggregate(_table(rows), {"t": ["avg@2", "pass@1", "maj@2", "pass@3"]}, n_boot=50)
    }
    assert "pass@3" not in found  # not enough samples stored for k=3: left out, not faked
    assert found["avg@2"].value == 0.25 and found["pass@1"].value == 0.25 and found["maj@2"].value == 0.5
    assert found["truncation_rate"].value == 0.25 and found["errors"].value == 1.0
    assert found["mean_output_tokens"].value == 15.0
    assert found["avg@2"].n_prompts == 2 and found["avg@2"].n_samples == 4
    assert found["avg@2"].ci_lo <= 0.25 <= found["avg@2"].ci_hi
    parquet, js = write_aggregates(list(found.values()), tmp_path)
    assert pq.read_table(parquet).num_rows == len(found) and js.read_text().startswith("[")
    write_aggregates([], tmp_path)  # an empty store still writes typed, empty files
    assert pq.read_table(parquet).num_rows == 0


def test_aggregate_defaults_to_avg_of_the_stored_samples() -> None:
    rows = [
        {"prompt_id": p, "sample_idx": i, "score": float(i), "status": "ok"} for p in "ab" for i in range(2)
    ]
    metrics = {a.metric for a in aggregate(_table(rows), n_boot=10)}
    assert "avg@2" in metrics
