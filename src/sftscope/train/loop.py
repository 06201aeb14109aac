"""The training loop: read top to bottom, one optimizer step per iteration.

Runs as one process or under `accelerate launch`: DDP, or FSDP2 with each decoder layer sharded
(`sharding.py`; an accelerate FSDP config switches it on, on CPU too). The loss of a step is the
token-mean NLL over the response tokens of the whole global batch: each forward pass's summed NLL is
divided by the global batch's response-token count, so the micro-batch split and the number of
processes change nothing but float rounding. That count needs no all-reduce: every process encodes
the whole data set and knows the step's examples (the data order depends only on seed and epoch).
"""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from sftscope.errors import InputError, SftscopeError
from sftscope.models.loading import load_model_and_tokenizer
from sftscope.outdir import claim, mark
from sftscope.progress import console, progress_bar
from sftscope.rundir import DATA_STATS, checkpoint_name, write_json_atomic
from sftscope.train import batching, checkpoints, disk, sharding
from sftscope.train.config import TrainConfig, load_config, save_config
from sftscope.train.encode import data_file, encode_training_data
from sftscope.train.loss import CompletionLoss, batch_loss
from sftscope.train.metrics import MetricsLog, truncate_metrics
from sftscope.train.packed_attention import use_packed_attention
from sftscope.train.schedules import checkpoint_steps, lr_multiplier, resume_steps, warmup_steps


def _check_inputs(config: TrainConfig) -> None:
    """Fail on a missing base model or data file before anything is written."""
    try:
        checkpoints.base_model_dir(config.model)
    except (OSError, ValueError) as exc:  # huggingface_hub's not-found and bad-id errors are both
        raise InputError(
            "train config",
            f"base model '{config.model}' not found (not a shipped name, a local "
            "directory or a model in the Hugging Face cache)",
            field="model",
        ) from exc
    if not data_file(config.data).is_file():
        raise InputError(str(data_file(config.data)), "training data not found", field="data")


def start_run_dir(config: TrainConfig, run_dir: Path, sharded: bool = False, overwrite: bool = False) -> None:
    """Check the inputs and the disk, then create a fresh run directory. An existing run, or a folder
    sftscope did not write, is kept unless `overwrite` (the user's --overwrite) replaces it."""
    _check_inputs(config)
    if overwrite and run_dir.exists():
        shutil.rmtree(run_dir)
    disk.check_free_space(config)
    if (run_dir / checkpoints.MANIFEST).exists() or (run_dir / "metrics.jsonl").exists():
        raise InputError(
            str(run_dir),
            "a run already exists here; resume it with --resume, pick another out, or pass --overwrite",
        )
    # A run killed before its first checkpoint left config.yaml: not the user's, started over.
    claim(run_dir, "train", legacy=lambda folder: (folder / "config.yaml").is_file())
    run_dir.mkdir(parents=True, exist_ok=True)
    mark(run_dir, "train")
    (run_dir / "checkpoints").mkdir(exist_ok=True)
    if sharded:  # its presence says the run keeps sharded resume states (see _resume_point)
        (run_dir / sharding.RESUME_DIR).mkdir(exist_ok=True)
    save_config(config, run_dir / "config.yaml")


