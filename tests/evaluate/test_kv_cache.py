"""The engine's slot cache: refills copy only their new rows, left-aligned into free slots; a decode
step writes each row's token at its own column; buffers grow and shrink with zeroed room; rows that
leave are replaced by the tail, copying only the rows that move."""

from __future__ import annotations

import pytest
import torch

from sftscope.evaluate.backends.engine import fill_from_tail
from sftscope.evaluate.backends.kv_cache import ROOM, SlotCache

HEADS, DIM, LAYERS = 2, 4, 2


def _config() -> object:
    from transformers import LlamaConfig

    return LlamaConfig(
        hidden_size=HEADS * DIM,
        num_attention_heads=HEADS,
        num_key_value_heads=HEADS,
        head_dim=DIM,
        num_hidden_layers=LAYERS,
        intermediate_size=8,
        vocab_size=16,
    )


def _chunk(lengths: list[int], base: float) -> tuple[object, torch.Tensor]:
    """A right-padded prefill's cache: row j's real states are `base + j + 1` in columns
    [0, lengths[j]), its padding columns are -1 (finite leftovers the mask hides)."""
    from transformers import DynamicCache

    width = max(lengths)
    keys = torch.full((len(lengths), HEADS, width, DIM), -1.0)
    for row, n in enumerate(lengths):
        keys[row, :, :n] = base + row + 1
    chunk = DynamicCache(config=_config())
    for layer in range(LAYERS):
        chunk.update(keys.clone(), -keys, layer)
    return chunk, torch.tensor(lengths)


def _step(cache: SlotCache, value: float) -> tuple[torch.Tensor, torch.Tensor]:
    """One decode step's cache update (every layer) and its mask: every live row writes `value`."""
    mask = cache.step_mask()
    new = torch.full((cache.live, HEADS, 1, DIM), value)
    for layer in range(LAYERS):
        keys, _ = cache.hf.update(new, -new, layer)
    cache.advance()
    return keys, mask


def test_a_refill_fills_the_next_free_slots_left_aligned_and_leaves_running_rows_in_place() -> None:
    cache = SlotCache(_config(), slots=4, device=torch.device("cpu"))
    chunk, lengths = _chunk([2, 3], base=0.0)
    cache.admit(chunk, lengths)
    assert cache.capacity == 3 + 1 + ROOM and cache.lengths.tolist() == [2, 3]
    before = cache.layers[0].k[:2].clone()
    wider, wider_lengths = _chunk([4, 6, 9], base=10.0)
    cache.admit(wider, wider_lengths[[0, 2]], rows=torch.tensor([0, 2]))  # the 6-token row ended
    assert cache.lengths.tolist() == [2, 3, 4, 9]
    for layer in cache.layers:
        assert torch.equal(layer.k[:2, :, : before.shape[-2]], before)  # the running rows: in place
        assert torch.equal(layer.k[2, :, :4], torch.full((HEADS, 4, DIM), 11.0))
        assert torch.equal(layer.k[3, :, :9], torch.full((HEADS, 9, DIM), 13.0))
        assert torch.equal(layer.v[3, :, :9], -layer.k[3, :, :9])
    with pytest.raises(ValueError, match="do not fit a cache of 4 slots"):
        cache.admit(*_chunk([1], base=0.0))


def test_a_step_writes_each_row_at_its_own_column_and_the_mask_covers_it() -> None:
    cache = SlotCache(_config(), slots=3, device=torch.device("cpu"))
    cache.admit(*_chunk([2, 5], base=0.0))
    keys, mask = _step(cache, 7.0)
    assert keys.shape == (2, HEADS, cache.capacity, DIM) and keys.is_contiguous()
    assert mask.shape == (2, 1, 1, cache.capacity) and mask.dtype == torch.bool
    assert mask[0, 0, 0, :4].tolist() == [True, True, True, False]  # 2 cached + the new token
    assert mask[1, 0, 0, :7].tolist() == [True] * 6 + [False]
    assert torch.equal(keys[0, :, 2], torch.full((HEADS, DIM), 7.0))
    assert torch.equal(keys[1, :, 5], torch.full((HEADS, DIM), 7.0))
    assert torch.equal(keys[1, :, :5], torch.full((HEADS, 5, DIM), 2.0))  # the prompt: untouched
    assert cache.lengths.tolist() == [3, 6]
    with pytest.raises(RuntimeError, match="decode steps only"):
        cache.hf.update(torch.zeros(2, HEADS, 2, DIM), torch.zeros(2, HEADS, 2, DIM), 0)


