"""The training loop: read top to bottom, one optimizer step per iteration.

Runs as one process or under `accelerate launch` (DDP). The loss of a step is the token-mean NLL over
the response tokens of the whole global batch: each forward pass's summed NLL is divided by the global
batch's response-token count, so the micro-batch split and the number of processes change nothing but
float rounding. That count needs no all-reduce: every process encodes the whole data set and knows the
step's examples (the data order depends only on seed and epoch).
"""

from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from sftscope.errors import InputError
from sftscope.models.loading import load_model_and_tokenizer
from sftscope.progress import console, progress_bar
from sftscope.train import batching, checkpoints
from sftscope.train.config import TrainConfig, load_config, save_config
from sftscope.train.encode import data_file, encode_dataset, load_examples
from sftscope.train.loss import CompletionLoss, batch_loss
from sftscope.train.metrics import MetricsLog, truncate_metrics
from sftscope.train.schedules import checkpoint_steps, lr_multiplier, warmup_steps


def _start_run_dir(config: TrainConfig, run_dir: Path) -> None:
    """Create a fresh run directory; never overwrite an existing run."""
    if (run_dir / checkpoints.MANIFEST).exists() or (run_dir / "metrics.jsonl").exists():
        raise InputError(
            str(run_dir), "a run already exists here; resume it with --resume or pick another out"
        )
    (run_dir / "checkpoints").mkdir(parents=True, exist_ok=True)
    save_config(config, run_dir / "config.yaml")


def _resume_point(run_dir: Path) -> dict[str, Any] | None:
    """Roll the run back to its last complete checkpoint (or to nothing) and return that entry."""
    if not (run_dir / checkpoints.MANIFEST).exists():  # killed before the manifest was first written
        truncate_metrics(run_dir, 0)
        return None
    manifest = checkpoints.read_manifest(run_dir)
    entry = checkpoints.last_complete(run_dir, manifest)
    step = entry["step"] if entry else 0
    checkpoints.prune_after(run_dir, manifest, step)
    truncate_metrics(run_dir, step)
    return entry


def _dummy_batch(item: Any, pad_id: int) -> batching.Batch:
    """A pass with nothing to train, for a process whose share of a (last, small) step is empty: it must
    still run forward and backward so the DDP gradient all-reduce has every process."""
    batch = batching.collate_padded([item], pad_id)
    batch.targets.fill_(batching.IGNORE)
    batch.num_tokens = batch.num_targets = 0
    return batch


def _accelerator() -> Any:
    """accelerate picks gloo on CPU for a multi-process launch only when told to use the CPU; launched by
    torchrun or `accelerate launch --multi_gpu` on a machine without CUDA, that is the only choice."""
    from accelerate import Accelerator

    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return Accelerator(cpu=multi_process and not torch.cuda.is_available())


