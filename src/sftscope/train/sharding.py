"""FSDP2 for the own loop, and the sharded state a preempted FSDP run resumes from.

`shard` gives every decoder layer its own `fully_shard` group, so a forward gathers one layer's weights
at a time, then shards the root: the `CompletionLoss` wrapper, whose forward is the one the loop calls
(embeddings, final norm and output layer live there). The classes come from the model's
`_no_split_modules`, as transformers' and accelerate's own wrap policies find them.

The resume state is model and optimizer state in shards, one file per process, written with
`torch.distributed.checkpoint` under RUN/resume/step-XXXXXX (filled under `.tmp` and renamed, the
previous one then removed), next to a small trainer_state.pt (step, scheduler, rng, world size).
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sftscope.errors import InputError
from sftscope.rundir import checkpoint_name
from sftscope.train import checkpoints

RESUME_DIR = "resume"


def layer_classes(model: nn.Module, source: str) -> set[type[nn.Module]]:
    """The decoder-layer classes named by the model's `_no_split_modules`, as found among its modules."""
    names = set(getattr(model, "_no_split_modules", None) or [])
    found = {type(module) for module in model.modules() if type(module).__name__ in names}
    if not found:
        raise InputError(
            source,
            f"FSDP needs the decoder-layer class, but none of {sorted(names) or 'nothing'} is a module of "
            f"this {type(model).__name__}",
            field="_no_split_modules",
        )
    return found


def shard(module: nn.Module, model: nn.Module, source: str, mixed_precision: str) -> nn.Module:
    """`fully_shard` each decoder layer of `model`, then `module` (the root that wraps it), in place."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    classes = layer_classes(model, source)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    mesh = init_device_mesh(device, (torch.distributed.get_world_size(),))
    # bf16 compute over fp32 master weights, gradients reduced in fp32: what accelerate's
    # mixed_precision: bf16 means under DDP.
    policy = (
        MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32)
        if mixed_precision == "bf16"
        else MixedPrecisionPolicy()
    )
    for layer in [sub for sub in model.modules() if type(sub) in classes]:
        fully_shard(layer, mesh=mesh, mp_policy=policy)
    fully_shard(module, mesh=mesh, mp_policy=policy)
    return module


def full_weights(module: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's weights on the CPU of rank 0 (empty elsewhere); every process must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    options = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return {
        key.removeprefix("model."): value
        for key, value in get_model_state_dict(module, options=options).items()
    }


def latest(run_dir: Path) -> Path | None:
    """The newest complete resume state of a run, if any."""
    folder = run_dir / RESUME_DIR
    done = (
        sorted(p for p in folder.glob("step-*") if p.is_dir() and not p.name.endswith(".tmp"))
        if folder.exists()
        else []
    )
    return done[-1] if done else None


def save(run_dir: Path, step: int, module: nn.Module, optimizer: Any, trainer_state: dict[str, Any]) -> None:
    """Write the sharded resume state of `step` (every process calls this), then drop the previous one."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    final = run_dir / RESUME_DIR / checkpoint_name(step)
    tmp = final.with_name(final.name + ".tmp")
    main = torch.distributed.get_rank() == 0
    if main:
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
    torch.distributed.barrier()
    model_state, optimizer_state = get_state_dict(module, optimizer)
    try:
        dcp.save({"model": model_state, "optimizer": optimizer_state}, checkpoint_id=tmp)
        if main:
            state = {**trainer_state, "world_size": torch.distributed.get_world_size()}
            torch.save(state, tmp / checkpoints.STATE_FILE)
    except Exception as exc:  # torch's CheckpointException wraps each process's error, e.g. disk full
        shutil.rmtree(tmp, ignore_errors=True)
        if "No space left" in str(exc):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp)) from exc
        raise
    if main:
        tmp.rename(final)
        for old in (run_dir / RESUME_DIR).iterdir():
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    torch.distributed.barrier()


def check_world_size(path: Path, trainer_state: dict[str, Any]) -> None:
    """Shards are per process: a state written by another number of processes does not fit."""
    world = torch.distributed.get_world_size()
    if trainer_state.get("world_size") != world:
        raise InputError(
            str(path),
            f"sharded resume state of {trainer_state.get('world_size')} processes; this launch has {world}: "
            "resume with the same number of processes",
            field="world_size",
        )


def load(path: Path, module: nn.Module, optimizer: Any) -> None:
    """Load a sharded resume state into the (already sharded) module and its optimizer."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optimizer_state = get_state_dict(module, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    try:
        dcp.load(state, checkpoint_id=path)
    except Exception as exc:  # torch's CheckpointException wraps each process's failure
        raise InputError(str(path), f"unreadable sharded resume state ({str(exc).splitlines()[0]})") from exc
    set_state_dict(module, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
