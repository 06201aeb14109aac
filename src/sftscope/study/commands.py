"""The one place that knows the stage command lines. Every job is an `sftscope` subprocess, so it is
isolated, killable and resumable, and the same line runs locally, as a Ray task or as a SLURM job."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from sftscope.config.overrides import to_overrides
from sftscope.study.cells import Cell
from sftscope.study.spec import BackendSpec, EvalSpec, ExecutorSpec, ReportSpec, VLLMBackendSpec


def sftscope_command(executor: ExecutorSpec) -> list[str]:
    """The CLI of the same installation as this process (workers share its filesystem)."""
    if executor.sftscope:
        return list(executor.sftscope)
    beside = Path(sys.executable).with_name("sftscope")
    if beside.exists():
        return [str(beside)]
    found = shutil.which("sftscope")
    return [found] if found else [sys.executable, "-c", "from sftscope.cli import main; main()"]


def data_build(cli: list[str], spec: Path, out: Path) -> list[str]:
    return [*cli, "data", "build", str(spec), "--out", str(out)]


def convert_base(cli: list[str], gguf: str, out: Path) -> list[str]:
    return [*cli, "study", "convert-base", gguf, "--out", str(out)]


def train(
    cli: list[str],
    cell: Cell,
    *,
    model: str,
    data: Path,
    run: Path,
    executor: ExecutorSpec,
    swept: list[int] | None = None,
    resume: bool = False,
) -> list[str]:
    """A training run of a cell; the study's seed goes last so it wins over the recipe's. `swept`:
    the eval steps, which a recipe with keep: swept keeps on disk. With resume=True it continues the
    killed run `run`, and `train` checks the recipe is still the run's."""
    args = ["train"]
    if cell.config_path is not None:
        args.append(str(cell.config_path))
    if cell.preset.preset is not None:
        args += ["--preset", cell.preset.preset]
    args += to_overrides(cell.preset.overrides)
    args += [f"model={model}", f"data={data}", f"out={run}", f"seed={cell.seed}"]
    if swept is not None:
        args.append(f"keep_steps=[{','.join(str(step) for step in swept)}]")
    if resume:
        args += ["--resume", str(run)]
    return _launcher(cli, executor) + args


def _launcher(cli: list[str], executor: ExecutorSpec) -> list[str]:
    """Multi-GPU training runs under accelerate with the shipped configs, never a home-made launcher."""
    if executor.train_gpus <= 1:
        return cli
    launch = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", str(executor.train_gpus)]
    if executor.accelerate_config:
        launch += ["--config_file", executor.accelerate_config]
    return [*launch, *cli]


def evaluate(
    cli: list[str],
    target: Path | str,
    *,
    spec: EvalSpec,
    store: Path,
    steps: list[int] | None,
    base: str | None = None,
    run: bool = False,
) -> list[str]:
    """`sftscope eval` of a model, or of a run's checkpoints (`run`, adaptively when the spec says so)."""
    args = [*cli, "eval", str(target), "--suite", spec.suite, "--store", str(store)]
    if steps:
        args += ["--steps", ",".join(str(step) for step in steps)]
    if base is not None:
        args += ["--base", base]
    if run and spec.adaptive:
        args += ["--adaptive"] + (["--budget", str(spec.budget)] if spec.budget is not None else [])
    for override in spec.overrides:
        args += ["--set", override]
    return args + backend_args(spec.backend) + list(spec.extra_args)


def backend_args(backend: BackendSpec) -> list[str]:
    """The `sftscope eval` options of a backend spec (none for the default engine and settings)."""
    args = [] if backend.kind == "transformers" else ["--backend", backend.kind]
    if backend.batch_size is not None:
        args += ["--batch-size", str(backend.batch_size)]
    if isinstance(backend, VLLMBackendSpec):
        for item in to_overrides(backend.engine_args):
            args += ["--vllm-arg", item]
    return args


def analyze(cli: list[str], study: Path, report: ReportSpec) -> list[str]:
    """The study analysis; run metadata comes from the study's runs.json beside its store."""
    args = [*cli, "analyze", str(study)]
    if report.reference:
        args += ["--reference", report.reference]
    return args + list(report.extra_args)


def report(cli: list[str], study: Path, report: ReportSpec, title: str) -> list[str]:
    """The study report, rendered from the analysis.json that `analyze` wrote."""
    return [*cli, "report", str(study), "--title", report.title or title]
