"""metrics.jsonl rows, truncation on resume, and the optional trackers."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from sftscope.errors import InputError
from sftscope.train.metrics import MetricsLog, read_metrics, truncate_metrics


def test_rows_are_appended_and_truncated_after_a_step(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, [], {})
    for step in range(1, 5):
        log.log({"step": step, "loss": 1.0 / step})
    log.close()
    with (tmp_path / "metrics.jsonl").open("a") as handle:
        handle.write('{"step": 5, "lo')  # a kill mid-write
    truncate_metrics(tmp_path, 2)
    assert [row["step"] for row in read_metrics(tmp_path)] == [1, 2]


@pytest.mark.skipif(importlib.util.find_spec("tensorboard") is None, reason="tensorboard not installed")
def test_tensorboard_gets_the_numeric_columns(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path, ["tensorboard"], {})
    log.log({"step": 1, "loss": 2.5, "lr": 1e-3, "note": "text is skipped"})
    log.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))
    assert json.loads((tmp_path / "metrics.jsonl").read_text())["note"] == "text is skipped"


@pytest.mark.skipif(importlib.util.find_spec("wandb") is not None, reason="wandb is installed")
def test_a_named_tracker_that_is_missing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="wandb is not installed") as info:
        MetricsLog(tmp_path, ["wandb"], {})
    assert info.value.field == "report_to"