def _resume_point(run_dir: Path, sharded: bool, from_step: int | None) -> Path | None:
    """Roll the run back to where it continues and return that directory (None: from the start).

    That is the last complete checkpoint (or checkpoint `from_step`), each holding the full trainer
    state; under FSDP, the newest sharded resume state instead.
    """
    if not (run_dir / checkpoints.MANIFEST).exists():  # killed before the manifest was first written
        truncate_metrics(run_dir, 0)
        return None
    manifest = checkpoints.read_manifest(run_dir)
    saved = [entry["step"] for entry in manifest["checkpoints"]]
    if sharded:
        if not (run_dir / sharding.RESUME_DIR).is_dir() and saved:
            raise InputError(
                str(run_dir / sharding.RESUME_DIR),
                "no sharded resume state: the run was not trained under FSDP, or resume/ was deleted",
            )
        start = sharding.latest(run_dir)
        step = int(start.name.removeprefix("step-")) if start else 0
        if from_step is not None and from_step != step:
            raise InputError(
                str(run_dir),
                f"under FSDP only the newest resume state is kept (step {step})",
                field="--resume-from",
            )
    else:
        if from_step is None:
            entry = checkpoints.last_complete(run_dir, manifest)
        else:
            entry = next((e for e in manifest["checkpoints"] if e["step"] == from_step), None)
            if entry is None:
                raise InputError(
                    str(run_dir), f"no checkpoint at step {from_step} (saved: {saved})", field="--resume-from"
                )
        start = run_dir / entry["path"] if entry else None
        step = entry["step"] if entry else 0
    checkpoints.prune_after(run_dir, manifest, step)
    truncate_metrics(run_dir, step)
    return start


