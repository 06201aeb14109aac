"""Summed NLL (and predictive entropy) over response tokens, with the output layer run only there.

The caller divides by the number of response tokens in the whole global batch, so the step's loss is
the token-mean NLL of the global batch whatever the micro-batch split or the number of processes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from sftscope.train.batching import IGNORE, Batch


class CompletionLoss(nn.Module):
    """Wraps a causal LM; forward returns (summed NLL, summed entropy) over the trained positions.

    The full `lm_head` over every position is most of a small model's cost (vocab x positions); on CPU,
    gathering the hidden states at the trained positions first nearly doubles throughput. It is the
    module given to DDP, so gradient sync hooks see one forward per micro-batch.
    """

    def __init__(self, model: Any):
        super().__init__()
        self.model = model

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        attention_mask: torch.Tensor | None,
        targets: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # use_cache=False matters: with a cache object present, transformers does not derive the packed
        # (block-diagonal) mask from position ids and packed examples would attend to each other.
        hidden = self.model.get_decoder()(
            input_ids=input_ids, position_ids=position_ids, attention_mask=attention_mask, use_cache=False
        )[0]
        keep = targets != IGNORE
        logits = self.model.get_output_embeddings()(hidden[keep]).float()
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        if cap:
            logits = torch.tanh(logits / cap) * cap
        logp = F.log_softmax(logits, dim=-1)
        nll = F.nll_loss(logp, targets[keep], reduction="sum")
        with torch.no_grad():
            entropy = -(logp.exp() * logp).sum()
        return nll, entropy


def batch_loss(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Run one batch (on the module's device) through a CompletionLoss (possibly DDP-wrapped)."""
    device = next(module.parameters()).device
    mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
    return module(batch.input_ids.to(device), batch.position_ids.to(device), mask, batch.targets.to(device))
