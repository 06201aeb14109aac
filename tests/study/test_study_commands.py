"""Stage command lines: what the study asks each stage to do."""

from __future__ import annotations

from pathlib import Path

from sftscope.study import commands
from sftscope.study.cells import expand_cells
from sftscope.study.spec import EvalSpec, LocalExecutorSpec, load_study_spec

SPEC = """\
name: cmd
root: .
bases: [{name: weak, model: micro-weak, capability: weak}]
conditions: [{name: long, data: long.yaml}]
presets:
  - name: micro
    preset: micro
    overrides: {steps: 8, lr: 0.001, schedule: {every: 4, steps: [1, 2]}, suffix: null}
seeds: [3]
eval: {suite: micro-quick, steps: [4, 8]}
"""


def cell(tmp_path: Path):  # type: ignore[no-untyped-def]
    (tmp_path / "long.yaml").write_text("name: long\n")
    (tmp_path / "study.yaml").write_text(SPEC)
    spec = load_study_spec(tmp_path / "study.yaml")
    return expand_cells(spec, tmp_path / "study.yaml")[0]


def test_train_line_carries_recipe_and_seed_last(tmp_path: Path) -> None:
    argv = commands.train(
        ["sftscope"],
        cell(tmp_path),
        model="micro-weak",
        data=Path("/d"),
        run=Path("/r"),
        executor=LocalExecutorSpec(),
    )
    assert argv[:4] == ["sftscope", "train", "--preset", "micro"]
    assert argv[4:] == [
        "steps=8",
        "lr=0.001",
        "schedule.every=4",
        "schedule.steps=[1, 2]",
        "suffix=null",
        "model=micro-weak",
        "data=/d",
        "out=/r",
        "seed=3",
    ]


def test_train_line_names_the_swept_steps_for_keep_swept(tmp_path: Path) -> None:
    argv = commands.train(
        ["sftscope"],
        cell(tmp_path),
        model="m",
        data=Path("/d"),
        run=Path("/r"),
        executor=LocalExecutorSpec(),
        swept=[4, 8],
    )
    assert argv[-1] == "keep_steps=[4,8]"
    from sftscope.train.config import parse_overrides

    assert parse_overrides(argv[-1:]) == {"keep_steps": [4, 8]}


def test_multi_gpu_training_runs_under_accelerate_and_resumes_with_its_recipe(tmp_path: Path) -> None:
    executor = LocalExecutorSpec(train_gpus=4, accelerate_config="configs/accelerate/fsdp.yaml")
    argv = commands.train(
        ["/venv/bin/sftscope"],
        cell(tmp_path),
        model="m",
        data=Path("/d"),
        run=Path("/r"),
        executor=executor,
        resume=True,
    )
    assert argv[1:6] == ["-m", "accelerate.commands.launch", "--num_processes", "4", "--config_file"]
    assert argv[7:10] == ["/venv/bin/sftscope", "train", "--preset"]
    # The recipe goes along, so `train --resume` can refuse a run started with another one.
    assert "lr=0.001" in argv and argv[-4:] == ["out=/r", "seed=3", "--resume", "/r"]


def test_eval_and_data_lines() -> None:
    spec = EvalSpec(suite="micro", overrides=["source.n=4"], extra_args=["-v"])
    argv = commands.evaluate(["s"], Path("/r"), spec=spec, store=Path("/x.duckdb"), steps=[4, 8])
    assert argv == [
        "s", "eval", "/r", "--suite", "micro", "--store", "/x.duckdb",
        "--steps", "4,8", "--set", "source.n=4", "-v",
    ]  # fmt: skip
    assert commands.data_build(["s"], Path("a.yaml"), Path("/o")) == [
        "s",
        "data",
        "build",
        "a.yaml",
        "--out",
        "/o",
    ]


def test_an_adaptive_eval_spec_sweeps_runs_adaptively_and_bases_fully() -> None:
    spec = EvalSpec(suite="micro", adaptive=True, budget=6)
    run = commands.evaluate(["s"], Path("/r"), spec=spec, store=Path("/x.duckdb"), steps=None, run=True)
    base = commands.evaluate(["s"], Path("/m"), spec=spec, store=Path("/b.duckdb"), steps=None)
    assert run[-3:] == ["--adaptive", "--budget", "6"]
    assert "--adaptive" not in base  # a base model is one checkpoint: nothing to choose from


def test_the_cli_is_the_one_of_this_python() -> None:
    cli = commands.sftscope_command(LocalExecutorSpec())
    assert Path(cli[0]).name in ("sftscope", "python", "python3") or cli[0].endswith("python")
    assert commands.sftscope_command(LocalExecutorSpec(sftscope=["srun", "sftscope"])) == ["srun", "sftscope"]