def _trainer_state(start: Path, saved: list[int]) -> dict[str, Any]:
    """The trainer state saved with a checkpoint, loaded as tensors and plain containers only: a state
    file holding any other object is refused, never unpickled (it could run code)."""
    path = start / checkpoints.STATE_FILE
    earlier = [step for step in saved if checkpoint_name(step) != start.name]
    offer = (
        f"; start from an earlier checkpoint with --resume-from STEP (saved: {earlier})" if earlier else ""
    )
    try:
        return torch.load(path, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(
            str(path),
            f"refused: holds objects other than tensors and plain data ({str(exc).splitlines()[0]})",
        ) from exc
    except (OSError, RuntimeError, EOFError, ValueError) as exc:
        raise InputError(str(path), f"unreadable trainer state, truncated or corrupt{offer}") from exc


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
    from accelerate.state import AcceleratorState

    multi_process = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if not multi_process:
        # accelerate's state is process-wide: a trainer that ran earlier in this process (TRL, the HF
        # Trainer) leaves its own, bf16 autocast included, and this run would silently inherit it.
        AcceleratorState._reset_state(reset_partial_state=True)
    return Accelerator(cpu=multi_process and not torch.cuda.is_available())


def train(
    config: TrainConfig, *, resume: bool = False, from_step: int | None = None, overwrite: bool = False
) -> Path:
    """Train `config.model` on `config.data` into the run directory `config.out` and return it.

    With resume=True the run continues from its last complete checkpoint, or checkpoint `from_step`
    (see `resume`). `overwrite` replaces a folder at `config.out` that is not a fresh one.
    """
    from accelerate.utils import DistributedType, broadcast_object_list, parse_flag_from_env

    if config.engine == "trl":
        from sftscope.train.trl_engine import train_trl  # deferred: trl is optional (the dev extra)

        return train_trl(config, resume=resume, overwrite=overwrite)
    accelerator = _accelerator()
    if accelerator.distributed_type == DistributedType.DEEPSPEED:
        # accelerate's backward steps the DeepSpeed engine itself, which breaks this loop's
        # variable gradient accumulation; DDP and FSDP keep the loss semantics.
        raise InputError(
            "accelerate config", "DeepSpeed needs engine: trl; the own loop runs DDP or FSDP", field="engine"
        )
    # accelerate's own FSDP never starts on CPU (it falls back to plain multi-process), so the loop
    # reads the launcher's switch and shards the model itself, the same way on GPU and CPU.
    sharded = accelerator.num_processes > 1 and parse_flag_from_env("ACCELERATE_USE_FSDP")
    if accelerator.device.type == "cpu" and config.threads is not None:
        torch.set_num_threads(config.threads)
    main = accelerator.is_main_process
    run_dir = Path(config.out)
    start: list[Path | None] = [None]  # where the run continues from; broadcast from the main process
    if main:
        if resume:
            start[0] = _resume_point(run_dir, sharded, from_step)
        else:
            start_run_dir(config, run_dir, sharded, overwrite)
    broadcast_object_list(start)
    saved = [e["step"] for e in checkpoints.read_manifest(run_dir)["checkpoints"]] if start[0] else []

    torch.manual_seed(config.seed)
    # A checkpoint holds the full weights; a sharded resume state holds them in its shards, loaded
    # into the base model once it is sharded.
    source = str(start[0]) if start[0] and not sharded else config.model
    model, tokenizer = load_model_and_tokenizer(
        source, dtype=config.dtype, attn_implementation=config.attn_implementation
    )
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    if config.packing:
        use_packed_attention(model)
    encoded, report = encode_training_data(tokenizer, config)
    lengths = [len(item) for item in encoded]
    num = len(encoded)
    total = batching.total_steps(num, config.batch_size, config.epochs, config.steps)
    per_epoch = batching.steps_per_epoch(num, config.batch_size)
    save_at = set(checkpoint_steps(config.schedule, total))
    resume_at = resume_steps(config.schedule, config.resume_every, total)

    # The optimizer is built on the parameters as they will train: sharded ones under FSDP.
    module = CompletionLoss(model, config.loss_chunk_tokens)
    if sharded:
        module = sharding.shard(module, model, config.model, accelerator.mixed_precision)
    optimizer = torch.optim.AdamW(
        module.parameters(),
        lr=config.lr,
        betas=config.betas,
        weight_decay=config.weight_decay,
        eps=config.eps,
    )
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lr_multiplier(config.lr_schedule, total, warmup_steps(total, config.warmup_ratio))
    )
    state: dict[str, Any] = {"step": 0, "tokens_seen": 0, "wall_time": 0.0}
    if start[0] is not None:
        state = _trainer_state(start[0], [] if sharded else saved)
        if sharded:
            sharding.check_world_size(start[0], state)
            sharding.load(start[0], module, optimizer)
        elif state["optimizer"] is None:
            raise InputError(
                str(run_dir), "this run trained under FSDP: resume it under FSDP (its state is sharded)"
            )
        else:
            if state.get("model") is not None:  # the checkpoint's weights are the lower-precision copy
                model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"])

    if main:
        write_json_atomic(run_dir / DATA_STATS, asdict(report))
        console.print(
            f"train: {report.kept}/{report.examples} examples ({report.truncated} truncated, "
            f"{report.dropped} dropped at max_length={config.max_length}), {total} steps "
            f"({per_epoch}/epoch), {accelerator.num_processes} process(es)"
            + (", FSDP" if sharded else "")
            + (f", resuming after step {state['step']}" if start[0] else "")
        )
        if not (run_dir / checkpoints.MANIFEST).exists():
            base_hash = checkpoints.content_hash(checkpoints.base_model_dir(config.model))
            checkpoints.write_manifest(run_dir, checkpoints.new_manifest(config.model, base_hash, total))
    accelerator.wait_for_everyone()

    if not sharded:
        module, optimizer = accelerator.prepare(module, optimizer)
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
            # Python float, same on every process: DDP and FSDP average gradients over processes,
            # hence * world.
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
                # Under DDP only the last backward of a step all-reduces gradients. FSDP reduces (and
                # shards) them after every backward: holding unsharded gradients until the last one
                # would cost a whole unsharded model's worth of memory.
                last = k == len(batches) - 1
                with nullcontext() if last or sharded else accelerator.no_sync(module):
                    nll, entropy = batch_loss(module, batch)
                    accelerator.backward(nll * scale)
                sums += torch.stack([nll.detach().cpu(), entropy.cpu()]).float()
            max_norm = config.grad_clip if config.grad_clip is not None else float("inf")
            if sharded:  # a DTensor norm over every shard
                grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), max_norm).full_tensor()
            else:
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
            with _disk_full_is_an_error(run_dir, done):
                if log is not None:
                    log.log(row)
                    bar.update(0, advance=1, status=f"loss {row['loss']:.4f}")
                if done in save_at or (sharded and done in resume_at):
                    trainer_state = {
                        "step": done,
                        "epoch": row["epoch"],
                        "data_position": {
                            "epoch": step // per_epoch,
                            "batches_done_in_epoch": step % per_epoch + 1,
                        },
                        "tokens_seen": tokens_seen,
                        "wall_time": wall_time,
                        "scheduler": scheduler.state_dict(),
                        "rng": torch.get_rng_state(),
                    }
                if done in save_at:
                    _checkpoint(
                        accelerator, module, tokenizer, optimizer, run_dir, trainer_state, sharded,
                        disk.save_dtype(config.model),
                    )  # fmt: skip
                    if main:
                        disk.drop_unswept(run_dir, config, total, done)
                if sharded and done in resume_at:
                    sharding.save(run_dir, done, module, optimizer, trainer_state)
    if log is not None:
        log.close()
    accelerator.wait_for_everyone()
    # A launched run ends its process group itself: left to interpreter exit, gloo's threads can be
    # torn down mid-flight and abort a finished worker ("terminate called without an active exception").
    accelerator.end_training()
    return run_dir


