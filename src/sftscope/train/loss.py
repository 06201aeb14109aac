"""Summed NLL (and predictive entropy) over response tokens, with the output layer run only there, in
chunks of response tokens so the fp32 logits alive at once stay at most `chunk x vocab`.

The caller divides by the number of response tokens in the whole global batch, so the step's loss is
the token-mean NLL of the global batch whatever the micro-batch split or the number of processes.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from sftscope.train.batching import IGNORE, Batch


def head_sums(
    head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor, cap: float | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(summed NLL, summed entropy) of `targets` under the logits of `hidden` (rows: response tokens)."""
    logits = head(hidden).float()
    if cap:
        logits = torch.tanh(logits / cap) * cap
    logp = F.log_softmax(logits, dim=-1)
    nll = F.nll_loss(logp, targets, reduction="sum")
    with torch.no_grad():
        entropy = -(logp.exp() * logp).sum()
    return nll, entropy


def chunked_head_sums(
    head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor, cap: float | None, chunk: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """`head_sums` over `chunk` rows at a time. Each chunk runs under activation checkpointing: its
    forward keeps only the scalar sums, and the backward recomputes one chunk's logits at a time, so
    neither pass holds more than one chunk's `chunk x vocab` fp32 tensors. The price is one more
    output-layer forward per chunk in the backward; a micro-batch within one chunk skips it."""
    if chunk is None or len(targets) <= chunk:
        return head_sums(head, hidden, targets, cap)
    nll = hidden.new_zeros((), dtype=torch.float32)
    entropy = hidden.new_zeros((), dtype=torch.float32)
    for start in range(0, len(targets), chunk):
        part = slice(start, start + chunk)
        chunk_nll, chunk_entropy = checkpoint(
            head_sums, head, hidden[part], targets[part], cap, use_reentrant=False
        )
        nll = nll + chunk_nll
        entropy = entropy + chunk_entropy
    return nll, entropy


class CompletionLoss(nn.Module):
    """Wraps a causal LM; forward returns (summed NLL, summed entropy) over the trained positions.

    The full `lm_head` over every position is most of a small model's cost (vocab x positions); on CPU,
    gathering the hidden states at the trained positions first nearly doubles throughput. It is the
    module given to DDP, and the root module under FSDP, so their hooks see one forward per micro-batch.
    """

    def __init__(self, model: Any, chunk_tokens: int | None = None):
        super().__init__()
        self.model = model
        self.chunk_tokens = chunk_tokens

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
        cap = getattr(self.model.config, "final_logit_softcapping", None)
        head = self.model.get_output_embeddings()
        return chunked_head_sums(head, hidden[keep], targets[keep], cap, self.chunk_tokens)


def batch_loss(module: nn.Module, batch: Batch) -> tuple[torch.Tensor, torch.Tensor]:
    """Run one batch (on the module's device) through a CompletionLoss (possibly DDP/FSDP-wrapped)."""
    device = next(module.parameters()).device
    mask = batch.attention_mask.to(device) if batch.attention_mask is not None else None
    return module(batch.input_ids.to(device), batch.position_ids.to(device), mask, batch.targets.to(device))
