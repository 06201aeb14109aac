"""Batched decoding of a transformers causal LM with a KV cache, right-padded prefill and slot refill.

Why not `model.generate`: it keeps decoding every row of a batch until the longest one ends, and
its stop-string check re-decodes each row's tail at every step. On CPU, where a step's cost is
mostly fixed overhead, what pays is a batch that stays full. So:

- prompts are sorted by length, so a prefill group pads little, and a group is prefilled in
  forwards of at most `prefill_tokens` padded tokens, whose activations stay in the CPU cache;
- each row has its own slot in the cache (`kv_cache.SlotCache`), its tokens left-aligned, so rows of
  any lengths share a batch and each writes its next token at its own column;
- a row that ends (EOS, stop string, length) leaves the batch at once: the last live rows move into
  the holes and the batch is cut short, so a row leaving copies one row's cache, not the batch's;
- when a quarter of the slots are free, waiting prompts are prefilled and copied into the free
  slots; the running rows stay where they are;
- each row samples from its own `torch.Generator` (seeded per sample), so a sampled output does not
  depend on which rows share its batch; greedy decoding takes the argmax.

The slot layout assumes full-attention layers, as in Llama/Qwen/Mistral without sliding windows;
for other architectures use the vLLM backend.
"""

from __future__ import annotations

import inspect
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import torch

from sftscope.errors import SftscopeError
from sftscope.evaluate.backends.attention import NAME as DECODE_ATTENTION
from sftscope.evaluate.backends.base import Generation, OnDone
from sftscope.evaluate.backends.kv_cache import SlotCache
from sftscope.evaluate.backends.stops import StopWatcher
from sftscope.evaluate.spec import SamplingSpec

REFILL_AT = 0.75  # refill once at most this share of the slots is busy
# Attention implementations that take the engine's 4-D decode mask: boolean for SDPA and ours,
# additive (0 / dtype min) for eager, as transformers builds them.
BOOLEAN_MASK = ("sdpa", DECODE_ATTENTION)
ADDITIVE_MASK = ("eager",)


@dataclass
class _Row:
    index: int
    prompt_len: int
    generator: torch.Generator | None
    watcher: StopWatcher | None
    tokens: list[int] = field(default_factory=list)


@dataclass
class RunStats:
    """Where the last `Engine.run` spent its time (what a throughput comparison needs to explain);
    the `on_done` callbacks of the rows that end in a phase count in that phase."""

    prefill_s: float = 0.0
    """Seconds in prefill forwards, first tokens and copies into the cache slots."""
    prefill_forwards: int = 0
    """Prefill forwards (chunks of at most `prefill_tokens` padded tokens)."""
    prefill_positions: int = 0
    """Token positions the prefill forwards computed, padding included."""
    decode_s: float = 0.0
    """Seconds in decode steps, rows leaving included."""
    decode_steps: int = 0
    """Decode forwards (one token for every live row)."""
    decode_positions: int = 0
    """Token positions the decode forwards computed: the live rows summed over the steps. With
    `prefill_positions`, the work a throughput comparison can count in another harness too."""


@dataclass
class _Admitted:
    """Rows of one prefill chunk that go on decoding: the chunk's cache and which of its rows to keep
    (None: all), each kept row's next input and its prompt length (its first decode position)."""

    rows: list[_Row]
    cache: Any
    keep: torch.Tensor | None
    tokens: torch.Tensor
    lengths: torch.Tensor


