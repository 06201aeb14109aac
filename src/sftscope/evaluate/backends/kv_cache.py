"""The decoding engine's KV cache: one slot per batch row, each row's tokens left-aligned in it.

Every layer keeps two buffers of shape (slots, kv_heads, capacity, head_dim). Row r's cached tokens
fill columns [0, length_r) of its slot, and a decode step writes each row's new token at the row's
own column, so:

- a refill copies only its new rows' prefill states into free slots; the running rows do not move
  (with one shared write column, as in transformers' caches, every refill that brings a longer
  prompt re-aligns the whole batch: on the base model's short answers that copy was a fifth of the
  generation time);
- a row that ends is replaced by the last live row (`select`), so the live rows are always slots
  [0, live) and attention gets a contiguous buffer: measured on this CPU, attention over a strided
  view of a bigger buffer cost 1.5-2x as much once the cache no longer fits the L3 cache;
- the mask is built here, 4-D, from the row lengths (transformers passes a 4-D mask through as it
  is), instead of transformers rebuilding one from a growing 2-D mask at every step.

Columns at or past a row's length hold finite leftovers (zeros, a prefill's pad-token states, a
former row's states). The mask turns their scores into exact zeros after the softmax, and zero times
a finite value is zero, so they never change an output; that is why new buffers are zero-filled and
never left uninitialised (which could hold NaNs).

Only full-attention layers fit this layout (Llama, Qwen, Mistral without sliding windows).
"""

from __future__ import annotations

from typing import Any

import torch

from sftscope.errors import SftscopeError

ROOM = 32  # spare columns when a buffer grows: one copy per ROOM steps, <= ROOM masked columns a row


class SlotCache:
    """The cache of one `Engine.run`: `hf` is what the model's forward takes; `lengths` holds each live
    row's cached tokens (also the position of the token it is fed next)."""

    def __init__(self, config: Any, slots: int, device: torch.device) -> None:
        from transformers import DynamicCache
        from transformers.cache_utils import DynamicLayer

        self.hf = DynamicCache(config=config)
        if not all(type(layer) is DynamicLayer for layer in self.hf.layers):
            kinds = sorted({type(layer).__name__ for layer in self.hf.layers})
            raise SftscopeError(
                f"the transformers backend decodes full-attention models only; this one has {kinds} "
                "cache layers (sliding windows?): use --backend vllm"
            )
        layer_class = slot_layer_class()
        self.layers = [layer_class(self) for _ in self.hf.layers]
        self.hf.layers = self.layers
        self.slots = slots
        self.capacity = 0
        self.lengths = torch.empty(0, dtype=torch.long, device=device)
        self._rows = torch.arange(slots, device=device)
        self._columns = torch.empty(0, dtype=torch.long, device=device)

    @property
    def live(self) -> int:
        return len(self.lengths)

    def admit(self, chunk: Any, lengths: torch.Tensor, rows: torch.Tensor | None = None) -> None:
        """Copy rows of a right-padded prefill (a transformers cache whose row j holds its states in
        columns [0, lengths[j])) into the next free slots; `rows` picks the chunk rows to keep."""
        first, count = self.live, len(lengths)
        if first + count > self.slots:
            raise ValueError(f"{first + count} rows do not fit a cache of {self.slots} slots")
        width = chunk.layers[0].keys.shape[-2]
        need = max(width, int(lengths.max()) + 1)
        if need > self.capacity:  # grow only: the running rows may need more than this chunk
            self._fit(need)
        for layer, new in zip(self.layers, chunk.layers, strict=True):
            keys, values = (new.keys, new.values) if rows is None else (new.keys[rows], new.values[rows])
            if layer.k is None:  # first admission: the buffers take the states' dtype and layout
                layer.allocate(keys, self.slots, self.capacity)
            layer.k[first : first + count, :, :width] = keys
            layer.v[first : first + count, :, :width] = values
        self.lengths = torch.cat([self.lengths, lengths])

    def step_mask(self) -> torch.Tensor:
        """Fit the buffers to the next decode step and return its mask, (live, 1, 1, capacity), True =
        attend: each row's cached columns and the column its new token is written to."""
        self._fit(int(self.lengths.max()) + 1)
        return (self._columns <= self.lengths[:, None])[:, None, None, :]

    def _fit(self, columns: int) -> None:
        """Make room for `columns` columns (what the widest live row needs): grow with ROOM to spare,
        or shrink once the rows that needed a wide buffer have left (attention reads every column)."""
        if columns > self.capacity or self.capacity - columns > 2 * ROOM:
            self.capacity = columns + ROOM
            for layer in self.layers:
                layer.resize(self.live, self.capacity)
            self._columns = torch.arange(self.capacity, device=self.lengths.device)

    def advance(self) -> None:
        """Every live row cached one more token (the one it was fed)."""
        self.lengths += 1

    def select(self, index: torch.Tensor) -> None:
        """Keep the live rows at positions `index` (1-d, long), in that order. Only the rows whose
        position changes are copied: with `fill_from_tail`'s order, the few tail rows that fill the
        holes."""
        moved = (index != self._rows[: len(index)]).nonzero().flatten()
        if len(moved):
            sources = index[moved]
            for layer in self.layers:
                layer.k[moved] = layer.k[sources]  # the right side is gathered before it is written
                layer.v[moved] = layer.v[sources]
        self.lengths = self.lengths[index]

    def write(self, layer: Any, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        """A decode step's new states (live, kv_heads, 1, head_dim), each row's at its own column."""
        rows = self._rows[: self.live]
        layer.k[rows, :, self.lengths] = key_states[:, :, 0]
        layer.v[rows, :, self.lengths] = value_states[:, :, 0]


def slot_layer_class() -> type:
    """Built on first use: importing transformers' cache module is slow, and only decoding needs it."""
    from transformers.cache_utils import DynamicLayer

    class SlotLayer(DynamicLayer):
        """One layer's buffers; `update` is a decode step (one query per row)."""

        def __init__(self, cache: SlotCache) -> None:
            super().__init__()
            self.cache = cache
            self.k: torch.Tensor | None = None
            self.v: torch.Tensor | None = None
            self.is_initialized = True

        def allocate(self, like: torch.Tensor, slots: int, capacity: int) -> None:
            _, heads, _, dim = like.shape
            self.k = like.new_zeros((slots, heads, capacity, dim))
            self.v = like.new_zeros((slots, heads, capacity, dim))

        def resize(self, live: int, capacity: int) -> None:
            if self.k is None or self.v is None:
                return
            kept = min(capacity, self.k.shape[-2])
            resized = []
            for buffer in (self.k, self.v):
                # Zero only what the copy does not overwrite: zero-filling the whole new buffer first
                # was 8% of a long-output sweep's decode time (torch.profiler, micro-strong).
                fresh = buffer.new_empty((*buffer.shape[:-2], capacity, buffer.shape[-1]))
                fresh[:live, :, :kept] = buffer[:live, :, :kept]
                fresh[:live, :, kept:] = 0
                fresh[live:] = 0
                resized.append(fresh)
            self.k, self.v = resized

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> tuple[torch.Tensor, torch.Tensor]:
            if key_states.shape[-2] != 1 or self.k is None or self.v is None:
                raise RuntimeError("a slot cache takes decode steps only; prefill into a DynamicCache")
            self.cache.write(self, key_states, value_states)
            live = self.cache.live
            return self.k[:live], self.v[:live]  # contiguous: slots are the outer dimension

        def get_seq_length(self) -> int:
            return self.cache.capacity

    return SlotLayer
