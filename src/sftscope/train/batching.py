"""Data order, the split of a global batch over processes and micro-batches, and collation.

Which examples form optimizer step s depends only on (seed, epoch) and the batch size, never on the
number of processes or the micro-batch budget: those only decide how one step's examples are cut into
forward passes. Within a step, examples are sorted by length before cutting, so a forward pass holds
examples of similar length and rows stay short (attention costs the square of a row's length on CPU).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from sftscope.train.encode import Encoded

IGNORE = -100


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Optimizer steps per epoch; the last, smaller batch of an epoch is kept (no example is skipped)."""
    return math.ceil(num_examples / batch_size)


def total_steps(num_examples: int, batch_size: int, epochs: float | None, steps: int | None) -> int:
    """The run's length in optimizer steps (`steps` wins over `epochs`)."""
    if steps is not None:
        return steps
    assert epochs is not None
    return max(1, math.ceil(epochs * steps_per_epoch(num_examples, batch_size)))


def epoch_order(num_examples: int, seed: int, epoch: int) -> np.ndarray:
    """A permutation of the examples that depends only on (seed, epoch): resumable without saved state."""
    return np.random.default_rng([seed, epoch]).permutation(num_examples)


def global_batch(num_examples: int, batch_size: int, seed: int, step: int) -> list[int]:
    """Example indices of 0-based optimizer step `step`."""
    per_epoch = steps_per_epoch(num_examples, batch_size)
    epoch, index = divmod(step, per_epoch)
    order = epoch_order(num_examples, seed, epoch)
    return order[index * batch_size : (index + 1) * batch_size].tolist()


def split_over_ranks(indices: Sequence[int], lengths: Sequence[int], world_size: int) -> list[list[int]]:
    """Deal a step's examples to processes, longest first to the least-loaded one, to balance tokens."""
    shares: list[list[int]] = [[] for _ in range(world_size)]
    load = [0] * world_size
    for index in sorted(indices, key=lambda i: (-lengths[i], i)):
        rank = min(range(world_size), key=lambda r: (load[r], r))
        shares[rank].append(index)
        load[rank] += lengths[index]
    return shares


def micro_batches(
    indices: Sequence[int], lengths: Sequence[int], token_budget: int, packing: bool
) -> list[list[int]]:
    """Cut one process's share of a step into forward passes of at most `token_budget` tokens.

    Packed: the sum of lengths counts. Padded: rows x the longest row counts. Sorted longest first, so a
    pass holds similar lengths; an example over the budget gets a pass of its own.
    """
    passes: list[list[int]] = []
    current: list[int] = []
    used = 0
    for index in sorted(indices, key=lambda i: (-lengths[i], i)):
        length = lengths[index]
        # Padded rows all take the first (longest) example's length.
        cost = used + length if packing else (len(current) + 1) * (lengths[current[0]] if current else length)
        if current and cost > token_budget:
            passes.append(current)
            current, used = [], 0
        current.append(index)
        used += length
    if current:
        passes.append(current)
    return passes


@dataclass
class Batch:
    """Model inputs of one forward pass. `targets[r, t]` is the token to predict after position t
    (already shifted), or IGNORE for prompt positions, the last token of each example, and padding."""

    input_ids: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor | None
    targets: torch.Tensor
    num_tokens: int
    """Real (non-pad) tokens."""
    num_targets: int
    """Trained (response) tokens."""


def _targets(item: Encoded) -> list[int]:
    """Next-token targets within one example: the completion tokens, placed one position earlier."""
    ids = item.input_ids
    return [ids[t + 1] if t + 1 >= item.prompt_len else IGNORE for t in range(len(ids) - 1)] + [IGNORE]


def collate_packed(items: Sequence[Encoded]) -> Batch:
    """Padding-free: one row of concatenated examples; position ids restart at 0 for each example, which
    makes transformers build a block-diagonal causal mask (with attention_mask=None and no KV cache)."""
    input_ids: list[int] = []
    positions: list[int] = []
    targets: list[int] = []
    for item in items:
        input_ids += item.input_ids
        positions += range(len(item))
        # Per-example targets never cross into the next example: its first token is not predicted.
        targets += _targets(item)
    return Batch(
        input_ids=torch.tensor([input_ids]),
        position_ids=torch.tensor([positions]),
        attention_mask=None,
        targets=torch.tensor([targets]),
        num_tokens=len(input_ids),
        num_targets=sum(t != IGNORE for t in targets),
    )


def collate_padded(items: Sequence[Encoded], pad_id: int, pad_to: int | None = None) -> Batch:
    """One example per row, right-padded to the longest row (or to `pad_to`), with an attention mask."""
    width = max(pad_to or 0, max(len(item) for item in items))
    input_ids = torch.full((len(items), width), pad_id)
    targets = torch.full((len(items), width), IGNORE)
    mask = torch.zeros((len(items), width), dtype=torch.long)
    for row, item in enumerate(items):
        input_ids[row, : len(item)] = torch.tensor(item.input_ids)
        targets[row, : len(item)] = torch.tensor(_targets(item))
        mask[row, : len(item)] = 1
    return Batch(
        input_ids=input_ids,
        position_ids=torch.arange(width).expand(len(items), width),
        attention_mask=mask,
        targets=targets,
        num_tokens=int(mask.sum()),
        num_targets=int((targets != IGNORE).sum()),
    )


def collate(items: Sequence[Encoded], packing: bool, pad_id: int, pad_to: int | None = None) -> Batch:
    """The batch of one forward pass in the configured layout."""
    return collate_packed(items) if packing else collate_padded(items, pad_id, pad_to)
