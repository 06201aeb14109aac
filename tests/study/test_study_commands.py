"""Stage command lines: what the study asks each stage to do."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftscope.errors import InputError
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


def test_a_backend_spec_becomes_the_eval_options() -> None:
    vllm = EvalSpec.model_validate(
        {
            "suite": "paper",
            "backend": {"kind": "vllm", "batch_size": 64, "engine_args": {"dtype": "bfloat16"}},
        }
    )
    argv = commands.evaluate(["sftscope"], "run", spec=vllm, store=Path("s.duckdb"), steps=None)
    assert argv[-6:] == ["--backend", "vllm", "--batch-size", "64", "--vllm-arg", "dtype=bfloat16"]
    default = EvalSpec.model_validate({"suite": "micro", "backend": {"batch_size": 8}})
    assert default.backend.kind == "transformers" and commands.backend_args(default.backend) == [
        "--batch-size",
        "8",
    ]
    assert commands.backend_args(EvalSpec(suite="micro").backend) == []


def test_an_unknown_backend_kind_is_a_located_error(tmp_path: Path) -> None:
    spec = tmp_path / "study.yaml"
    spec.write_text(
        "name: s\nbases: [{name: b, model: micro-weak}]\nconditions: [{name: c, data: d.yaml}]\n"
        "presets: [{name: p, preset: micro}]\neval:\n  suite: micro\n  backend: {kind: tgi}\n"
    )
    (tmp_path / "d.yaml").write_text("name: d\n")
    with pytest.raises(InputError) as error:
        load_study_spec(spec)
    message = str(error.value)
    assert "line 7" in message and "eval.backend" in message and "tgi" in message, message