def test_buffers_grow_with_zeroed_room_and_shrink_once_the_wide_rows_leave() -> None:
    cache = SlotCache(_config(), slots=2, device=torch.device("cpu"))
    cache.admit(*_chunk([1, 3 * ROOM], base=0.0))
    assert cache.capacity == 3 * ROOM + 1 + ROOM
    assert not cache.layers[0].k[:, :, 3 * ROOM :].any()  # room and the free slot's columns: zeros
    for step in range(ROOM + 2):  # the long row needs a column more each step: one regrowth
        _step(cache, float(step))
    assert cache.capacity == 4 * ROOM + 2 + ROOM
    short = cache.layers[0].k[0, :, : ROOM + 3].clone()  # 1 prompt token + ROOM + 2 steps
    cache.select(torch.tensor([0]))  # the long row left: the short one needs ROOM + 4 columns next step
    _step(cache, 9.0)
    assert cache.capacity == ROOM + 4 + ROOM
    assert torch.equal(cache.layers[0].k[0, :, : ROOM + 3], short)
    assert torch.equal(cache.layers[0].k[0, :, ROOM + 3], torch.full((HEADS, DIM), 9.0))
    assert bool(torch.isfinite(cache.layers[0].k).all())  # leftovers (its prompt's padding) stay finite


def test_regrown_buffers_hold_no_uninitialised_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    """A regrowth writes every column it does not copy: fresh memory full of NaNs must not show."""
    real_new_empty = torch.Tensor.new_empty
    monkeypatch.setattr(
        torch.Tensor, "new_empty", lambda t, *a, **k: real_new_empty(t, *a, **k).fill_(float("nan"))
    )
    cache = SlotCache(_config(), slots=3, device=torch.device("cpu"))
    cache.admit(*_chunk([2, ROOM], base=0.0))  # two live rows, one free slot
    for step in range(ROOM + 2):  # the long row outgrows the buffer once
        _step(cache, float(step))
    k = cache.layers[0].k
    assert cache.capacity == 2 * ROOM + 2 + ROOM
    assert bool(torch.isfinite(k).all())
    assert not k[:, :, 2 * ROOM + 2 :].any() and not k[2:].any()  # the new room and the free slot: zeros
    assert torch.equal(k[1, :, ROOM + 1], torch.full((HEADS, DIM), 1.0))  # copied: step 1 wrote it


def test_rows_leaving_in_fill_from_tail_order_copy_only_the_rows_that_move() -> None:
    cache = SlotCache(_config(), slots=5, device=torch.device("cpu"))
    cache.admit(*_chunk([1, 2, 3, 4, 5], base=0.0))
    before = [layer.k.clone() for layer in cache.layers]
    order = fill_from_tail([0, 2, 4], 5)  # rows 1 and 3 finished
    assert order == [0, 4, 2]
    cache.select(torch.tensor(order))
    assert cache.lengths.tolist() == [1, 5, 3]
    for layer, keys in zip(cache.layers, before, strict=True):
        assert torch.equal(layer.k[:3], keys[order]) and torch.equal(layer.v[:3], -keys[order])
    keys, _ = _step(cache, 2.0)
    assert keys.shape[0] == 3 and keys.is_contiguous()


def test_any_other_order_is_gathered_before_it_is_written() -> None:
    cache = SlotCache(_config(), slots=4, device=torch.device("cpu"))
    cache.admit(*_chunk([1, 2, 3, 4], base=0.0))
    before = cache.layers[0].k.clone()
    cache.select(torch.tensor([3, 2, 0, 1]))  # every source is also a destination
    assert torch.equal(cache.layers[0].k, before[[3, 2, 0, 1]])
    assert cache.lengths.tolist() == [4, 3, 1, 2]


@pytest.mark.parametrize(
    ("keep", "n"), [([0, 1, 2], 3), ([], 3), ([2], 3), ([0, 3, 5, 6], 7), ([4, 5, 6], 7)]
)
def test_fill_from_tail_is_a_permutation_of_the_kept_rows_that_leaves_the_head_in_place(
    keep: list[int], n: int
) -> None:
    order = fill_from_tail(keep, n)
    assert sorted(order) == keep
    assert all(order[i] == i for i in range(len(keep)) if i in keep)