def train(config: TrainConfig, *, resume: bool = False) -> Path:
    """Train `config.model` on `config.data` into the run directory `config.out` and return it.

    With resume=True the run continues from its last complete checkpoint (see `resume`).
    """
    from accelerate.utils import DistributedType

    accelerator = _accelerator()
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # accelerate's backward steps the DeepSpeed engine itself, which breaks this loop's
        # variable gradient accumulation; DDP and FSDP keep the loss semantics.
        raise InputError("accelerate config", "DeepSpeed is not supported by sftscope train; use DDP or FSDP")
    if accelerator.device.type == "cpu" and config.threads is not None:
        torch.set_num_threads(config.threads)
    main = accelerator.is_main_process
    run_dir = Path(config.out)
    entry: dict[str, Any] | None = None
    if main:
        if resume:
            entry = _resume_point(run_dir)
        else:
            _start_run_dir(config, run_dir)
    accelerator.wait_for_everyone()
    if resume and not main and (run_dir / checkpoints.MANIFEST).exists():
        entry = checkpoints.last_complete(run_dir, checkpoints.read_manifest(run_dir))

    torch.manual_seed(config.seed)
    source = str(run_dir / entry["path"]) if entry else config.model
    model, tokenizer = load_model_and_tokenizer(source, dtype=config.dtype)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    examples = load_examples(config.data)
    encoded, report = encode_dataset(
        tokenizer,
        examples,
        suffix=config.suffix,
        max_length=config.max_length,
        policy=config.length_policy,
        source=str(data_file(config.data)),
    )
    lengths = [len(item) for item in encoded]
    num = len(encoded)
    total = batching.total_steps(num, config.batch_size, config.epochs, config.steps)
    per_epoch = batching.steps_per_epoch(num, config.batch_size)
    save_at = set(checkpoint_steps(config.schedule, total))

    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, betas=config.betas, weight_decay=config.weight_decay, eps=config.eps
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_multiplier(config.lr_schedule, total, warmup_steps(total, config.warmup_ratio))
    )
    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "wall_time": 0.0}
    if entry is not None:
        state = torch.load(run_dir / entry["path"] / checkpoints.STATE_FILE, weights_only=False)
        if state["optimizer"] is None:
            raise InputError(str(run_dir), "this run trained under FSDP, whose optimizer state is not saved")
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])

    if main:
        (run_dir / "data_stats.json").write_text(json.dumps(asdict(report), indent=2) + "\n")
        console.print(
            f"train: {report.kept}/{report.examples} examples ({report.truncated} truncated, "
            f"{report.dropped} dropped at max_length={config.max_length}), {total} steps "
            f"({per_epoch}/epoch), {accelerator.num_processes} process(es)"
            + (f", resuming after step {state['step']}" if entry else "")
        )
        if not (run_dir / checkpoints.MANIFEST).exists():
            base_hash = checkpoints.content_hash(checkpoints.base_model_dir(config.model))
            checkpoints.write_manifest(run_dir, checkpoints.new_manifest(config.model, base_hash, total))
    accelerator.wait_for_everyone()

    module, optimizer = accelerator.prepare(CompletionLoss(model, config.loss_chunk_tokens), optimizer)
    module.train()
    world, rank = accelerator.num_processes, accelerator.process_index
    pad_id = tokenizer.pad_token_id
    pad_to = config.max_length if config.pad_to_max_length else None
    log = MetricsLog(run_dir, config.report_to, config.model_dump(mode="json")) if main else None
    tokens_seen, wall_time = state["tokens_seen"], state["wall_time"]

    with progress_bar("train", total, disable=not (main and config.progress)) as bar:
        bar.update(0, completed=state["step"])
        for step in range(state["step"], total):
            started = time.perf_counter()
            indices = batching.global_batch(num, config.batch_size, config.seed, step)
            step_tokens = sum(lengths[i] for i in indices)
            # Python float, same on every process: DDP averages gradients over processes, hence * world.
            scale = world / sum(encoded[i].num_targets for i in indices)
            share = batching.split_over_ranks(indices, lengths, world)[rank]
            passes = batching.micro_batches(share, lengths, config.micro_batch_tokens, config.packing)
            batches = [
                batching.collate([encoded[i] for i in p], config.packing, pad_id, pad_to) for p in passes
            ]
            if not batches:
                batches = [_dummy_batch(encoded[indices[0]], pad_id)]
            sums = torch.zeros(2)
            for k, batch in enumerate(batches):
                # Only the last backward of a step all-reduces gradients.
                with nullcontext() if k == len(batches) - 1 else accelerator.no_sync(module):
                    nll, entropy = batch_loss(module, batch)
                    accelerator.backward(nll * scale)
                sums += torch.stack([nll.detach().cpu(), entropy.cpu()]).float()
            max_norm = config.grad_clip if config.grad_clip is not None else float("inf")
            grad_norm = accelerator.clip_grad_norm_(module.parameters(), max_norm)
            lr = scheduler.get_last_lr()[0]
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

            nll_sum, entropy_sum = (
                accelerator.reduce(sums.to(accelerator.device), "sum").cpu() * scale / world
            )
            elapsed = time.perf_counter() - started
            wall_time += elapsed
            tokens_seen += step_tokens
            done = step + 1
            row = {
                "step": done,
                "epoch": done / per_epoch,
                "loss": float(nll_sum),
                "lr": lr,
                "grad_norm": float(grad_norm),
                "entropy": float(entropy_sum),
                "tokens": step_tokens,
                "tokens_per_s": step_tokens / elapsed,
                "tokens_seen": tokens_seen,
                "micro_batches": len(batches),
            }
            if log is not None:
                log.log(row)
                bar.update(0, advance=1, status=f"loss {row['loss']:.4f}")
            if done in save_at:
                _checkpoint(
                    accelerator, module, tokenizer, optimizer, scheduler, run_dir, row, wall_time, per_epoch
                )
    if log is not None:
        log.close()
    accelerator.wait_for_everyone()
    return run_dir


def _checkpoint(
    accelerator: Any,
    module: Any,
    tokenizer: Any,
    optimizer: Any,
    scheduler: Any,
    run_dir: Path,
    row: dict[str, Any],
    wall_time: float,
    per_epoch: int,
) -> None:
    """Save the model, tokenizer and everything needed to continue exactly (written by the main process)."""
    from accelerate.utils import DistributedType

    state_dict = None
    optimizer_state = None
    if accelerator.distributed_type == DistributedType.FSDP:
        # Sharded weights: every process takes part in gathering them. The optimizer state stays
        # sharded and is not saved, so FSDP runs cannot be resumed (train() says so).
        full = accelerator.get_state_dict(module)
        state_dict = {key.removeprefix("model."): value for key, value in full.items()}
    else:
        optimizer_state = optimizer.state_dict()
    if not accelerator.is_main_process:
        return
    step = row["step"]
    state = {
        "step": step,
        "epoch": row["epoch"],
        "data_position": {
            "epoch": (step - 1) // per_epoch,
            "batches_done_in_epoch": (step - 1) % per_epoch + 1,
        },
        "tokens_seen": row["tokens_seen"],
        "wall_time": wall_time,
        "optimizer": optimizer_state,
        "scheduler": scheduler.state_dict(),
        "rng": torch.get_rng_state(),
    }
    entry = {"step": step, "epoch": row["epoch"], "tokens_seen": row["tokens_seen"], "wall_time": wall_time}
    manifest = checkpoints.read_manifest(run_dir)
    model = accelerator.unwrap_model(module).model
    checkpoints.save_checkpoint(run_dir, manifest, entry, model, tokenizer, state, state_dict)


def resume(run_dir: str | Path) -> Path:
    """Continue a killed run from its last complete checkpoint, with the config it was started with."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise InputError(str(run_dir), "not a training run directory (no config.yaml): nothing to resume")
    config = load_config(run_dir / "config.yaml")
    if Path(config.out).resolve() != run_dir.resolve():
        config = config.model_copy(update={"out": str(run_dir)})
    return train(config, resume=True)
