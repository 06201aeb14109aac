"""`--dry-run`: the plan of the shipped real-scale specs, computed without loading or fetching anything."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.study.plan import make_plan

STUDIES = Path(__file__).resolve().parents[2] / "studies"


def test_paper_plan_counts_the_reference_grid() -> None:
    plan = make_plan(STUDIES / "paper.yaml")
    assert len(plan.cells) == 4 * 4 + 4 * 5  # data-and-capability block + schedule variants on Math-CoT
    by_preset = {c.cell.preset.name: c for c in plan.cells}
    # 20,480 rows at global batch 256: 80 steps per epoch; a checkpoint every 10 steps.
    assert by_preset["paper"].steps == 640 and len(by_preset["paper"].checkpoints) == 64
    assert by_preset["paper-1ep"].steps == 80 and by_preset["paper-16ep"].steps == 1280
    # The reference's table steps that a run has, plus its final checkpoint.
    assert by_preset["paper"].evaluated == 8 and by_preset["paper-1ep"].evaluated == 4
    assert by_preset["paper-16ep"].evaluated == 9
    qwen14 = next(c for c in plan.cells if c.cell.id.startswith("qwen3-14b__math-cot__paper__"))
    # 640 steps × 256 rows × 6,000 tokens × 8 FLOPs × 14.77e9 params at 35% of 989 TFLOP/s.
    expected = 640 * 256 * 6000 * 8 * 14.77e9 / (989e12 * 0.35) / 3600
    assert math.isclose(qwen14.train_hours, expected, rel_tol=1e-9)
    assert all(c.eval_hours and c.eval_hours > 0 for c in plan.cells) and not plan.gaps


def test_dry_run_prints_cells_steps_and_gpu_hours() -> None:
    result = CliRunner().invoke(app, ["study", "run", str(STUDIES / "paper.yaml"), "--dry-run"])
    assert result.exit_code == 0, result.output
    text = result.output
    assert "36 cells" in text and "qwen3-14b__math-cot__paper__s1-" in text
    assert "optimizer steps" in text and "GPU-hours" in text and "assumptions:" in text
    assert "6000 tokens per example" in text  # the Math-CoT length assumption is stated


# Every shipped study but `paper` is planned here; `paper` has its own test above.
PLANNED = (
    "smollm2",
    "demo",
    "demo-quick",
    "replay",
    "micro-phenomena",
    "micro-state-lines",
    "micro-rehearsal",
    "micro-worked-endings",
    "micro-target-match",
    "micro5-search",
)


@pytest.mark.parametrize("name", PLANNED)
def test_every_shipped_spec_plans(name: str) -> None:
    plan = make_plan(STUDIES / f"{name}.yaml")
    assert plan.cells and all(c.steps for c in plan.cells)


def test_no_shipped_study_goes_unplanned() -> None:
    listed = {"paper", *PLANNED}
    assert {path.stem for path in STUDIES.glob("*.yaml")} == listed


def test_a_checkpoints_condition_plans_its_sweep_and_no_training(tmp_path: Path) -> None:
    for step in (2, 4, 6):
        folder = tmp_path / "trl-out" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"weights")
    spec = tmp_path / "study.yaml"
    spec.write_text(
        "name: external\nroot: .\nbases: [{name: strong, model: micro-strong, capability: strong}]\n"
        "conditions: [{name: trl, checkpoints: trl-out}]\npresets: [{name: micro, preset: micro}]\n"
        "eval: {suite: micro-quick, steps: [4]}\n"
        "cost: {cpu_train_tokens_per_s: 100, cpu_gen_tokens_per_s: 10}\n"
    )
    plan = make_plan(spec)
    (cell,) = plan.cells
    assert (cell.checkpoints, cell.evaluated, cell.train_hours, cell.disk_bytes) == ([2, 4, 6], 2, 0.0, 0.0)
    assert cell.eval_hours and cell.eval_hours > 0
    assert plan.jobs == 3  # baseline, the cell's sweep, the report


def test_plan_adds_disk_per_run() -> None:
    plan = make_plan(STUDIES / "paper.yaml")
    qwen14 = next(c for c in plan.cells if c.cell.id.startswith("qwen3-14b__math-cot__paper__"))
    # Not local: bf16 checkpoints of the spec's parameter count, all 64 kept, plus one TRL resume state
    # (fp32 weights and two AdamW moments).
    assert qwen14.disk_bytes == pytest.approx(14.77e9 * (2 * 64 + 12))
    text = CliRunner().invoke(app, ["study", "run", str(STUDIES / "paper.yaml"), "--dry-run"]).output
    assert "disk GB" in text and "GB of run directories" in text


def test_micro_phenomena_runs_three_seeds_of_the_full_grid_within_the_hour() -> None:
    plan = make_plan(STUDIES / "micro-phenomena.yaml")
    cells = {(c.cell.base.name, c.cell.condition.name, c.cell.seed) for c in plan.cells}
    assert len(cells) == 2 * 4 * 3 and {seed for *_, seed in cells} == {1, 2, 3}
    assert plan.wall_minutes is not None and plan.wall_minutes <= 60
    assert plan.spec.eval.suite == "micro2" and "sampling.max_new_tokens=160" in plan.spec.eval.overrides
