"""The one config of `sftscope train`: a YAML file, a preset under it, `key=value` overrides over it."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError, model_validator

from sftscope.config.base import Strict
from sftscope.config.legacy import Rewrites
from sftscope.config.overrides import merge, parse_overrides
from sftscope.config.specfile import drop_replaced, locate, read_yaml_mapping, validation_error
from sftscope.data.chat import DEFAULT_SUFFIX
from sftscope.errors import InputError
from sftscope.train.presets import preset_values


class CheckpointSchedule(Strict):
    """Which optimizer steps write a checkpoint: the union of every rule set here, plus the final step."""

    every: int | None = None
    """Save every N steps (N, 2N, ...); None for no periodic checkpoints."""
    log_spaced: bool = False
    """Also save at steps 1, 2, 4, 8, ... (dense early, where the dip happens)."""
    steps: list[int] = []
    """Also save at these exact steps; steps beyond the run's end are ignored."""

    @model_validator(mode="after")
    def _positive(self) -> CheckpointSchedule:
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")
        if any(step < 1 for step in self.steps):
            raise ValueError("steps must be >= 1")
        return self


class TrainConfig(Strict):
    """Everything one training run needs; saved resolved as RUN/config.yaml.

    Exactness: on CPU, with the same seed, config and thread count, the per-step losses are bitwise
    reproducible, including across a kill and `--resume`. On GPU only up to kernel nondeterminism.
    """

    model: str
    """Base model: a shipped micro base name (e.g. 'micro-strong'), a local directory or a hub id."""
    engine: Literal["sftscope", "trl"] = "sftscope"
    """Who runs the optimizer steps: 'sftscope' (the own loop, fastest on CPU) or 'trl' (TRL's SFTTrainer
    under accelerate: DDP, FSDP or DeepSpeed ZeRO-3). Same data, loss, schedule and run directory."""
    data: str
    """Training data: a data directory (its train.jsonl) or a .jsonl/.parquet file of Example rows."""
    out: str
    """The run directory to create (checkpoints, manifest.json, metrics.jsonl, config.yaml)."""
    preset: str | None = None
    """The preset whose values sit under this config's own values (recorded for provenance)."""
    suffix: str | None = DEFAULT_SUFFIX
    """Instruction appended to the last user turn of every prompt; None for no suffix."""
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    """Weight dtype. fp32 keeps exact master weights; for bf16 compute on GPUs keep fp32 here and set
    accelerate's mixed_precision: bf16 (configs/accelerate/*-gpu.yaml). bf16 is far slower on CPU."""
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = "auto"
    """Attention kernel given to transformers when the model is loaded. 'auto': flash_attention_2 where
    flash-attn and a GPU are there (packed rows then use its variable-length kernel from the position
    ids, with no dense mask), else sdpa. The own loop runs sdpa on packed rows once per example
    (`train/packed_attention.py`), not over a dense block-diagonal mask; the trl engine leaves it to TRL."""

    max_length: int = 20000
    """Maximum tokens of prompt + completion (incl. EOS) per example."""
    length_policy: Literal["error", "truncate", "drop"] = "error"
    """What a longer example does: stop with an error, lose the completion's tail (right truncation,
    as the reference study did), or be left out. Counts are printed and written to RUN/data_stats.json."""

    packing: bool = True
    """True: padding-free packing (examples concatenated, position ids restart per example, no
    cross-example attention). False: padded batches with an attention mask. Same loss either way."""
    pad_to_max_length: bool = False
    """Padded mode only: pad every row to max_length, as the reference study did. Changes cost, not the
    loss; there for measurements."""
    batch_size: int = 32
    """Global batch: examples per optimizer step, over all processes and accumulation steps."""
    micro_batch_tokens: int = 4096
    """Token budget of one forward pass (per process), incl. padding; sets gradient accumulation. An
    example longer than this runs alone. Does not change the results beyond float rounding."""
    epochs: float | None = 1.0
    """Training length in epochs (fractions allowed); ignored when `steps` is set."""
    steps: int | None = None
    """Training length in optimizer steps; overrides `epochs`."""

    lr: float = 5e-5
    """Peak learning rate."""
    lr_schedule: Literal["cosine", "constant", "linear"] = "cosine"
    """Decay after warmup: cosine to 0, constant, or linear to 0."""
    warmup_ratio: float = 0.0
    """Share of the total steps with linear warmup from 0 (HF/verl convention: step 1 has lr 0 when > 0)."""
    betas: tuple[float, float] = (0.9, 0.999)
    """AdamW betas."""
    weight_decay: float = 0.01
    """AdamW decoupled weight decay."""
    eps: float = 1e-8
    """AdamW epsilon."""
    grad_clip: float | None = 1.0
    """Clip the global gradient norm to this value; None for no clipping (the norm is still logged)."""
    seed: int = 1
    """Seeds the data order (per epoch, from (seed, epoch)) and torch."""
    threads: int | None = 1
    """torch threads when training on CPU. 1 by default: on a busy small machine OpenMP threads wait on
    each other and run far slower than one (benchmarks/train_throughput.py); a fixed count also keeps
    float reductions in the same order, which exact resume relies on. None keeps torch's default."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, one more forward of compute (for large
    models)."""
    loss_chunk_tokens: int | None = 2048
    """Response tokens whose logits the loss computes at once: the fp32 logits (and log-softmax) alive
    at any moment are at most this x vocab, e.g. 1.2 GB per tensor for Qwen3's 151,936 tokens at 2048,
    where one 16k-token response would need 10 GB each unchunked. A micro-batch with more response
    tokens is split into chunks whose logits are recomputed in the backward pass (one more output-layer
    forward). None computes all at once. Same loss and gradients either way, up to float rounding.
    Own loop only: engine trl computes TRL's loss over the whole micro-batch, or in chunks of its own
    with use_liger_kernel (Liger's fused linear cross-entropy); `--plan` shows which."""
    resume_every: int | None = None
    """Steps between saves of the state a preempted run resumes from (model and optimizer, only the
    newest kept in RUN/resume/), besides the one at every checkpoint step (None: only there). Own loop
    under FSDP: sharded, written with torch.distributed.checkpoint; without FSDP each checkpoint holds
    the full state and this is unused. Engine trl: TRL's own checkpoint (sharded under FSDP/ZeRO-3)."""

    schedule: CheckpointSchedule = CheckpointSchedule(log_spaced=True)
    """When to save checkpoints; the final step is always saved."""
    report_to: list[Literal["tensorboard", "wandb"]] | Literal["auto"] = "auto"
    """Extra trackers next to metrics.jsonl. 'auto' = TensorBoard when installed; W&B only when named."""
    progress: bool = True
    """Show a progress bar with ETA on stderr (main process only)."""
    keep: Literal["all", "swept"] = "all"
    """Which checkpoints' weights stay on disk: every scheduled one, or only `keep_steps` and the final
    step (plus the newest resume state, so a killed run can continue)."""
    keep_steps: list[int] = []
    """The steps a later sweep will evaluate (`study run` fills it from its eval steps); read with
    keep: swept only."""
    use_liger_kernel: bool = False
    """engine trl: Liger's fused Triton kernels (RMSNorm, RoPE, SwiGLU) for less activation memory."""
    activation_offloading: bool = False
    """engine trl: offload activations to CPU memory during the forward pass (TRL's option)."""

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        positive = {
            "max_length": self.max_length,
            "batch_size": self.batch_size,
            "micro_batch_tokens": self.micro_batch_tokens,
            "loss_chunk_tokens": self.loss_chunk_tokens,
            "resume_every": self.resume_every,
        }
        for name, value in positive.items():
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.steps is None and (self.epochs is None or self.epochs <= 0):
            raise ValueError("set steps, or epochs > 0")
        if self.steps is not None and self.steps < 1:
            raise ValueError("steps must be >= 1")
        if not 0.0 <= self.warmup_ratio < 1.0:
            raise ValueError("warmup_ratio must be in [0, 1)")
        if any(step < 1 for step in self.keep_steps):
            raise ValueError("keep_steps must be >= 1")
        if self.engine != "trl":
            for name in ("use_liger_kernel", "activation_offloading"):
                if getattr(self, name):
                    raise ValueError(f"{name} is a TRL option: set engine: trl")
        return self


