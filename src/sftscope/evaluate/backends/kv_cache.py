"""The decoding engine's KV-cache layer: contiguous buffers with room to grow, written in place.

transformers' DynamicLayer re-concatenates the whole cache at every decode step; on the micro suite
that copy was a third of the decode time. This layer keeps spare columns instead, like StaticLayer,
and hands attention the whole buffer, not the live part: measured on this CPU, attention over a
strided view of a bigger buffer cost 1.5-2x as much as over a contiguous one once the cache no longer
fits the L3 cache (both SDPA and bmm copy a non-contiguous operand). The spare columns are zeros that
the attention mask hides: `get_mask_sizes` reports the buffer's width, and transformers pads the 2-D
padding mask with zeros to that width, as it does for a static cache.
"""

from __future__ import annotations

from typing import Any

import torch

ROOM = 32  # spare columns added when a buffer is full: one copy per ROOM steps, <= ROOM masked columns


def growing_layer_class() -> type:
    """Built on first use: importing transformers' cache module is slow, and only decoding needs it."""
    from transformers.cache_utils import DynamicLayer

    class GrowingLayer(DynamicLayer):
        """A full-attention cache layer; `keys`/`values` are views of the live part of the buffers."""

        def __init__(self) -> None:
            self._k: torch.Tensor | None = None
            self._v: torch.Tensor | None = None
            self._len = 0
            super().__init__()

        @property  # type: ignore[override]
        def keys(self) -> torch.Tensor | None:
            return None if self._k is None else self._k[..., : self._len, :]

        @keys.setter
        def keys(self, value: torch.Tensor | None) -> None:  # a new tensor: its length is the live part
            # lazy_initialization sets an empty 1-d placeholder: nothing live yet
            self._k, self._len = value, value.shape[-2] if value is not None and value.dim() == 4 else 0

        @property  # type: ignore[override]
        def values(self) -> torch.Tensor | None:
            return None if self._v is None else self._v[..., : self._len, :]

        @values.setter
        def values(self, value: torch.Tensor | None) -> None:
            self._v = value

        @property
        def capacity(self) -> int:
            return 0 if self._k is None or self._k.dim() != 4 else self._k.shape[-2]

        def get_mask_sizes(self, query_length: int, *args: Any, **kwargs: Any) -> tuple[int, int]:
            return max(self.capacity, self._len + query_length), 0

        def update(
            self, key_states: torch.Tensor, value_states: torch.Tensor, *args: Any, **kwargs: Any
        ) -> Any:
            if not self.is_initialized:
                self.lazy_initialization(key_states, value_states)
            if self._len == 0:  # the prefill: its states are the buffer
                self._k, self._v, self._len = key_states, value_states, key_states.shape[-2]
                return self._k, self._v
            assert self._k is not None and self._v is not None
            end = self._len + key_states.shape[-2]
            # The width the mask was built for (`get_mask_sizes`, asked before this update): the whole
            # buffer, or just the live part on the step that grows it.
            width = max(self.capacity, end)
            if end > self.capacity:
                self._regrow(0, end + ROOM)
            self._k[..., self._len : end, :] = key_states
            self._v[..., self._len : end, :] = value_states
            self._len = end
            return self._k[..., :width, :], self._v[..., :width, :]

        def stack(self, others: list[Any], width: int) -> None:
            """Append the rows of `others` below these, every row right-aligned to `width` live columns
            (the columns left of a row's states are masked padding), in one new buffer with ROOM to
            grow: the decode step after a refill then writes in place instead of regrowing."""
            layers = [self, *others]
            merged = []
            for name in ("keys", "values"):
                parts = [getattr(layer, name) for layer in layers]
                _, heads, _, dim = parts[0].shape
                total = sum(part.shape[0] for part in parts)
                fresh = parts[0].new_empty((total, heads, width + ROOM, dim))
                first = 0
                for states in parts:
                    rows, start = slice(first, first + states.shape[0]), width - states.shape[-2]
                    fresh[rows, :, :start] = 0  # padding and spare room must be zeros, not garbage:
                    fresh[rows, :, start:width] = states  # masked scores still multiply the values
                    first += states.shape[0]
                fresh[:, :, width:] = 0
                merged.append(fresh)
            self._k, self._v = merged
            self._len = width

        def batch_select_indices(self, indices: torch.Tensor) -> None:
            assert self._k is not None and self._v is not None
            n = len(indices)
            moved = (indices != torch.arange(n, device=indices.device)).nonzero().flatten()
            sources = indices[moved]
            if bool((sources >= n).all()):  # `fill_from_tail` order: move a few rows, cut the batch
                for buffer in (self._k, self._v):
                    buffer[moved] = buffer[sources]
                self._k, self._v = self._k[:n], self._v[:n]  # still contiguous: batch is the outer dim
            else:
                self._k, self._v = self._k[indices], self._v[indices]

        def drop_front(self, columns: int) -> None:
            """Forget the first `columns` positions (padding no row needs any more)."""
            self._regrow(columns, self._len - columns + ROOM)

        def _regrow(self, first: int, capacity: int) -> None:
            assert self._k is not None and self._v is not None
            live = self._len - first
            grown = []
            for buffer in (self._k, self._v):
                fresh = buffer.new_empty((*buffer.shape[:-2], capacity, buffer.shape[-1]))
                fresh[..., :live, :] = buffer[..., first : self._len, :]
                fresh[..., live:, :] = 0  # only the spare room: the live part was just written
                grown.append(fresh)
            self._k, self._v = grown
            self._len = live

    return GrowingLayer
