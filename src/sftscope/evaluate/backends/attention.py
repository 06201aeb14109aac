"""Decode-step attention for the transformers backend, registered through transformers'
`AttentionInterface` (its documented extension point) under the name `sftscope-decode`.

A decode step has one query per row. On CPU, SDPA's kernel for that shape is slower than two
batched matmuls over the same contiguous cache (with the cache out of L3, as in a sweep), and
attention is half of a long-output sweep. Prefill (queries > 1) goes to SDPA unchanged; masks
are built as SDPA's (boolean, True = attend).
"""

from __future__ import annotations

from typing import Any

import torch

from sftscope.models.attention import use_attention

NAME = "sftscope-decode"


def decode_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    batch, heads, queries, dim = query.shape
    mask_ok = attention_mask is None or (
        attention_mask.dtype == torch.bool and attention_mask.shape[1:3] == (1, 1)
    )
    if queries != 1 or dropout or not mask_ok or kwargs.get("softcap") is not None:
        return sdpa_attention_forward(
            module, query, key, value, attention_mask, dropout=dropout, scaling=scaling, **kwargs
        )
    kv_heads, width = key.shape[1], key.shape[2]
    groups = heads // kv_heads  # grouped-query attention: `groups` query heads share a key head
    scale = dim**-0.5 if scaling is None else scaling
    scores = torch.bmm(
        query.reshape(batch * kv_heads, groups, dim),
        key.reshape(batch * kv_heads, width, dim).transpose(1, 2),
    ).view(batch, kv_heads, groups, width)
    scores.mul_(scale)
    if attention_mask is not None:
        scores.masked_fill_(~attention_mask.view(batch, 1, 1, width), float("-inf"))
    probs = torch.softmax(scores, dim=-1).view(batch * kv_heads, groups, width)
    out = torch.bmm(probs, value.reshape(batch * kv_heads, width, dim))
    return out.view(batch, 1, heads, dim), None  # (batch, query, heads, dim), as SDPA's wrapper returns


def use_decode_attention(model: Any) -> bool:
    """Switch a model that uses SDPA to `decode_attention`; False (and no change) for any other."""
    from transformers.masking_utils import sdpa_mask

    return use_attention(model, NAME, decode_attention, sdpa_mask)