def validate(values: dict[str, Any], source: str, root: yaml.Node | None = None) -> TrainConfig:
    """A TrainConfig, or an InputError naming every bad field (e.g. an unknown key), at its line in the
    YAML file `root` was read from (no lines without one)."""
    try:
        return TrainConfig.model_validate(values)
    except ValidationError as exc:
        raise validation_error(source, root, exc, values=values) from exc


def load_config(
    path: str | Path | None = None, overrides: list[str] | None = None, preset: str | None = None
) -> TrainConfig:
    """Resolve preset < YAML file < overrides into a TrainConfig (a preset named in the file counts too)."""

    values: dict[str, Any] = {}
    root = None
    source = str(path) if path is not None else "command line"
    if path is not None:
        values, root = read_yaml_mapping(Path(path), "a train config must be a YAML mapping")
        values = _resolve_paths(values, Path(path), root)
    command_line = parse_overrides(overrides or [])
    values = merge(values, command_line)
    if root is not None:
        drop_replaced(root, command_line)
    name = preset or values.get("preset")
    if name is not None:
        values = merge(preset_values(name, source), {**values, "preset": name})
    if overrides and path is not None:
        source += " + command line"
    return validate(values, source, root)


PATH_FIELDS = ("model", "data", "out")
"""The fields of a train config that name files or folders."""


def _resolve_paths(values: dict[str, Any], path: Path, node: yaml.Node) -> dict[str, Any]:
    """Relative paths in a config file resolve against its `root:` (itself relative to the file), as
    in every other spec. `model` may also be a shipped base name or a hub id: it is a path only when
    that path exists. A file without `root:` is the old form, read against the working directory for
    one more release, with a notice."""
    values = dict(values)
    base = values.pop("root", None)
    relative = [
        k for k in PATH_FIELDS if isinstance(values.get(k), str) and not Path(values[k]).is_absolute()
    ]
    if base is None:
        if any(k != "model" or Path(values[k]).exists() for k in relative):
            rewrites = Rewrites(path)
            rewrites.note("relative model/data/out read against the working directory", "add `root: DIR`")
            rewrites.warn()
        return values
    if not isinstance(base, str):
        line, field = locate(node, ("root",))
        raise InputError(str(path), "must be a folder path", line=line, field=field)
    folder = (path.parent / base).resolve()
    for key in relative:
        candidate = folder / values[key]
        if key != "model" or candidate.exists():
            values[key] = str(candidate)
    return values


def save_config(config: TrainConfig, path: Path) -> None:
    """Write the resolved config as YAML (all fields, so the file alone reproduces the run). Paths
    still relative were given on the command line: `root` records the folder they are relative to."""
    values = {"root": str(Path.cwd()), **config.model_dump(mode="json")}
    path.write_text(yaml.safe_dump(values, sort_keys=False), encoding="utf-8")
