"""The whole analysis on a synthetic study whose effects are planted (see analyze/synthetic.py)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from sftscope.analysis_file import Analysis
from sftscope.analyze.pipeline import analyze, analyze_samples
from sftscope.analyze.synthetic import STEPS, synthetic_runs, write_synthetic_store
from sftscope.analyze.validation import detector_validation
from sftscope.evaluate.store import ResultsStore
from sftscope.report.findings import statement
from sftscope.scoring.code import UNSANDBOXED_NOTE


@pytest.fixture(scope="module")
def analysis(tmp_path_factory: pytest.TempPathFactory) -> Analysis:
    store = write_synthetic_store(tmp_path_factory.mktemp("study") / "results.duckdb", seed=0)
    with ResultsStore(store) as results:  # as an adaptive sweep records it; a run since removed too
        results.record_plan(
            [(PLANNED, 0, 0, "coarse"), (PLANNED, 8, 1, "pin dip bottom"), ("gone", 2, 0, "coarse")]
        )
    return analyze(store.parent, synthetic_runs(), n_boot=500)


PLANNED = "micro-strong-long-cot"


def test_the_adaptive_plan_and_the_detector_validation_reach_the_analysis(analysis: Analysis) -> None:
    assert [(e.run, e.step, e.round, e.reason) for e in analysis.sweep_plan] == [
        (PLANNED, 0, 0, "coarse"),
        (PLANNED, 8, 1, "pin dip bottom"),
    ]
    figures = detector_validation()
    assert figures is not None  # the benchmark's figures ship with the package
    assert analysis.detector_validation == figures
    note = next(m for m in analysis.methods if m.key == "detector-validation")
    assert f"{figures.precision:.1%}" in note.text and f"{figures.false_positive_rate:.1%}" in note.text


def _pooled(analysis: Analysis, run: str, domain: str) -> str:
    return next(d.label for d in analysis.dips if d.run == run and d.task == f"all {domain}")


def test_planted_shapes_are_recovered(analysis: Analysis) -> None:
    assert _pooled(analysis, "micro-strong-long-cot", "cross-domain") == "dip-and-recovery"
    assert _pooled(analysis, "micro-weak-long-cot", "cross-domain") == "dip-no-recovery"
    assert _pooled(analysis, "micro-strong-answer-only", "cross-domain") == "monotone loss"
    assert _pooled(analysis, "micro-strong-long-cot", "in-domain") == "monotone gain"


def test_findings_follow_the_numbers(analysis: Analysis) -> None:
    found = {f.key: f for f in analysis.findings}
    assert list(found) == ["optimization", "data", "capability", "cost"]
    assert found["optimization"].verdict == "observed"
    assert "micro-strong-long-cot" in statement(found["optimization"])
    assert found["capability"].verdict == "observed"
    assert found["capability"].estimate is not None and found["capability"].estimate.lo > 0
    assert found["cost"].verdict == "observed"
    # Long-CoT does not beat short-CoT on the weak base in the planted data: not claimed in full.
    assert found["data"].verdict in ("partly observed", "not observed")
    assert "micro-weak" in statement(found["data"])


def test_methods_text_is_part_of_the_analysis(analysis: Analysis) -> None:
    keys = {m.key for m in analysis.methods}
    assert {"bootstrap", "dips"} <= keys
    assert all(m.text.strip() for m in analysis.methods)


def test_equal_budget_rows_share_one_step_per_base(analysis: Analysis) -> None:
    rows = [b for b in analysis.budget if b.domain == "cross-domain"]
    assert {b.step for b in rows} == {STEPS[-1]}
    assert {b.arm for b in rows} == {"long-cot", "short-cot", "answer-only"}
    assert all((b.vs_reference is None) == (b.arm == b.reference == "long-cot") for b in rows)


def test_curves_cover_every_metric_and_the_domain_average(analysis: Analysis) -> None:
    metrics = {
        c.metric for c in analysis.curves if c.run == "micro-strong-long-cot" and c.task == "countdown"
    }
    assert {"score", "output_tokens", "truncated", "repetition", "backtracking", "procedure_index"} <= metrics
    pooled = [c for c in analysis.curves if c.task == "all cross-domain"]
    assert len(pooled) == len(synthetic_runs())
    assert analysis.log_spaced_steps


def test_gain_vs_cost_per_run(analysis: Analysis) -> None:
    rows = {g.run: g for g in analysis.gain_cost}
    assert set(rows) == set(synthetic_runs())
    strong = rows["micro-strong-long-cot"]
    assert strong.safety_cost is not None and strong.safety_cost.lo > 0
    assert strong.cross_domain_gain is not None


def test_benign_look_alikes_are_over_refusal_not_safety(analysis: Analysis) -> None:
    # Long-CoT makes the model comply more with benign look-alikes: averaged into "safety" that
    # would hide the refusal loss, so the task is recognised from its rows and kept apart.
    domains = {t.task: t.domain for t in analysis.tasks}
    assert domains["benign"] == "over-refusal"
    assert domains["forbidden"] == "safety"
    strong = next(g for g in analysis.gain_cost if g.run == "micro-strong-long-cot")
    assert strong.over_refusal is not None and strong.over_refusal.hi < 0


def test_base_rows_are_shared_by_the_runs_of_a_base(analysis: Analysis) -> None:
    bases = {
        d.run: d.base.value for d in analysis.dips if d.task == "arith" and d.run.startswith("micro-strong")
    }
    assert len(set(bases.values())) == 1


def test_calibration_is_part_of_the_analysis(analysis: Analysis) -> None:
    splits = {(r.behaviour, r.split) for r in analysis.calibration}
    assert ("backtracking", "holdout") in splits
    assert all(0 <= r.precision <= 1 and 0 <= r.recall <= 1 for r in analysis.calibration)


def test_analysis_round_trips_through_json(analysis: Analysis, tmp_path: Path) -> None:
    path = analysis.write(tmp_path)
    assert path.name == "analysis.json"
    assert Analysis.read(path) == analysis


def test_a_run_with_only_its_base_evaluated_has_no_gain_or_cost(tmp_path: Path) -> None:
    from sftscope.analysis_file import RunInfo
    from sftscope.evaluate.store import ResultsStore

    store = write_synthetic_store(tmp_path / "results.duckdb", seed=0, n_prompts=8)
    runs = synthetic_runs()
    base = next(iter(runs.values())).base
    with ResultsStore(store) as results:  # a run whose sweep has so far reached only step 0
        results.register_model("untrained", 0, f"{base}@0", None)
    runs["untrained"] = RunInfo(run="untrained", condition="long-cot", base=base)
    result = analyze(store.parent, runs, n_boot=100)
    gained = {g.run for g in result.gain_cost}
    assert "untrained" not in gained and gained == set(synthetic_runs())
    only = analyze_only_base(tmp_path / "alone", base)
    cost = next(f for f in only.findings if f.key == "cost")
    assert cost.verdict == "not measurable" and (cost.reason or "").startswith("no run has a safety task")


def analyze_only_base(folder: Path, base: str) -> Analysis:
    """A store holding one model at step 0 only (`sftscope eval MODEL`)."""
    from sftscope.evaluate.store import ResultsStore

    store = write_synthetic_store(folder / "results.duckdb", seed=0, n_prompts=8)
    with ResultsStore(store) as results:
        results.con.execute("DELETE FROM models WHERE step > 0 OR model_hash <> ?", [f"{base}@0"])
    return analyze(store.parent, n_boot=100)


def test_a_step_with_missing_prompts_is_noted(tmp_path: Path) -> None:
    from sftscope.evaluate.store import ResultsStore

    store = write_synthetic_store(tmp_path / "results.duckdb", seed=0, n_prompts=8)
    run = next(iter(synthetic_runs()))
    step = STEPS[-1]
    with ResultsStore(store) as results:  # as a sweep killed inside that checkpoint leaves it
        (task,) = results.con.execute("SELECT min(task) FROM samples").fetchone()
        results.con.execute(
            "DELETE FROM samples WHERE model_hash = ? AND task = ? AND prompt_id >= ?",
            [f"{run}@{step}", task, f"{task}-005"],
        )
    notes = analyze(store.parent, synthetic_runs(), n_boot=100).notes
    (note,) = [n for n in notes if "fewer prompts" in n]
    assert note.endswith(f"{run}/{task} (step {step}: 5/8)")


def test_rows_scored_without_the_sandbox_are_counted_and_warned_about(tmp_path: Path) -> None:
    store = write_synthetic_store(tmp_path / "results.duckdb", seed=0, n_prompts=6)
    with ResultsStore(store, read_only=True) as results:
        samples = results.samples()
    task = samples["task"][0].as_py()
    errors = [
        UNSANDBOXED_NOTE if t == task and i % 2 == 0 else e
        for i, (t, e) in enumerate(
            zip(samples["task"].to_pylist(), samples["error"].to_pylist(), strict=True)
        )
    ]
    marked = samples.set_column(samples.column_names.index("error"), "error", pa.array(errors, pa.string()))
    result = analyze_samples(marked, synthetic_runs(), n_boot=100)
    counts = {t.task: t.unsandboxed for t in result.tasks}
    assert counts[task] == sum(e == UNSANDBOXED_NOTE for e in errors) > 0
    assert all(n == 0 for t, n in counts.items() if t != task)
    assert any(n.startswith("WARNING: model-written code ran WITHOUT the sandbox") for n in result.notes)
    assert not any(
        "WITHOUT the sandbox" in n for n in analyze_samples(samples, synthetic_runs(), n_boot=100).notes
    )
