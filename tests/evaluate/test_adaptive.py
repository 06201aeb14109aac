"""The adaptive sweep on planted curves: the coarse set, bisection where the dip is, the budget, the
plan in the store, a resumed sweep, and `sftscope eval --adaptive` end to end."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from sftscope.analyze.dips import analyze_curve
from sftscope.analyze.planted import PlantedCurve, planted_curve
from sftscope.cli import app
from sftscope.evaluate.adaptive import (
    COARSE,
    DENSIFY,
    PIN_BOTTOM,
    adaptive_sweep,
    bisect,
    coarse_steps,
)
from sftscope.evaluate.store import ResultsStore, TaskEntry
from sftscope.evaluate.sweep import SweepStats
from sftscope.evaluate.targets import Target
from sftscope.stats import task_seed

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from fake_run import make_run

DENSE = list(range(0, 129, 2))


def test_coarse_steps_are_one_per_doubling_with_base_and_last() -> None:
    assert coarse_steps(DENSE) == [0, 2, 4, 8, 16, 32, 64, 128]
    assert coarse_steps([0, 10, 20]) == [0, 10, 20]
    assert coarse_steps([0, 5, 10, 15, 20, 25, 30, 35, 40]) == [0, 5, 10, 20, 40]


def test_bisect_takes_the_saved_checkpoint_nearest_the_log_midpoint() -> None:
    assert bisect(DENSE, 16, 64) == 32
    assert bisect(DENSE, 0, 8) == 2  # log1p midpoint of 0 and 8 is 2
    assert bisect(DENSE, 16, 18) is None


def _store_writer(store: ResultsStore, curve: PlantedCurve) -> tuple[list[Target], list]:
    """Targets of the planted run, and a sweep that stores their precomputed rows (calls logged)."""
    store.register_tasks([TaskEntry("t", "cross-domain", "exact", "spec", True)])
    calls: list[list[int]] = []

    def sweep(targets: list[Target]) -> SweepStats:
        calls.append([t.step for t in targets])
        rows = []
        for target in targets:
            store.register_model(target.run, target.step, target.model_hash, None)
            for p, score in enumerate(curve.scores[curve.steps.index(target.step)]):
                status = "ok" if score == 1.0 else "wrong"
                rows.append(
                    {
                        "model_hash": target.model_hash,
                        "task": "t",
                        "sampling_hash": "spec",
                        "seed": 0,
                        "prompt_id": f"p{p:03d}",
                        "sample_idx": 0,
                        "score": float(score),
                        "status": status,
                    }
                )
        return SweepStats(computed=store.add_samples(rows), loaded=len(targets))

    return [Target("run", s, "-", f"hash-{s}") for s in curve.steps], [sweep, calls]


def _dip() -> PlantedCurve:
    """A dip of 3 CI widths over 280 prompts, bottom planted at step 20, back above base by 128."""
    curve = planted_curve("dip-and-recovery", DENSE, 280, 3.0, np.random.default_rng(1))
    assert curve.bottom_step == 20
    return curve


def _label(curve: PlantedCurve, steps: list[int]) -> tuple[str, int | None]:
    index = [curve.steps.index(s) for s in steps]
    result = analyze_curve("run", "t", "cross-domain", True, steps, curve.scores[index], seed=task_seed("t"))
    assert result is not None
    return result.label, result.bottom_step


def test_a_dip_is_found_and_pinned_with_a_fraction_of_the_checkpoints(tmp_path: Path) -> None:
    curve = _dip()
    with ResultsStore(tmp_path / "s.duckdb") as store:
        targets, (sweep, calls) = _store_writer(store, curve)
        plan, stats = adaptive_sweep(targets, store, sweep)
        recorded = store.sweep_plan().to_pylist()
    steps = [e.step for e in plan]
    assert calls[0] == coarse_steps(DENSE) and len(calls) > 1  # coarse first, then refinement rounds
    assert stats.computed == 280 * len(steps) and stats.loaded == len(steps)
    assert len(steps) < len(DENSE) / 2
    dense_label, dense_bottom = _label(curve, DENSE)
    label, bottom = _label(curve, steps)
    assert label == dense_label == "dip-and-recovery"
    assert bottom is not None and dense_bottom is not None
    assert abs(DENSE.index(bottom) - DENSE.index(dense_bottom)) <= 1
    i = steps.index(bottom)  # pinned: both neighbours are the adjacent saved checkpoints
    assert steps[i - 1] == bottom - 2 and steps[i + 1] == bottom + 2
    reasons = {e.step: e.reason for e in plan}
    assert all(reasons[s] == COARSE for s in coarse_steps(DENSE))
    assert any(r.startswith(PIN_BOTTOM) for r in reasons.values())
    assert [(r["step"], r["round"], r["reason"]) for r in recorded] == [
        (e.step, e.round, e.reason) for e in plan
    ]


def test_a_borderline_dip_is_densified_until_it_is_the_dense_sweeps(tmp_path: Path) -> None:
    # A shallow dip (0.8 CI widths over 100 prompts): no coarse checkpoint is below base, but the
    # lowest is within half a standard error of it, so the curve is densified; without that the
    # sweep stopped at the coarse set and called the curve flat.
    steps = list(range(0, 101, 5))
    curve = planted_curve("dip-and-recovery", steps, 100, 0.8, np.random.default_rng(47))
    with ResultsStore(tmp_path / "s.duckdb") as store:
        targets, (sweep, _) = _store_writer(store, curve)
        plan, _ = adaptive_sweep(targets, store, sweep)
    evaluated = [e.step for e in plan]
    assert _label(curve, steps) == ("dip-and-recovery", 40)
    assert _label(curve, evaluated) == _label(curve, steps) and len(evaluated) < len(steps)
    assert _label(curve, coarse_steps(steps))[0] == "flat within noise"
    assert any(e.reason.startswith(DENSIFY.format(test="dip")) for e in plan)


def test_the_budget_caps_the_checkpoints(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "s.duckdb") as store:
        targets, (sweep, _) = _store_writer(store, _dip())
        plan, _ = adaptive_sweep(targets, store, sweep, budget=10)
    assert len(plan) == 10 and {0, 128} <= {e.step for e in plan}


def test_a_curve_without_change_stops_after_the_coarse_set(tmp_path: Path) -> None:
    flat = planted_curve("flat", DENSE, 40, 0.0, np.random.default_rng(0))
    constant = PlantedCurve(**{**flat.__dict__, "scores": np.tile(flat.scores[0], (len(DENSE), 1))})
    with ResultsStore(tmp_path / "s.duckdb") as store:
        targets, (sweep, calls) = _store_writer(store, constant)
        plan, _ = adaptive_sweep(targets, store, sweep)
    assert calls == [coarse_steps(DENSE)] and [e.step for e in plan] == coarse_steps(DENSE)


def test_a_resumed_sweep_makes_the_same_plan_and_computes_nothing(tmp_path: Path) -> None:
    curve = _dip()
    with ResultsStore(tmp_path / "s.duckdb") as store:
        targets, (sweep, _) = _store_writer(store, curve)
        first, _ = adaptive_sweep(targets, store, sweep)
        second, stats = adaptive_sweep(targets, store, sweep)
        assert store.sweep_plan().num_rows == len(first)
    assert second == first and stats.computed == 0


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tiny_model_dir, tmp_path_factory.mktemp("adaptive"), steps=(2, 4, 6, 8))


QUICK = ["--task", "countdown", "--set", "source.n=2", "--set", "sampling.max_new_tokens=4", "--quiet"]


def test_eval_adaptive_sweeps_the_coarse_set_and_records_it(run_dir: Path) -> None:
    # The coarse set of checkpoints 2, 4, 6, 8 is 2, 4, 8; a budget of 4 leaves 6 unevaluated.
    result = CliRunner().invoke(app, ["eval", str(run_dir), *QUICK, "--adaptive", "--budget", "4"])
    assert result.exit_code == 0, result.output
    assert "round 0, evaluating steps [0, 2, 4, 8]" in " ".join(result.output.split())
    with ResultsStore(run_dir / "results.duckdb", read_only=True) as store:
        plan = store.sweep_plan().to_pylist()
        swept = sorted(set(store.models()["step"].to_pylist()))
    assert [(r["step"], r["round"], r["reason"]) for r in plan] == [(s, 0, COARSE) for s in (0, 2, 4, 8)]
    assert swept == [0, 2, 4, 8]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "4"], "limits an adaptive sweep; add --adaptive"),
        (["--adaptive", "--budget", "1"], "at least 2 checkpoints"),
        (["--adaptive", "--steps", "0,2"], "at least two checkpoints"),
        (["--adaptive", "--every", "8"], "at least two checkpoints"),
    ],
)
def test_bad_adaptive_options(run_dir: Path, tmp_path: Path, args: list[str], message: str) -> None:
    store = tmp_path / "never.duckdb"
    result = CliRunner().invoke(app, ["eval", str(run_dir), *QUICK, *args, "--store", str(store)])
    assert result.exit_code == 2 and message in " ".join(result.output.split())
    assert not store.exists()
