"""Disk: checkpoints for evaluation in the base model's dtype, `keep: swept`, and the free-space check
made before a run directory is created."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from sftscope.errors import InputError
from sftscope.models.loading import base_dtype
from sftscope.train import batching, checkpoints
from sftscope.train.config import TrainConfig
from sftscope.train.encode import load_examples
from sftscope.train.plan import Plan, make_plan, model_shape
from sftscope.train.schedules import checkpoint_steps


def save_dtype(model: str) -> str:
    """Checkpoints for evaluation hold the base model's dtype (bf16 for Qwen3): evaluation never reads
    more precision than the base had, and a 14B checkpoint takes half the fp32 space."""
    return base_dtype(model)


def cast(state_dict: dict[str, Any], dtype: str) -> dict[str, Any]:
    """Floating-point tensors in `dtype`, others (integer buffers) as they are."""
    import torch

    target = getattr(torch, dtype)
    return {k: v.to(target) if v.is_floating_point() else v for k, v in state_dict.items()}


def kept_steps(config: TrainConfig, total: int) -> set[int]:
    """Steps whose checkpoint stays on disk: every scheduled one, or with keep: swept the swept ones that
    are scheduled, and the final step."""
    scheduled = set(checkpoint_steps(config.schedule, total))
    if config.keep == "all":
        return scheduled
    return {step for step in config.keep_steps if step in scheduled} | {total}


def drop_unswept(run_dir: Path, config: TrainConfig, total: int, newest: int) -> None:
    """keep: swept on the own loop: remove every checkpoint neither swept nor the newest (the resume
    point), from the manifest first, then from disk."""
    if config.keep == "all":
        return
    keep = kept_steps(config, total) | {newest}
    manifest = checkpoints.read_manifest(run_dir)
    dropped = [entry for entry in manifest["checkpoints"] if entry["step"] not in keep]
    if not dropped:
        return
    manifest["checkpoints"] = [entry for entry in manifest["checkpoints"] if entry["step"] in keep]
    checkpoints.write_manifest(run_dir, manifest)
    for entry in dropped:
        shutil.rmtree(run_dir / entry["path"], ignore_errors=True)


def run_plan(config: TrainConfig, gpus: int = 1) -> Plan:
    """The plan of a run from the config alone: the model's config.json and the data's row count
    (an upper bound on the kept examples, so on the steps)."""
    if config.steps is not None:
        total = config.steps
    else:
        total = batching.total_steps(len(load_examples(config.data)), config.batch_size, config.epochs, None)
    saved = len(checkpoint_steps(config.schedule, total))
    kept = len(kept_steps(config, total))
    return make_plan(config, model_shape(config.model), total, saved, kept, gpus)


def check_free_space(config: TrainConfig) -> None:
    """Refuse to start a run whose planned checkpoints do not fit the free disk under `config.out`."""
    plan = run_plan(config)
    folder = Path(config.out).resolve()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if plan.run_disk > free:
        raise InputError(
            str(config.out),
            f"the planned checkpoints need {plan.run_disk / 1024**3:.1f} GiB ({plan.kept_steps} checkpoints "
            f"of {plan.checkpoint / 1024**3:.2f} GiB plus resume state) but {folder} has "
            f"{free / 1024**3:.1f} GiB free; free space, or set keep: swept with keep_steps",
            field="out",
        )