@contextmanager
def _disk_full_is_an_error(run_dir: Path, step: int) -> Iterator[None]:
    """A full disk while logging or saving ends the run with one line; what was saved before stays the
    run's state (a checkpoint or resume state is renamed into place only once complete, and resume
    cuts metrics.jsonl back to it)."""
    try:
        yield
    except OSError as exc:
        if exc.errno != errno.ENOSPC:
            raise
        raise SftscopeError(
            f"{run_dir}: disk full while saving step {step}; the run keeps its last complete checkpoint. "
            f"Free space, then continue with `sftscope train --resume {run_dir}`"
        ) from exc


def _checkpoint(
    accelerator: Any,
    module: Any,
    tokenizer: Any,
    optimizer: Any,
    run_dir: Path,
    trainer_state: dict[str, Any],
    sharded: bool,
    dtype: str,
) -> None:
    """Save the weights for evaluation, the tokenizer, and (without FSDP) the full state to continue
    from; written by the main process. Under FSDP the optimizer state stays in the sharded resume state."""
    # Sharded weights: every process takes part in gathering them.
    state_dict = sharding.full_weights(module) if sharded else None
    if not accelerator.is_main_process:
        return
    optimizer_state = None if sharded else optimizer.state_dict()
    if state_dict is None:
        state_dict = accelerator.unwrap_model(module).model.state_dict()
    # Evaluation reads the base model's dtype; the exact weights for resume go into the state file.
    lossy = any(v.is_floating_point() and str(v.dtype) != f"torch.{dtype}" for v in state_dict.values())
    exact = state_dict if lossy and optimizer_state is not None else None
    state = {**trainer_state, "optimizer": optimizer_state, "model": exact}
    entry = {key: trainer_state[key] for key in ("step", "epoch", "tokens_seen", "wall_time")}
    manifest = checkpoints.read_manifest(run_dir)
    model = accelerator.unwrap_model(module).model
    checkpoints.save_checkpoint(
        run_dir, manifest, entry, model, tokenizer, state, disk.cast(state_dict, dtype)
    )


def resume(run_dir: str | Path, config: TrainConfig | None = None, from_step: int | None = None) -> Path:
    """Continue a killed run from its last complete checkpoint (or checkpoint `from_step`), with the
    config it was started with. A `config` given too must be that config: a differing one is an error
    naming the fields, never a silent switch of recipe mid-run."""
    run_dir = Path(run_dir)
    if not (run_dir / "config.yaml").is_file():
        raise InputError(str(run_dir), "not a training run directory (no config.yaml): nothing to resume")
    saved = load_config(run_dir / "config.yaml")
    if Path(saved.out).resolve() != run_dir.resolve():
        saved = saved.model_copy(update={"out": str(run_dir)})
    if config is not None:
        given = config.model_copy(update={"out": str(run_dir)}).model_dump(mode="json")
        differ = [key for key, value in saved.model_dump(mode="json").items() if given[key] != value]
        if differ:
            raise InputError(
                str(run_dir / "config.yaml"),
                f"the run was started with another config; differing fields: {', '.join(differ)}",
            )
    return train(saved, resume=True, from_step=from_step)
