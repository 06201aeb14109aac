"""Decode-step attention: equal to SDPA for one query per row, with and without a padding mask and
with grouped-query heads; anything else is handed to SDPA."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from sftscope.evaluate.backends.attention import NAME, decode_attention, use_decode_attention


def _sdpa(query, key, value, mask):  # type: ignore[no-untyped-def]
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    module = torch.nn.Module()
    module.num_key_value_groups = query.shape[1] // key.shape[1]
    module.is_causal = True
    return sdpa_attention_forward(module, query, key, value, mask, scaling=0.3)[0]


@pytest.mark.parametrize(("heads", "kv_heads"), [(4, 4), (6, 2)])
@pytest.mark.parametrize("masked", [False, True])
def test_one_query_per_row_matches_sdpa(heads: int, kv_heads: int, masked: bool) -> None:
    torch.manual_seed(0)
    batch, width, dim = 5, 11, 8
    query = torch.randn(batch, heads, 1, dim)
    key, value = torch.randn(batch, kv_heads, width, dim), torch.randn(batch, kv_heads, width, dim)
    mask = None
    if masked:  # left padding of different lengths, and spare columns on the right
        mask = torch.ones(batch, 1, 1, width, dtype=torch.bool)
        for row in range(batch):
            mask[row, ..., :row] = False
        mask[..., -2:] = False
    module = torch.nn.Module()
    ours, weights = decode_attention(module, query, key, value, mask, scaling=0.3)
    assert weights is None and ours.shape == (batch, 1, heads, dim)
    assert torch.allclose(ours, _sdpa(query, key, value, mask), atol=1e-6)


def test_prefill_goes_to_sdpa() -> None:
    torch.manual_seed(1)
    query, key, value = torch.randn(2, 4, 3, 8), torch.randn(2, 4, 3, 8), torch.randn(2, 4, 3, 8)
    module = torch.nn.Module()
    module.is_causal = True
    ours, _ = decode_attention(module, query, key, value, None, scaling=0.3)
    assert torch.equal(ours, _sdpa(query, key, value, None))


def test_only_sdpa_models_are_switched(tiny_model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    assert use_decode_attention(model) and model.config._attn_implementation == NAME
    eager = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="eager")
    assert not use_decode_attention(eager) and eager.config._attn_implementation == "eager"
