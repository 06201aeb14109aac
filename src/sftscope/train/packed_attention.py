"""Attention for packed training rows without a dense mask, registered through transformers'
`AttentionInterface` under the name `sftscope-packed`.

A packed row holds several examples; position ids restart at 0 for each. With SDPA, transformers turns
that into a dense block-diagonal mask over the whole row, and SDPA's CPU kernel then computes every
block of the row's square, masked or not: attention costs the square of the row's length, not the sum
of the squares of its examples', and is most of a small model's step. This kernel runs SDPA once per
example with `is_causal` instead, which is what FlashAttention's variable-length kernel does on a GPU
(there `attn_implementation: flash_attention_2` takes packed rows the same way, from the position ids).
A padded batch (an attention mask) or a row of one example goes to SDPA unchanged.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import torch

from sftscope.models.attention import use_attention

NAME = "sftscope-packed"


def example_bounds(position_ids: torch.Tensor) -> list[int]:
    """Where each packed example starts in a one-row batch, and the row's end."""
    starts = torch.nonzero(position_ids[0] == 0).flatten().tolist()
    return [*starts, position_ids.shape[1]]


def packed_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    position_ids: torch.Tensor | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    def sdpa(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        return sdpa_attention_forward(module, q, k, v, mask, dropout=dropout, scaling=scaling, **kwargs)[0]

    # Training rows only: one row, no mask, no cache (keys as long as queries).
    one_row = query.shape[0] == 1 and key.shape[2] == query.shape[2]
    if attention_mask is not None or position_ids is None or not one_row:
        return sdpa(query, key, value, attention_mask), None
    bounds = example_bounds(position_ids)
    if len(bounds) <= 2 or bounds[0] != 0:
        return sdpa(query, key, value, None), None
    parts = [sdpa(query[:, :, a:b], key[:, :, a:b], value[:, :, a:b], None) for a, b in pairwise(bounds)]
    return torch.cat(parts, dim=1), None  # (batch, query, heads, dim), as SDPA's wrapper returns


def packed_mask(*args: Any, attention_mask: torch.Tensor | None = None, **kwargs: Any) -> torch.Tensor | None:
    """No mask for an unpadded batch (the kernel finds the examples from the position ids); SDPA's
    mask for a padded one."""
    from transformers.masking_utils import sdpa_mask

    if attention_mask is None:
        return None
    return sdpa_mask(*args, attention_mask=attention_mask, **kwargs)


def use_packed_attention(model: Any) -> bool:
    """Switch a model that uses SDPA to `packed_attention`; False (and no change) for any other."""
    return use_attention(model, NAME, packed_attention, packed_mask)
