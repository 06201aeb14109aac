"""A real 2 × 2 micro study (tiny random models, real stage subprocesses): it is SIGKILLed while a
cell trains, then resumed: finished cells are not redone and the killed run continues from its last
checkpoint."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sftscope.study.state import StateFile, StudyDir

DATA = """\
name: {name}
sources:
  - kind: countdown
    n: 24
    style: {style}
    settings: {{min_numbers: 3, max_numbers: 3, max_value: 10, max_target: 30}}
"""
SUITE = """\
name: tiny
overrides: [source.n=2, sampling.max_new_tokens=8]
tasks: [countdown]
"""
STUDY = """\
name: resume
root: .
bases:
  - {{name: tiny-a, model: {a}, capability: weak}}
  - {{name: tiny-b, model: {b}, capability: strong}}
conditions:
  - {{name: long-cot, data: long.yaml}}
  - {{name: answer-only, data: answer.yaml}}
presets:
  - name: micro
    preset: micro
    overrides: {{steps: 150, batch_size: 4, schedule: {{every: 25, log_spaced: false}}, progress: false}}
eval: {{suite: {suite}, steps: [25]}}
executor: {{workers: 2, threads_per_job: 1}}
"""


def second_base(first: Path, out: Path) -> Path:
    """The tiny model with other weights: a second base of the same shape and tokenizer."""
    import torch
    from safetensors.torch import load_file, save_file

    shutil.copytree(first, out)
    weights = load_file(out / "model.safetensors")
    generator = torch.Generator().manual_seed(1)
    shifted = {k: v + 0.02 * torch.randn(v.shape, generator=generator) for k, v in weights.items()}
    save_file(shifted, out / "model.safetensors", metadata={"format": "pt"})
    return out


def study_command(spec: Path, out: Path) -> list[str]:
    cli = Path(sys.executable).with_name("sftscope")
    return [str(cli) if cli.exists() else "sftscope", "study", "run", str(spec), "--out", str(out)]


def cell_states(study: StudyDir) -> dict[str, StateFile]:
    manifest = json.loads(study.manifest.read_text()) if study.manifest.exists() else {"cells": {}}
    return {cell: StateFile(study.cell_state(cell), cell) for cell in manifest["cells"]}


@pytest.mark.slow
def test_study_resumes_after_sigkill_without_redoing_finished_cells(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    (tmp_path / "long.yaml").write_text(DATA.format(name="tiny-long", style="long-cot"))
    (tmp_path / "answer.yaml").write_text(DATA.format(name="tiny-answer", style="answer-only"))
    (tmp_path / "suite.yaml").write_text(SUITE)
    b = second_base(tiny_model_dir, tmp_path / "tiny-b")
    spec = tmp_path / "study.yaml"
    spec.write_text(STUDY.format(a=tiny_model_dir, b=b, suite=tmp_path / "suite.yaml"))
    study = StudyDir(tmp_path / "out")

    log = (tmp_path / "first.log").open("w")
    first = subprocess.Popen(study_command(spec, study.root), stdout=log, stderr=subprocess.STDOUT)
    # Kill once a cell is finished and another is training past its first checkpoint.
    victim, deadline = None, time.monotonic() + 600
    while victim is None:
        assert first.poll() is None, (
            "the study ended before it could be killed: " + (tmp_path / "first.log").read_text()
        )
        assert time.monotonic() < deadline, "no moment to kill the study"
        states = cell_states(study)
        finished = [c for c, s in states.items() if s.status("eval") == "done"]
        for cell, state in states.items():
            manifest = study.run_dir(cell) / "manifest.json"
            training = finished and state.status("train") == "running" and manifest.exists()
            if training and json.loads(manifest.read_text())["checkpoints"]:
                victim = cell
        time.sleep(0.05)
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    log.close()
    before = {c: json.loads(study.cell_state(c).read_text()) for c in finished}

    second = subprocess.run(study_command(spec, study.root), capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr[-3000:]
    assert second.stdout.strip().endswith("report.html")

    states = cell_states(study)
    assert len(states) == 4 and all(
        s.status(stage) == "done" for s in states.values() for stage in ("train", "eval")
    )
    for cell in finished:  # untouched: same records, one attempt each
        assert json.loads(study.cell_state(cell).read_text())["stages"] == before[cell]["stages"]
    train = states[victim].stages["train"]
    assert train["attempts"] == 2
    assert "resuming after step" in study.log(f"train:{victim}").read_text()
    metrics = (study.run_dir(victim) / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in metrics] == list(range(1, 151))
    assert (study.root / "report.html").is_file()
