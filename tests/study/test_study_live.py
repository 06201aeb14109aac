"""The live view and `study status`: readable in a narrow terminal."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console

from sftscope.study.live import cells_table
from sftscope.study.state import StateFile, StudyDir


def test_statuses_stay_whole_in_an_80_column_terminal(tmp_path: Path) -> None:
    study = StudyDir(tmp_path)
    cell = "micro-strong__long-cot-replay__micro-lr3e-4__s1-9873f8b3"
    study.manifest.write_text(json.dumps({"cells": {cell: {}}}))
    state = StateFile(study.cell_state(cell), cell)
    state.mark("data", "done")
    state.mark("train", "running")
    console = Console(width=80, record=True)
    console.print(cells_table(study))
    text = console.export_text()
    assert "done" in text and "running" in text and "pending" in text
    assert "…" not in text  # nothing cut short: the long cell id folds instead
    assert "".join(line.split("│")[1].strip() for line in text.splitlines() if line.count("│") > 2) == cell
