"""The transformers backend: any local HF causal LM, decoded by `engine.Engine` on CPU or one GPU."""

from __future__ import annotations

from typing import Any

from sftscope.data.chat import render_prompt
from sftscope.data.records import Message
from sftscope.evaluate.backends.attention import use_decode_attention
from sftscope.evaluate.backends.base import Generation, OnDone, PromptLengths, prompt_seeds
from sftscope.evaluate.backends.engine import Engine
from sftscope.evaluate.backends.stops import opens_think
from sftscope.evaluate.spec import SamplingSpec
from sftscope.models.loading import load_model, load_tokenizer


class TransformersBackend:
    """Loads checkpoints with `sftscope.models.loading` (fp32 on CPU) and decodes them in batches."""

    name = "transformers"

    def __init__(
        self,
        batch_size: int = 64,
        dtype: str = "float32",
        device: str = "cpu",
        threads: int | None = 1,
        prefill_tokens: int = 1024,
    ) -> None:
        self.batch_size = batch_size
        # Padded prompt tokens per prefill forward (vLLM's max_num_batched_tokens plays this part):
        # small enough for a tiny model's activations to stay in the CPU cache; raise it for big
        # models on a GPU, whose matmuls want more rows. Outputs do not depend on it.
        self.prefill_tokens = prefill_tokens
        self.dtype = dtype
        self.device = device
        # Decoding a small model is thousands of tiny matmuls; with an intra-op pool every one pays a
        # thread barrier, which on a busy machine costs far more than the matmul itself. One thread
        # by default; raise it for big models on idle cores.
        self.threads = threads
        self.model: Any = None
        self.tokenizer: Any = None
        self.engine: Any = None

    def load(self, model_path: str) -> None:

        self.close()
        if self.threads is not None and self.device == "cpu":
            import torch

            torch.set_num_threads(self.threads)
        # The checkpoint exactly as saved: no pad token added (the engine pads with any id, see Engine).
        tokenizer = load_tokenizer(model_path, add_pad=False)
        model = load_model(model_path, dtype=self.dtype)
        self.model, self.tokenizer = model.to(self.device).eval(), tokenizer
        use_decode_attention(self.model)  # SDPA models only; others keep their attention
        self.engine = Engine(
            self.model, tokenizer, self.batch_size, eos_ids(model, tokenizer), self.prefill_tokens
        )

    def render(self, messages: list[Message], suffix: str | None) -> str:
        return render_prompt(self._tokenizer(), messages, suffix)

    def generate(
        self,
        prompts: list[str],
        sampling: SamplingSpec,
        *,
        seeds: list[int] | None = None,
        on_done: OnDone | None = None,
    ) -> list[Generation]:
        tokenizer = self._tokenizer()
        # The chat template already holds any BOS; adding special tokens would double it (as in training).
        ids = tokenizer(prompts, add_special_tokens=False)["input_ids"]
        results: list[Generation | None] = [None] * len(prompts)

        def done(index: int, generation: Generation) -> None:
            results[index] = generation
            if on_done is not None:
                on_done(index, generation)

        seeds = prompt_seeds(prompts, sampling, seeds)
        self.engine.run(ids, sampling, seeds, [opens_think(p) for p in prompts], done)
        return [r for r in results if r is not None]

    def prompt_lengths(self, prompts: list[str]) -> PromptLengths | None:
        context = getattr(self.model.config, "max_position_embeddings", None)
        if context is None:
            return None
        ids = self._tokenizer()(prompts, add_special_tokens=False)["input_ids"]
        return PromptLengths([len(i) for i in ids], int(context))

    def _tokenizer(self) -> Any:
        if self.tokenizer is None:
            raise RuntimeError("no model loaded: call load(path) first")
        return self.tokenizer

    def close(self) -> None:
        self.model = self.tokenizer = self.engine = None


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    """The tokenizer's EOS and the generation config's (chat models often end turns with another token)."""
    ids = {tokenizer.eos_token_id} if tokenizer.eos_token_id is not None else set()
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    if configured is not None:
        ids |= set(configured) if isinstance(configured, list) else {configured}
    if not ids:
        raise ValueError(f"{getattr(tokenizer, 'name_or_path', 'tokenizer')} has no EOS token to stop at")
    return ids
