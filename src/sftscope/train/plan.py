"""What a training run will need, from the model's config.json alone (no weights loaded): per-GPU
memory, disk per checkpoint and per run, and steps. `sftscope train CONFIG --plan` prints it; training
refuses to start when the planned checkpoints do not fit the free disk.

Memory terms are estimates for a decoder-only transformer with SwiGLU MLPs under full sharding
(FSDP / ZeRO-3: weights, gradients and AdamW state split over the GPUs): fp32 master weights and
gradients, two fp32 AdamW moments, bf16 activations with a FlashAttention-style kernel (no
sequence-squared term), fp32 logits for the loss over the rows the loss computes at once (`loss_rows`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sftscope.errors import InputError
from sftscope.models.loading import resolve_model
from sftscope.train.config import TrainConfig

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
GIB = 1024**3


@dataclass(frozen=True)
class ModelShape:
    """The sizes of a decoder-only transformer that memory and disk depend on."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    qk_norm: bool
    dtype: str

    @classmethod
    def from_config(cls, values: dict[str, Any], source: str = "config.json") -> ModelShape:
        try:
            hidden, heads = int(values["hidden_size"]), int(values["num_attention_heads"])
            return cls(
                hidden=hidden,
                intermediate=int(values["intermediate_size"]),
                layers=int(values["num_hidden_layers"]),
                heads=heads,
                kv_heads=int(values.get("num_key_value_heads") or heads),
                head_dim=int(values.get("head_dim") or hidden // heads),
                vocab=int(values["vocab_size"]),
                tied=bool(values.get("tie_word_embeddings", False)),
                qk_norm=values.get("model_type") in ("qwen3", "qwen3_moe", "olmo2", "gemma3"),
                dtype=str(values.get("dtype") or values.get("torch_dtype") or "float32"),
            )
        except KeyError as exc:
            raise InputError(source, "not a decoder config the plan knows", field=str(exc.args[0])) from exc

    def parameters(self) -> int:
        """Every weight: embeddings, attention (q, k, v, o; q/k norms where the model has them), SwiGLU
        MLP, two norms per layer, the final norm, and an untied output layer."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        attention = self.hidden * (2 * q + 2 * kv) + (2 * self.head_dim if self.qk_norm else 0)
        layer = attention + 3 * self.hidden * self.intermediate + 2 * self.hidden
        embeddings = self.vocab * self.hidden * (1 if self.tied else 2)
        return embeddings + self.layers * layer + self.hidden

    def activation_bytes_per_token(self, checkpointing: bool) -> int:
        """bf16 activations kept for backward per token: every layer's inputs to its matmuls, norms and
        residuals; with checkpointing only each layer's input, plus one layer recomputed at a time."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        one_layer = 2 * (4 * self.hidden + 2 * q + 2 * kv + 4 * self.intermediate)
        if checkpointing:
            return 2 * self.hidden * self.layers + one_layer
        return one_layer * self.layers


def model_shape(name_or_path: str) -> ModelShape:
    """The shape from a model's config.json: a shipped base, a local directory, or a hub id in the cache."""
    path = Path(resolve_model(name_or_path)) / "config.json"
    if not path.is_file():
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(name_or_path, "config.json", local_files_only=True))
        except Exception as exc:  # not local and not in the cache: no network at plan time
            raise InputError(
                name_or_path, "no config.json found locally for this model", field="model"
            ) from exc
    return ModelShape.from_config(json.loads(path.read_text(encoding="utf-8")), str(path))


@dataclass(frozen=True)
class Plan:
    """Memory per GPU and disk, in bytes, for one run on `gpus` GPUs."""

    parameters: int
    gpus: int
    weights: int
    gradients: int
    optimizer: int
    activations: int
    activations_checkpointed: int
    loss_logits: int
    loss_chunk: str
    checkpoint: int
    resume_state: int
    steps: int
    saved_steps: int
    kept_steps: int
    run_disk: int


def loss_rows(config: TrainConfig, shape: ModelShape) -> tuple[int, str]:
    """Token rows whose fp32 logits the loss holds at once, and who decides it.

    The own loop: `loss_chunk_tokens` response tokens (at most a micro-batch). The trl engine: TRL's
    loss runs the output layer over the whole micro-batch, unless Liger's fused linear cross-entropy
    does it in chunks of about tokens x hidden / vocab rows (its rule, rounded up to a power of 2).
    """
    tokens = config.micro_batch_tokens
    if config.engine != "trl":
        chunk = min(tokens, config.loss_chunk_tokens or tokens)
        return chunk, f"loss_chunk_tokens {chunk}" if chunk < tokens else "unchunked"
    if config.use_liger_kernel:
        chunks = -(-shape.vocab // shape.hidden)
        return 1 << max(0, (-(-tokens // chunks) - 1).bit_length()), "Liger's fused cross-entropy"
    return tokens, "TRL, unchunked"


def make_plan(config: TrainConfig, shape: ModelShape, steps: int, saved: int, kept: int, gpus: int) -> Plan:
    """The plan of `config` on `gpus` GPUs; `saved`/`kept`: checkpoints written / left on disk."""
    params = shape.parameters()
    tokens = config.micro_batch_tokens
    rows, chunking = loss_rows(config, shape)
    checkpoint = params * DTYPE_BYTES.get(shape.dtype, 4)
    resume_state = params * (4 + 8)  # fp32 weights + two fp32 AdamW moments
    # The own loop keeps its resume state inside every checkpoint it keeps; TRL keeps one.
    resume_copies = 1 if config.engine == "trl" else kept
    return Plan(
        parameters=params,
        gpus=gpus,
        weights=params * 4 // gpus,
        gradients=params * 4 // gpus,
        optimizer=params * 8 // gpus,
        activations=tokens * shape.activation_bytes_per_token(False),
        activations_checkpointed=tokens * shape.activation_bytes_per_token(True),
        loss_logits=rows * shape.vocab * 4 * 3,  # fp32 logits, log-softmax and their gradient
        loss_chunk=chunking,
        checkpoint=checkpoint,
        resume_state=resume_state,
        steps=steps,
        saved_steps=saved,
        kept_steps=kept,
        run_disk=kept * checkpoint + resume_copies * resume_state,
    )


def format_plan(plan: Plan, config: TrainConfig) -> str:
    """The plan as aligned lines of GiB."""
    activations = plan.activations_checkpointed if config.gradient_checkpointing else plan.activations
    peak = plan.weights + plan.gradients + plan.optimizer + activations + plan.loss_logits
    rows = [
        ("parameters", f"{plan.parameters:,} ({plan.parameters / 1e9:.3f} B)"),
        (f"weights (fp32, /{plan.gpus} GPUs)", _gib(plan.weights)),
        ("gradients (fp32)", _gib(plan.gradients)),
        ("optimizer (AdamW, fp32)", _gib(plan.optimizer)),
        (f"activations, {config.micro_batch_tokens} tokens", _gib(plan.activations)),
        ("activations, checkpointed", _gib(plan.activations_checkpointed)),
        (f"loss logits (fp32, {plan.loss_chunk})", _gib(plan.loss_logits)),
        (f"peak per GPU (checkpointing {'on' if config.gradient_checkpointing else 'off'})", _gib(peak)),
        ("disk per checkpoint", _gib(plan.checkpoint)),
        ("resume state", _gib(plan.resume_state)),
        (f"disk per run ({plan.kept_steps} of {plan.saved_steps} checkpoints kept)", _gib(plan.run_disk)),
        ("steps", str(plan.steps)),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value:>12}" for name, value in rows)


def _gib(value: int) -> str:
    return f"{value / GIB:.2f} GiB"
