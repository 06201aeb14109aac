"""The `trl` engine: TRL's SFTTrainer (the HF Trainer under accelerate: DDP, FSDP or DeepSpeed ZeRO-3)
writing the same run directory as the own loop.

sftscope keeps the data (encode_dataset: chat template, masked prompt, trained EOS; handed to TRL as
input_ids + completion_mask, so TRL templates and tokenizes nothing), the data order (each epoch's
permutation from (seed, epoch): step s trains the own loop's examples of step s), AdamW over every
parameter, the lr schedule, the checkpoint schedule and the run directory. TRL keeps the step itself
(its fused LM head, the token-mean loss over the global batch, backward, clipping), the distributed
wrapping and its memory options (padding_free, use_liger_kernel, activation offloading, gradient
checkpointing).

The resume state is TRL's own checkpoint (weights at full precision, optimizer, scheduler, RNG;
sharded under FSDP and ZeRO-3), saved at every checkpoint step and every `resume_every` steps, the
newest only kept, in RUN/resume/. Checkpoints
for evaluation go to RUN/checkpoints/ first, so a resume state never runs ahead of the manifest.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from sftscope.errors import InputError
from sftscope.models.loading import load_model_and_tokenizer
from sftscope.progress import console
from sftscope.rundir import DATA_STATS, write_json_atomic
from sftscope.train import batching, checkpoints, disk
from sftscope.train.config import TrainConfig
from sftscope.train.encode import Encoded, encode_training_data
from sftscope.train.loop import start_run_dir
from sftscope.train.metrics import MetricsLog, read_metrics, truncate_metrics
from sftscope.train.schedules import lr_multiplier, resume_steps, warmup_steps

RESUME_DIR = "resume"
TRAINER_STATE = "trainer_state.json"  # written by the HF Trainer after the rest of its checkpoint


class EpochOrder(torch.utils.data.Sampler[int]):
    """The own loop's order: each epoch's permutation depends only on (seed, epoch) (HF Trainer calls
    set_epoch through accelerate's data loader before every epoch)."""

    def __init__(self, num_examples: int, seed: int):
        self.num_examples, self.seed, self.epoch = num_examples, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_examples

    def __iter__(self) -> Any:
        return iter(batching.epoch_order(self.num_examples, self.seed, self.epoch).tolist())


def _dataset(encoded: list[Encoded]) -> Any:
    """input_ids + completion_mask: TRL builds the labels (prompt masked, completion and EOS trained)."""
    from datasets import Dataset

    return Dataset.from_dict(
        {
            "input_ids": [item.input_ids for item in encoded],
            "completion_mask": [
                [0] * item.prompt_len + [1] * (len(item) - item.prompt_len) for item in encoded
            ],
        }
    )


def micro_batch_size(config: TrainConfig, encoded: list[Encoded], world: int) -> int:
    """Examples per forward pass: as many average-length examples as fit `micro_batch_tokens`, rounded
    down to a divisor of the per-process batch, so optimizer steps hold exactly the own loop's examples."""
    if config.batch_size % world:
        raise InputError(
            "config", f"engine trl needs batch_size divisible by the {world} processes", field="batch_size"
        )
    per_process = config.batch_size // world
    mean_length = sum(len(item) for item in encoded) / len(encoded)
    fit = max(1, int(config.micro_batch_tokens // mean_length))
    sizes = [d for d in range(1, min(fit, per_process) + 1) if per_process % d == 0]
    # accelerate completes an epoch's last, uneven pass from the epoch's start; a size that splits the
    # examples evenly over the processes avoids those repeats.
    even = [d for d in sizes if len(encoded) % (d * world) == 0]
    return max(even or sizes)


def _resume_state(run_dir: Path) -> Path | None:
    """The newest complete TRL checkpoint in RUN/resume/, if any."""
    folder = run_dir / RESUME_DIR
    done = [p for p in folder.glob("checkpoint-*") if (p / TRAINER_STATE).exists()] if folder.exists() else []
    return max(done, key=lambda p: int(p.name.rsplit("-", 1)[1]), default=None)


def _roll_back(run_dir: Path, step: int) -> None:
    """Forget everything after `step`: manifest entries, checkpoint directories, metrics rows and any
    newer (incomplete) resume state."""
    if (run_dir / checkpoints.MANIFEST).exists():
        checkpoints.prune_after(run_dir, checkpoints.read_manifest(run_dir), step)
    truncate_metrics(run_dir, step)
    folder = run_dir / RESUME_DIR
    if folder.exists():
        for path in folder.glob("checkpoint-*"):
            if int(path.name.rsplit("-", 1)[1]) > step or not (path / TRAINER_STATE).exists():
                shutil.rmtree(path, ignore_errors=True)


def _mixed_precision() -> dict[str, bool]:
    """bf16/fp16 from the accelerate config that launched us (TrainingArguments would otherwise pick)."""
    mode = os.environ.get("ACCELERATE_MIXED_PRECISION", "no")
    return {"bf16": mode == "bf16", "fp16": mode == "fp16"}


def _trainer_class() -> type:
    from transformers import Trainer
    from trl import SFTTrainer

    class RunDirTrainer(SFTTrainer):
        """SFTTrainer with sftscope's order, optimizer, lr schedule, exact entropy and checkpoints."""

        def __init__(
            self, *args: Any, sftscope: TrainConfig, total: int, writer: _CheckpointWriter, **kw: Any
        ):
            self.sftscope, self.total, self.writer = sftscope, total, writer
            self.entropy_sum = self.target_count = 0.0
            super().__init__(*args, **kw)

        def _get_train_sampler(self, train_dataset: Any = None) -> Any:
            dataset = train_dataset if train_dataset is not None else self.train_dataset
            return EpochOrder(len(dataset), self.sftscope.seed)

        def create_optimizer(self, model: Any = None) -> Any:
            # Decay on every parameter, as the own loop (HF would exempt biases and norms).
            if self.optimizer is None:
                c = self.sftscope
                params = (model if model is not None else self.model).parameters()
                self.optimizer = torch.optim.AdamW(
                    params, lr=c.lr, betas=c.betas, weight_decay=c.weight_decay, eps=c.eps
                )
            return self.optimizer

        def create_scheduler(self, num_training_steps: int, optimizer: Any = None) -> Any:
            if self.lr_scheduler is None:
                c = self.sftscope
                multiplier = lr_multiplier(
                    c.lr_schedule, self.total, warmup_steps(self.total, c.warmup_ratio)
                )
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer or self.optimizer, multiplier)
            return self.lr_scheduler

        def compute_loss(self, model: Any, inputs: Any, return_outputs: bool = False, **kw: Any) -> Any:
            result = super().compute_loss(model, inputs, return_outputs=return_outputs, **kw)
            if self.model.training:
                # TRL logs the mean of per-micro-batch means; the own loop logs the token mean of the step.
                local = (inputs["labels"][..., 1:] != batching.IGNORE).sum()
                count = float(self.accelerator.gather_for_metrics(local).sum())
                self.entropy_sum += self._metrics["train"]["entropy"][-1] * count
                self.target_count += count
            return result

        def log(self, logs: dict[str, float], start_time: float | None = None) -> None:
            if "loss" in logs and self.model.training and self.target_count:
                self._metrics["train"]["entropy"] = [self.entropy_sum / self.target_count]
                self.entropy_sum = self.target_count = 0.0
            super().log(logs, start_time)

        def _save_checkpoint(self, model: Any, trial: Any) -> None:
            self.writer.save(self)  # the checkpoint for evaluation first: see the module docstring
            # The HF Trainer's save, without the model card SFTTrainer adds to the run directory.
            Trainer._save_checkpoint(self, model, trial)

    return RunDirTrainer


class _CheckpointWriter:
    """Writes RUN/checkpoints/step-N (weights in the base model's dtype) and its manifest entry, at the
    schedule's steps that are kept (not at a step that only saves a resume state)."""

    def __init__(self, run_dir: Path, config: TrainConfig, tokenizer: Any, total: int, main: bool):
        self.run_dir, self.config, self.tokenizer, self.main = run_dir, config, tokenizer, main
        self.dtype = disk.save_dtype(config.model)
        self.kept = disk.kept_steps(config, total)

    def save(self, trainer: Any) -> None:
        step = trainer.state.global_step
        if step not in self.kept:
            return
        full = trainer.accelerator.get_state_dict(trainer.model)  # a collective under FSDP / ZeRO-3
        if not self.main:
            return
        rows = {row["step"]: row for row in read_metrics(self.run_dir)}
        row = rows[step]
        wall_time = sum(r["tokens"] / r["tokens_per_s"] for s, r in rows.items() if s <= step)
        entry = {
            "step": step,
            "epoch": row["epoch"],
            "tokens_seen": row["tokens_seen"],
            "wall_time": wall_time,
        }
        state = {"step": step, "engine": "trl", "resume": f"{RESUME_DIR}/checkpoint-{step}"}
        model = trainer.accelerator.unwrap_model(trainer.model)
        manifest = checkpoints.read_manifest(self.run_dir)
        checkpoints.save_checkpoint(
            self.run_dir, manifest, entry, model, self.tokenizer, state, disk.cast(full, self.dtype)
        )


def _callback(
    config: TrainConfig, run_dir: Path, step_tokens: list[int], per_epoch: int, total: int, main: bool
) -> Any:
    from transformers import TrainerCallback

    # TRL saves its resume state at each of these; the writer adds the evaluation checkpoint only at
    # the schedule's kept steps.
    save_at = resume_steps(config.schedule, config.resume_every, total)

    class RunDirCallback(TrainerCallback):
        """The dense checkpoint schedule, and one metrics.jsonl row per optimizer step."""

        def __init__(self) -> None:
            self.started = 0.0
            self.elapsed = 0.0
            self.log = MetricsLog(run_dir, config.report_to, config.model_dump(mode="json")) if main else None

        def on_step_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.started = time.perf_counter()

        def on_step_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self.elapsed = time.perf_counter() - self.started
            control.should_save = state.global_step in save_at

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if self.log is None or not logs or "loss" not in logs:
                return
            done = state.global_step
            tokens = step_tokens[done - 1]
            self.log.log(
                {
                    "step": done,
                    "epoch": done / per_epoch,
                    "loss": logs["loss"],
                    "lr": logs["learning_rate"],
                    "grad_norm": logs["grad_norm"],
                    "entropy": logs["entropy"],
                    "tokens": tokens,
                    "tokens_per_s": tokens / self.elapsed,
                    "tokens_seen": sum(step_tokens[:done]),
                }
            )

        def on_train_end(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            if self.log is not None:
                self.log.close()

    return RunDirCallback()


def sft_config(
    config: TrainConfig, run_dir: Path, total: int, per_device: int, world: int, main: bool
) -> Any:
    """TRL's arguments: sftscope's step count and batch split, TRL's own memory options passed through.
    Packing is TRL's padding_free: one row per pass with position ids and no attention mask, which
    FlashAttention-2 reads as variable-length sequences."""
    from trl import SFTConfig

    return SFTConfig(
        output_dir=str(run_dir / RESUME_DIR),
        use_cpu=not torch.cuda.is_available(),
        **_mixed_precision(),
        seed=config.seed,
        data_seed=config.seed,
        max_steps=total,
        per_device_train_batch_size=per_device,
        gradient_accumulation_steps=config.batch_size // (world * per_device),
        learning_rate=config.lr,
        max_grad_norm=config.grad_clip if config.grad_clip is not None else float("inf"),
        gradient_checkpointing=config.gradient_checkpointing,
        padding_free=config.packing,
        max_length=None,  # already applied by encode_dataset's length policy
        completion_only_loss=True,
        use_liger_kernel=config.use_liger_kernel,
        activation_offloading=config.activation_offloading,
        logging_steps=1,
        save_strategy="no",  # the callback decides, from sftscope's schedule
        save_total_limit=1,
        report_to="none",
        disable_tqdm=not (main and config.progress),
        dataloader_drop_last=False,
        ddp_find_unused_parameters=False,
    )


def train_trl(config: TrainConfig, *, resume: bool = False, overwrite: bool = False) -> Path:
    """`loop.train` on TRL's SFTTrainer: same inputs, same run directory."""
    from accelerate import PartialState

    cpu = not torch.cuda.is_available()
    distributed = PartialState(cpu=cpu and int(os.environ.get("WORLD_SIZE", "1")) > 1)
    main, world = distributed.is_main_process, distributed.num_processes
    if cpu and config.threads is not None:
        torch.set_num_threads(config.threads)
    run_dir = Path(config.out)
    if main and not resume:
        start_run_dir(config, run_dir, overwrite=overwrite)
    state_dir = _resume_state(run_dir) if resume else None
    if main and resume:
        _roll_back(run_dir, int(state_dir.name.rsplit("-", 1)[1]) if state_dir else 0)
    distributed.wait_for_everyone()

    torch.manual_seed(config.seed)
    model, tokenizer = load_model_and_tokenizer(
        config.model, dtype=config.dtype, attn_implementation=config.attn_implementation
    )
    encoded, report = encode_training_data(tokenizer, config)
    num = len(encoded)
    total = batching.total_steps(num, config.batch_size, config.epochs, config.steps)
    per_epoch = batching.steps_per_epoch(num, config.batch_size)
    step_tokens = [
        sum(len(encoded[i]) for i in batching.global_batch(num, config.batch_size, config.seed, step))
        for step in range(total)
    ]
    per_device = micro_batch_size(config, encoded, world)
    repeated = -num % (per_device * world) if world > 1 else 0
    if main:
        write_json_atomic(run_dir / DATA_STATS, asdict(report))
        done = int(state_dir.name.rsplit("-", 1)[1]) if state_dir else 0
        console.print(
            f"train (trl): {report.kept}/{report.examples} examples ({report.truncated} truncated, "
            f"{report.dropped} dropped at max_length={config.max_length}), {total} steps "
            f"({per_epoch}/epoch), {world} process(es), {per_device} per forward pass"
            + (f", resuming after step {done}" if state_dir else "")
        )
        if repeated:
            console.print(
                f"train (trl): {num} examples do not split into passes of {per_device} over {world} "
                f"processes: accelerate repeats {repeated} example(s) from the epoch's start in its last step"
            )
        if not (run_dir / checkpoints.MANIFEST).exists():
            base_hash = checkpoints.content_hash(checkpoints.base_model_dir(config.model))
            checkpoints.write_manifest(run_dir, checkpoints.new_manifest(config.model, base_hash, total))
    distributed.wait_for_everyone()

    args = sft_config(config, run_dir, total, per_device, world, main)
    writer = _CheckpointWriter(run_dir, config, tokenizer, total, main)
    trainer = _trainer_class()(
        model=model,
        args=args,
        train_dataset=_dataset(encoded),
        processing_class=tokenizer,
        callbacks=[_callback(config, run_dir, step_tokens, per_epoch, total, main)],
        sftscope=config,
        total=total,
        writer=writer,
    )
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)  # stdout carries only the run directory
    trainer.train(resume_from_checkpoint=str(state_dir) if state_dir else None)
    distributed.wait_for_everyone()
    distributed.destroy_process_group()  # as the own loop does at its end (see loop.train)
    return run_dir
