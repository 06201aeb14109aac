"""Data order and the cutting of a step into processes and forward passes."""

from __future__ import annotations

import torch

from sftscope.train.batching import (
    IGNORE,
    collate_packed,
    collate_padded,
    global_batch,
    micro_batches,
    split_over_ranks,
    steps_per_epoch,
    total_steps,
)
from sftscope.train.encode import Encoded


def test_each_epoch_sees_every_example_once_in_a_seeded_order() -> None:
    per_epoch = steps_per_epoch(10, 4)
    assert per_epoch == 3  # the last, smaller batch is kept
    epoch0 = [i for s in range(per_epoch) for i in global_batch(10, 4, seed=1, step=s)]
    epoch1 = [i for s in range(per_epoch, 2 * per_epoch) for i in global_batch(10, 4, seed=1, step=s)]
    assert sorted(epoch0) == sorted(epoch1) == list(range(10))
    assert epoch0 != epoch1
    assert global_batch(10, 4, seed=1, step=4) == global_batch(10, 4, seed=1, step=4)
    assert global_batch(10, 4, seed=2, step=0) != global_batch(10, 4, seed=1, step=0)
    assert total_steps(10, 4, epochs=2, steps=None) == 6
    assert total_steps(10, 4, epochs=0.5, steps=None) == 2
    assert total_steps(10, 4, epochs=2, steps=7) == 7


def test_ranks_get_a_balanced_partition() -> None:
    lengths = [100, 90, 10, 10, 50, 40]
    shares = split_over_ranks(range(6), lengths, 2)
    assert sorted(shares[0] + shares[1]) == list(range(6))
    loads = [sum(lengths[i] for i in share) for share in shares]
    assert max(loads) - min(loads) <= 10
    assert split_over_ranks([3], lengths, 2) == [[3], []]


def test_micro_batches_respect_the_token_budget() -> None:
    lengths = [300, 120, 110, 100, 20, 20]
    packed = micro_batches(range(6), lengths, 256, packing=True)
    assert packed == [[0], [1, 2], [3, 4, 5]]  # longest first; an over-budget example runs alone
    padded = micro_batches(range(6), lengths, 256, packing=False)
    assert padded == [[0], [1, 2], [3, 4], [5]]  # rows x longest row <= 256
    for passes in (packed, padded):
        assert sorted(i for p in passes for i in p) == list(range(6))


def test_collation_targets_are_the_shifted_completion_only() -> None:
    a, b = Encoded([1, 2, 3, 4], prompt_len=2), Encoded([5, 6, 7], prompt_len=1)
    packed = collate_packed([a, b])
    assert packed.position_ids.tolist() == [[0, 1, 2, 3, 0, 1, 2]]
    # a: predict 3 (after 2) and 4 (after 3); nothing from a's last token into b; b: predict 6 and 7.
    assert packed.targets.tolist() == [[IGNORE, 3, 4, IGNORE, 6, 7, IGNORE]]
    assert packed.attention_mask is None and packed.num_targets == 4 == a.num_targets + b.num_targets
    padded = collate_padded([a, b], pad_id=0)
    assert padded.input_ids.tolist() == [[1, 2, 3, 4], [5, 6, 7, 0]]
    assert padded.targets.tolist() == [[IGNORE, 3, 4, IGNORE], [6, 7, IGNORE, IGNORE]]
    assert padded.attention_mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 0]]
    assert (padded.num_tokens, padded.num_targets) == (7, 4)
    assert collate_padded([a], pad_id=0, pad_to=6).input_ids.shape == torch.Size([1, 6])
