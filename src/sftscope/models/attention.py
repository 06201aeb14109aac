"""Switching a loaded model to one of sftscope's attention kernels, through transformers'
`AttentionInterface` and `AttentionMaskInterface` (their documented extension points).

The kernels themselves live with the stage that needs them: `evaluate/backends/attention.py` (decode
steps) and `train/packed_attention.py` (packed training rows). Both replace SDPA for one shape of
input and hand every other one to SDPA, so only a model loaded with SDPA is switched.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def use_attention(model: Any, name: str, kernel: Callable[..., Any], mask: Callable[..., Any]) -> bool:
    """Register `kernel` and its `mask` builder under `name` and switch a model that uses SDPA to
    them; False (and no change) for a model on any other kernel."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS

    if getattr(model.config, "_attn_implementation", None) != "sdpa":
        return False
    AttentionInterface.register(name, kernel)
    ALL_MASK_ATTENTION_FUNCTIONS.register(name, mask)
    model.set_attn_implementation(name)
    return model.config._attn_implementation == name