class Engine:
    """Generates for one loaded model; `run` may be called many times."""

    def __init__(
        self, model: Any, tokenizer: Any, batch_size: int, eos_ids: set[int], prefill_tokens: int = 1024
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.prefill_tokens = prefill_tokens
        self.eos_ids = eos_ids
        # Prompts are right-padded and no query attends to a pad position, so any id fills them;
        # a model saved without a pad token pads with EOS rather than gaining a new token.
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else min(eos_ids)
        self.device = next(model.parameters()).device
        # transformers 5 renamed `past_key_values` to `cache`; use whichever this version takes.
        params = inspect.signature(model.forward).parameters
        self.cache_kw = "cache" if "cache" in params else "past_key_values"
        attention = getattr(model.config, "_attn_implementation", None)
        if attention not in BOOLEAN_MASK + ADDITIVE_MASK:
            raise SftscopeError(
                f"the transformers backend decodes with sdpa or eager attention; this model uses "
                f"{attention!r} (load it with attn_implementation='sdpa', or use --backend vllm)"
            )
        self.additive_mask = attention in ADDITIVE_MASK
        self.stats = RunStats()

    @torch.inference_mode()
    def run(
        self,
        prompt_ids: list[list[int]],
        sampling: SamplingSpec,
        seeds: list[int],
        think_open: list[bool],
        on_done: OnDone,
    ) -> None:
        """Generate for every prompt; `on_done(i, generation)` as each finishes (in no fixed order)."""
        pending = deque(sorted(range(len(prompt_ids)), key=lambda i: len(prompt_ids[i])))
        self.stats = stats = RunStats()
        cache = SlotCache(self.model.config, self.batch_size, self.device)
        rows: list[_Row] = []
        feed = torch.empty(0, dtype=torch.long, device=self.device)
        while pending or rows:
            if pending and len(rows) <= REFILL_AT * self.batch_size:
                started = time.perf_counter()
                take = [pending.popleft() for _ in range(min(self.batch_size - len(rows), len(pending)))]
                chunks = prefill_chunks(take, prompt_ids, self.prefill_tokens)
                for chunk in chunks:
                    stats.prefill_positions += len(chunk) * max(len(prompt_ids[i]) for i in chunk)
                    admitted = self._admit(chunk, prompt_ids, sampling, seeds, think_open, on_done)
                    if admitted is not None:
                        cache.admit(admitted.cache, admitted.lengths, admitted.keep)
                        rows += admitted.rows
                        feed = torch.cat([feed, admitted.tokens])
                stats.prefill_s += time.perf_counter() - started
                stats.prefill_forwards += len(chunks)
            if not rows:
                continue
            started = time.perf_counter()
            out = self.model(
                input_ids=feed[:, None],
                attention_mask=self._decode_mask(cache),
                position_ids=cache.lengths[:, None],
                use_cache=True,
                **{self.cache_kw: cache.hf},
            )
            cache.advance()
            stats.decode_positions += len(feed)  # one position per live row
            tokens = self._pick(out.logits[:, -1, :], rows, sampling)
            keep = self._advance(rows, tokens, sampling, on_done)
            if len(keep) < len(rows):
                order = fill_from_tail(keep, len(rows))
                index = torch.tensor(order, dtype=torch.long, device=self.device)
                cache.select(index)
                rows = [rows[k] for k in order]
                tokens = tokens[index]
            feed = tokens
            stats.decode_s += time.perf_counter() - started
            stats.decode_steps += 1

    def _admit(
        self,
        chunk: list[int],
        prompt_ids: list[list[int]],
        sampling: SamplingSpec,
        seeds: list[int],
        think_open: list[bool],
        on_done: OnDone,
    ) -> _Admitted | None:
        """Prefill one chunk and pick each row's first token; None when every row ended at once."""
        rows = [self._row(i, prompt_ids[i], sampling, seeds[i], think_open[i]) for i in chunk]
        cache, logits = self._prefill([prompt_ids[i] for i in chunk])
        tokens = self._pick(logits, rows, sampling)
        keep = self._advance(rows, tokens, sampling, on_done)
        if not keep:
            return None
        index = torch.tensor(keep, device=self.device)
        lengths = torch.tensor([rows[k].prompt_len for k in keep], device=self.device)
        return _Admitted(
            [rows[k] for k in keep], cache, None if len(keep) == len(rows) else index, tokens[index], lengths
        )

    def _decode_mask(self, cache: SlotCache) -> torch.Tensor:
        mask = cache.step_mask()
        if not self.additive_mask:
            return mask
        dtype = self.model.dtype
        return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill_(
            ~mask, torch.finfo(dtype).min
        )

    def _row(self, index: int, ids: list[int], sampling: SamplingSpec, seed: int, think_open: bool) -> _Row:
        generator = None
        if sampling.temperature > 0:
            generator = torch.Generator(device=self.device).manual_seed(seed)
        watcher = StopWatcher(self.tokenizer, sampling.stop, think_open) if sampling.stop else None
        return _Row(index, len(ids), generator, watcher)

    def _prefill(self, batch: list[list[int]]) -> tuple[Any, torch.Tensor]:
        """One forward over right-padded prompts: (a cache whose row j holds its states in columns
        [0, len(batch[j])), each row's next-token logits). Right padding needs no mask: causal
        attention never looks right, so a prompt's states do not depend on its batch, and SDPA takes
        its causal kernel."""
        from transformers import DynamicCache

        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self.pad_id, dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, : len(ids)] = torch.tensor(ids)
        # Logits at each row's last prompt token only: the distinct last positions (a chunk is
        # length-sorted, so there are few), then each row's own.
        last = torch.tensor([len(ids) - 1 for ids in batch])
        positions, column = torch.unique(last, return_inverse=True)
        cache = DynamicCache(config=self.model.config)
        out = self.model(
            input_ids=input_ids.to(self.device),
            use_cache=True,
            logits_to_keep=positions.to(self.device),
            **{self.cache_kw: cache},
        )
        return cache, out.logits[torch.arange(len(batch), device=self.device), column.to(self.device)]

    @staticmethod
    def _pick(logits: torch.Tensor, rows: list[_Row], sampling: SamplingSpec) -> torch.Tensor:
        if sampling.temperature == 0:
            return logits.argmax(dim=-1)
        probs = torch.softmax(logits.float() / sampling.temperature, dim=-1)
        if sampling.top_p < 1.0:
            sorted_probs, order = probs.sort(dim=-1, descending=True)
            outside = (
                sorted_probs.cumsum(dim=-1) - sorted_probs > sampling.top_p
            )  # the top token always stays
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_probs.masked_fill(outside, 0.0))
        return torch.cat(
            [torch.multinomial(probs[i], 1, generator=row.generator) for i, row in enumerate(rows)]
        )

    def _advance(
        self, rows: list[_Row], tokens: torch.Tensor, sampling: SamplingSpec, on_done: OnDone
    ) -> list[int]:
        """Append each row's token; report finished rows; return the positions of the rows that go on."""
        keep = []
        for position, (row, token) in enumerate(zip(rows, tokens.tolist(), strict=True)):
            cut: int | None = None
            if token in self.eos_ids:
                reason = "stop"
            else:
                row.tokens.append(token)
                cut = row.watcher.push(token) if row.watcher is not None else None
                reason = (
                    "stop"
                    if cut is not None
                    else "length"
                    if len(row.tokens) >= sampling.max_new_tokens
                    else ""
                )
            if not reason:
                keep.append(position)
                continue
            if cut is not None and row.watcher is not None:
                text = row.watcher.text[:cut]
            else:
                text = self.tokenizer.decode(row.tokens, skip_special_tokens=False)
            on_done(row.index, Generation(text, row.prompt_len, len(row.tokens), reason))  # type: ignore[arg-type]
        return keep


def fill_from_tail(keep: list[int], n: int) -> list[int]:
    """The new batch order after the rows not in `keep` (sorted positions of `n`) leave: live rows
    stay where they are, and the last live rows move into the holes, so only those are copied."""
    live = len(keep)
    tail = [position for position in keep if position >= live]
    kept = set(keep)
    return [position if position in kept else tail.pop() for position in range(live)]


def prefill_chunks(order: list[int], prompt_ids: list[list[int]], budget: int) -> list[list[int]]:
    """Split prompts (indices, sorted by length) into prefill forwards of at most `budget` padded
    tokens, one prompt at the least. On CPU a forward's activations must stay in cache: micro-weak
    prefilled the micro suite at ~41k tokens/s in 1k-token forwards, ~21k/s in 128-row forwards of
    ~10k padded tokens each."""
    chunks: list[list[int]] = []
    for index in order:  # sorted by length: a chunk's last prompt is its widest
        if not chunks or len(prompt_ids[index]) * (len(chunks[-1]) + 1) > budget:
            chunks.append([index])
        else:
            chunks[-1].append(index)
    return chunks
