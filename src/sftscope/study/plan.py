"""`study run --dry-run`: cells, optimizer steps, checkpoints, evaluations and the compute they need.

Nothing is loaded or fetched: training lengths come from the train configs (preset + overrides),
data sizes from built data cards when the study directory has them, else from the spec's stated
assumptions; task sizes from the suite's task specs (generator sizes, `source.n`) or the spec's
`cost.prompts`; parameter counts from the spec or a local checkpoint's safetensors header.
Every number that is an assumption rather than a count is listed under the plan.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from sftscope.config.overrides import to_overrides
from sftscope.errors import InputError
from sftscope.evaluate.layouts import saved_steps
from sftscope.evaluate.spec import load_suite
from sftscope.models.loading import resolve_model
from sftscope.study.cells import Cell, expand_cells
from sftscope.study.spec import BaseSpec, CostSpec, StudySpec, load_study_spec
from sftscope.study.state import StudyDir, read_json
from sftscope.train import plan as train_plan
from sftscope.train.batching import total_steps
from sftscope.train.config import load_config
from sftscope.train.schedules import checkpoint_steps


@dataclass
class TaskSize:
    name: str
    domain: str
    prompts: int | None
    samples: int
    output_tokens: float
    """Assumed mean generated tokens per sample (capped by the task's max_new_tokens)."""


@dataclass
class CellPlan:
    cell: Cell
    rows: int | None
    tokens_per_example: float | None
    steps: int | None
    checkpoints: list[int]
    evaluated: int
    """Checkpoints swept (the base is swept once per base, counted separately)."""
    train_hours: float | None
    eval_hours: float | None
    disk_bytes: float | None = None
    """The run directory's checkpoints (kept ones, in the base's dtype) plus its resume state."""


@dataclass
class StudyPlan:
    spec: StudySpec
    cells: list[CellPlan]
    tasks: list[TaskSize]
    baseline_hours: dict[str, float | None]
    unit: str
    jobs: int
    """Jobs of a fresh run: GGUF conversions, data builds, base sweeps, a training and a sweep per cell,
    the report."""
    wall_minutes: float | None = None
    """Wall time of a fresh run on one machine (CPU rates, local executor), start-up included."""
    assumptions: list[str] = field(default_factory=list)
    gaps: list[str] = field(default_factory=list)


def param_count(base: BaseSpec) -> float | None:
    """The spec's figure, else the sum of tensor sizes in a local checkpoint's safetensors headers."""
    if base.params is not None:
        return base.params

    folder = Path(resolve_model(base.model))
    files = sorted(folder.glob("*.safetensors")) if folder.is_dir() else []
    if not files:
        return None
    total = 0
    for file in files:
        with file.open("rb") as handle:  # header only: 8-byte length, then JSON
            size = int.from_bytes(handle.read(8), "little")
            header = json.loads(handle.read(size))
        for name, info in header.items():
            if name != "__metadata__":
                count = 1
                for dim in info["shape"]:
                    count *= dim
                total += count
    return float(total)


def suite_sizes(spec: StudySpec) -> list[TaskSize]:

    cost = spec.cost
    sizes = []
    for task in load_suite(spec.eval.suite, spec.eval.overrides)[1]:
        prompts = getattr(task.source, "n", None) or cost.prompts.get(task.name)
        mean = cost.output_tokens.get(task.name, cost.output_tokens.get("default", 0.0))
        sizes.append(
            TaskSize(
                task.name, task.domain, prompts, task.sampling.n, min(mean, task.sampling.max_new_tokens)
            )
        )
    return sizes


def _train_config(cell: Cell):  # type: ignore[no-untyped-def]

    placeholders = [f"model={cell.base.model}", "data=<data>", "out=<run>", f"seed={cell.seed}"]
    return load_config(
        cell.config_path, to_overrides(cell.preset.overrides) + placeholders, cell.preset.preset
    )


def _data_facts(cell: Cell, study: StudyDir | None) -> tuple[int | None, float | None]:
    card = read_json(study.data_dir(cell.data.key) / "card.json") if study else None
    card = card or {}
    lengths = card.get("lengths", {})
    measured = lengths.get("total", {}).get("mean") if lengths.get("unit") == "tokens" else None
    return card.get("rows") or cell.condition.rows, measured or cell.condition.tokens_per_example


def _gen_rate(cost: CostSpec, params: float | None) -> float | None:
    if cost.cpu_gen_tokens_per_s is not None:
        return cost.cpu_gen_tokens_per_s
    return cost.gen_tokens_per_s_1b / (params / 1e9) if params else None


def _sweep_hours(tasks: list[TaskSize], models: int, rate: float | None) -> float | None:
    if rate is None or any(t.prompts is None for t in tasks):
        return None
    tokens = sum(t.prompts * t.samples * t.output_tokens for t in tasks)  # type: ignore[operator]
    return models * tokens / rate / 3600


def plan_cell(cell: Cell, spec: StudySpec, tasks: list[TaskSize], study: StudyDir | None) -> CellPlan:

    if cell.checkpoints is not None:  # trained already: only its sweep costs
        return _external_plan(cell, spec, tasks)
    cost, config = spec.cost, _train_config(cell)
    rows, per_example = _data_facts(cell, study)
    steps = config.steps or (total_steps(rows, config.batch_size, config.epochs, None) if rows else None)
    saved = checkpoint_steps(config.schedule, steps) if steps else []
    evaluated = saved if spec.eval.steps is None else sorted({*spec.eval.steps} & {*saved} | {*saved[-1:]})
    params = param_count(cell.base)
    train_hours = None
    if steps and per_example:
        tokens = steps * config.batch_size * per_example
        if cost.cpu_train_tokens_per_s is not None:
            train_hours = tokens / cost.cpu_train_tokens_per_s / 3600
        elif params:
            flops = cost.flops_per_param_token * params * tokens
            train_hours = flops / (cost.peak_tflops * 1e12 * cost.train_mfu) / 3600
    eval_hours = _sweep_hours(tasks, len(evaluated), _gen_rate(cost, params))
    disk_bytes = _run_disk(config, cell.base, params, len(evaluated if config.keep == "swept" else saved))
    return CellPlan(
        cell, rows, per_example, steps, saved, len(evaluated), train_hours, eval_hours, disk_bytes
    )


def _run_disk(config, base: BaseSpec, params: float | None, kept: int) -> float | None:  # type: ignore[no-untyped-def]
    """Bytes of one run directory: the train plan's figures from the base's config.json when it is
    local, else the parameter count in bf16 (what the large bases publish)."""

    try:
        shape = train_plan.model_shape(base.model)
    except InputError:
        if params is None:
            return None
        resume_copies = 1 if config.engine == "trl" else kept
        return params * (2 * kept + 12 * resume_copies)
    return float(train_plan.make_plan(config, shape, 0, kept, kept, 1).run_disk)


def _external_plan(cell: Cell, spec: StudySpec, tasks: list[TaskSize]) -> CellPlan:
    """A cell of a `checkpoints` condition: no training, and the saved checkpoints it has."""
    saved = saved_steps(cell.checkpoints) if cell.checkpoints else []
    evaluated = saved if spec.eval.steps is None else sorted({*spec.eval.steps} & {*saved} | {*saved[-1:]})
    eval_hours = _sweep_hours(tasks, len(evaluated), _gen_rate(spec.cost, param_count(cell.base)))
    last = saved[-1] if saved else None
    # It writes no run directory: its checkpoints are on disk already.
    return CellPlan(cell, None, None, last, saved, len(evaluated), 0.0, eval_hours, disk_bytes=0.0)


def make_plan(spec_path: str | Path, study_dir: str | Path | None = None) -> StudyPlan:
    spec_path = Path(spec_path)
    spec = load_study_spec(spec_path)
    study = StudyDir(Path(study_dir)) if study_dir else None
    tasks = suite_sizes(spec)
    cells = [plan_cell(cell, spec, tasks, study) for cell in expand_cells(spec, spec_path)]
    bases = {c.cell.base.name: c.cell.base for c in cells}
    baselines = {
        name: _sweep_hours(tasks, 1, _gen_rate(spec.cost, param_count(b))) for name, b in bases.items()
    }
    cost = spec.cost
    conversions = sum(b.model.startswith("gguf:") for b in bases.values())
    trained = [c.cell for c in cells if c.cell.data is not None]
    jobs = len(cells) + len(trained) + len(baselines) + len({c.data.key for c in trained}) + conversions + 1
    unit = "CPU-hours" if cost.cpu_train_tokens_per_s else "GPU-hours"
    plan = StudyPlan(spec, cells, tasks, baselines, unit, jobs)
    if unit == "CPU-hours" and spec.executor.kind == "local":  # one machine: the workers share the work
        hours = [c.train_hours for c in cells] + [c.eval_hours for c in cells] + list(baselines.values())
        minutes = sum(h for h in hours if h is not None) * 60 + jobs * cost.job_overhead_s / 60
        plan.wall_minutes = minutes / spec.executor.workers
    if cost.cpu_train_tokens_per_s is not None:
        plan.assumptions.append(
            f"CPU: training {cost.cpu_train_tokens_per_s:g} tokens/s, generation "
            f"{cost.cpu_gen_tokens_per_s:g} output tokens/s (measured rates from the spec)"
        )
    else:
        plan.assumptions += [
            f"training on {cost.gpu}: {cost.flops_per_param_token:g} FLOPs per parameter per token "
            f"(6 forward+backward + 2 recomputed with gradient checkpointing) at {cost.train_mfu:.0%} MFU "
            f"of {cost.peak_tflops:g} TFLOP/s; packed sequences, so tokens are real tokens, not padding",
            f"generation (vLLM): {cost.gen_tokens_per_s_1b:g} output tokens/s per GPU for a 1B model at "
            "large batch, scaled by 1/parameters; prompt prefill neglected",
            f"GPU-hours are summed over GPUs: a training job on {spec.executor.train_gpus or 1} GPU(s) "
            "takes its GPU-hours divided by that in wall time, scaling losses aside",
        ]
    means = {t.name: t.output_tokens for t in tasks}
    plan.assumptions.append(
        "mean generated tokens per sample: " + ", ".join(f"{k} {v:g}" for k, v in means.items())
    )
    for condition in spec.conditions:
        if condition.tokens_per_example is not None:
            plan.assumptions.append(
                f"{condition.name}: {condition.tokens_per_example:g} tokens per example (prompt + response) "
                "until a built data card measures it"
                + (f"; {condition.rows} rows until built" if condition.rows else "")
            )
    plan.gaps += [
        f"{t.name}: prompt count unknown (set cost.prompts.{t.name})" for t in tasks if t.prompts is None
    ]
    plan.gaps += [
        f"{c.cell.id}: data size unknown (build it, or set conditions[].rows)"
        for c in cells
        if c.steps is None
    ]
    if cost.cpu_train_tokens_per_s is None:  # only GPU estimates scale with the model size
        unknown = [b.name for b in bases.values() if param_count(b) is None]
        plan.gaps += [f"{name}: parameter count unknown (set bases[].params)" for name in unknown]
    return plan


def _gigabytes(value: float | None) -> str:
    return "?" if value is None else f"{value / 1e9:,.1f}"


def _hours(value: float | None) -> str:
    return "?" if value is None else f"{value:,.1f}" if value >= 10 else f"{value:.2g}"


def _total(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    return _hours(sum(known)) + (" + unknown" if len(known) < len(values) else "")


def render_plan(plan: StudyPlan) -> str:
    """The plan as plain text (stdout stays parseable; no colours)."""
    spec, unit, cells = plan.spec, plan.unit, plan.cells
    blocks: dict[str, int] = {}
    for c in cells:
        for block in c.cell.blocks:
            blocks[block] = blocks.get(block, 0) + 1
    lines = [
        f"study {spec.name}: {len(cells)} cells ("
        + ", ".join(f"{name}: {count}" for name, count in blocks.items())
        + f"), seeds {spec.seeds}, executor {spec.executor.kind}",
        "",
        f"suite {spec.eval.suite}: {len(plan.tasks)} tasks",
        f"  {'task':<24}{'domain':<14}{'prompts':>8}{'samples':>8}{'mean out tok':>14}",
    ]
    for t in plan.tasks:
        prompts = "?" if t.prompts is None else f"{t.prompts:,}"
        lines.append(f"  {t.name:<24}{t.domain:<14}{prompts:>8}{t.samples:>8}{t.output_tokens:>14,.0f}")
    per_model = [t.prompts * t.samples for t in plan.tasks if t.prompts is not None]
    width = max(len(c.cell.id) for c in cells) + 2
    lines += [
        "",
        f"  {'cell':<{width}}{'rows':>8}{'steps':>7}{'ckpts':>6}{'swept':>6}"
        f"{'train ' + unit:>17}{'eval ' + unit:>16}{'disk GB':>9}",
    ]
    for c in cells:
        rows = "?" if c.rows is None else f"{c.rows:,}"
        steps = "?" if c.steps is None else str(c.steps)
        lines.append(
            f"  {c.cell.id:<{width}}{rows:>8}{steps:>7}{len(c.checkpoints):>6}{c.evaluated:>6}"
            f"{_hours(c.train_hours):>17}{_hours(c.eval_hours):>16}{_gigabytes(c.disk_bytes):>9}"
        )
    swept = sum(c.evaluated for c in cells) + len(plan.baseline_hours)
    generations = swept * sum(per_model)
    train = [c.train_hours for c in cells]
    evals = [c.eval_hours for c in cells] + list(plan.baseline_hours.values())
    wall = []
    if plan.wall_minutes is not None:
        wall = [
            f"wall time with {spec.executor.workers} local worker(s): about {plan.wall_minutes:.0f} min "
            f"({plan.jobs} jobs at {spec.cost.job_overhead_s:g} s start-up each, on otherwise idle cores)"
        ]
    lines += [
        "",
        "base sweeps (step 0, once per base): "
        + ", ".join(f"{name} {_hours(h)}" for name, h in plan.baseline_hours.items()),
        f"totals: {sum(c.steps or 0 for c in cells):,} optimizer steps, "
        f"{sum(len(c.checkpoints) for c in cells):,} checkpoints saved, {swept:,} models swept, "
        f"{generations:,} generations ({sum(per_model):,} per model"
        + (", some task sizes unknown" if len(per_model) < len(plan.tasks) else "")
        + ")",
        f"compute: training {_total(train)} {unit}, evaluation {_total(evals)} {unit}, "
        f"total {_total(train + evals)} {unit}",
        f"disk: {_gigabytes(sum(c.disk_bytes or 0 for c in cells))} GB of run directories"
        + (" + unknown" if any(c.disk_bytes is None for c in cells) else ""),
        *wall,
        "",
        "assumptions:",
        *(f"  - {a}" for a in plan.assumptions),
    ]
    if plan.gaps:
        lines += ["not in the totals:", *(f"  - {g}" for g in plan.gaps)]
    return "\n".join(lines)
