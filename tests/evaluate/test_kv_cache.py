"""The engine's KV-cache layer: contiguous buffers with zeroed spare room, in-place appends, row
moves that copy only the rows that move, and mask sizes that match what attention is handed."""

from __future__ import annotations

import pytest
import torch

from sftscope.evaluate.backends.engine import fill_from_tail
from sftscope.evaluate.backends.kv_cache import ROOM, growing_layer_class


def _layer(batch: int = 4, live: int = 3) -> object:
    layer = growing_layer_class()()
    keys = torch.arange(batch * 2 * live * 5, dtype=torch.float32).view(batch, 2, live, 5)
    layer.update(keys, -keys)  # the prefill: its states become the buffer
    return layer


def _step(layer: object, batch: int, value: float) -> tuple[torch.Tensor, torch.Tensor]:
    return layer.update(torch.full((batch, 2, 1, 5), value), torch.full((batch, 2, 1, 5), -value))


def test_growth_adds_zeroed_room_and_hands_attention_the_width_the_mask_was_built_for() -> None:
    layer = _layer()
    assert layer.get_mask_sizes(1) == (4, 0)  # no room yet: live 3 + the new token
    keys, values = _step(layer, 4, 7.0)
    assert keys.shape[-2] == values.shape[-2] == 4  # the growing step: just the live part
    assert layer.capacity == 4 + ROOM
    assert layer.get_mask_sizes(1) == (4 + ROOM, 0)  # now the whole buffer
    keys, values = _step(layer, 4, 8.0)
    assert keys.shape[-2] == 4 + ROOM and keys.is_contiguous() and values.is_contiguous()
    assert torch.equal(keys[..., 3:5, :], torch.tensor([7.0, 8.0]).view(1, 1, 2, 1).expand(4, 2, 2, 5))
    assert not keys[..., 5:, :].any() and not values[..., 5:, :].any()  # spare room is zeros
    assert layer.keys.shape[-2] == 5 and layer.get_seq_length() == 5


def test_rows_leaving_in_fill_from_tail_order_move_only_the_tail_and_stay_contiguous() -> None:
    layer = _layer(batch=5)
    _step(layer, 5, 1.0)
    before = layer.keys.clone()
    order = fill_from_tail([0, 2, 4], 5)  # rows 1 and 3 finished
    assert order == [0, 4, 2]
    layer.batch_select_indices(torch.tensor(order))
    assert torch.equal(layer.keys, before[order]) and torch.equal(layer.values, -before[order])
    keys, _ = _step(layer, 3, 2.0)
    assert keys.is_contiguous() and keys.shape[0] == 3


def test_any_other_selection_falls_back_to_a_gather() -> None:
    layer = _layer(batch=4)
    before = layer.keys.clone()
    layer.batch_select_indices(torch.tensor([3, 1]))
    assert torch.equal(layer.keys, before[[3, 1]])


def test_drop_front_forgets_leading_padding_and_keeps_room() -> None:
    layer = _layer(batch=2, live=6)
    before = layer.keys.clone()
    layer.drop_front(4)
    assert torch.equal(layer.keys, before[..., 4:, :]) and layer.capacity == 2 + ROOM
    assert not layer._k[..., 2:, :].any()


@pytest.mark.parametrize(
    ("keep", "n"), [([0, 1, 2], 3), ([], 3), ([2], 3), ([0, 3, 5, 6], 7), ([4, 5, 6], 7)]
)
def test_fill_from_tail_is_a_permutation_of_the_kept_rows_that_leaves_the_head_in_place(
    keep: list[int], n: int
) -> None:
    order = fill_from_tail(keep, n)
    assert sorted(order) == keep
    assert all(order[i] == i for i in range(len(keep)) if i in keep)


def test_stack_right_aligns_both_batches_with_zero_padding_and_room_to_grow() -> None:
    old = _layer(batch=2, live=3)
    _step(old, 2, 9.0)  # 4 live columns, room to grow
    new = _layer(batch=3, live=6)
    old_keys, new_keys = old.keys.clone(), new.keys.clone()
    old.stack([new], 6)
    assert old.keys.shape == (5, 2, 6, 5) and old.capacity == 6 + ROOM
    assert torch.equal(old.keys[:2, :, 2:], old_keys) and not old.keys[:2, :, :2].any()
    assert torch.equal(old.keys[2:], new_keys) and torch.equal(old.values[2:], -new_keys)
    assert not old._k[:, :, 6:].any() and not old._v[:, :, 6:].any()
    keys, _ = _step(old, 5, 1.0)  # the next step writes in place: the buffer does not regrow
    assert keys.shape[-2] == 6 + ROOM and old.capacity == 6 + ROOM
