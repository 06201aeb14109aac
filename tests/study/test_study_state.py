"""The study state helpers that a live display and `status` read while workers write."""

from __future__ import annotations

import json
from pathlib import Path

from sftscope.study.state import train_progress


def test_train_progress_reads_last_complete_metrics_line_and_total(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"step": 1}) + "\n" + json.dumps({"step": 2}) + "\n" + '{"step": 3, "lo'
    )
    (tmp_path / "manifest.json").write_text(json.dumps({"total_steps": 8}))
    assert train_progress(tmp_path) == (2, 8)


def test_train_progress_survives_a_manifest_caught_mid_write(tmp_path: Path) -> None:
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 5}) + "\n")
    (tmp_path / "manifest.json").write_text("")  # a writer truncated it and has not written yet
    assert train_progress(tmp_path) == (5, None)
    (tmp_path / "manifest.json").write_text('{"total_steps": 8, "checkp')
    assert train_progress(tmp_path) == (5, None)


def test_train_progress_of_a_run_not_started(tmp_path: Path) -> None:
    assert train_progress(tmp_path) == (0, None)
