"""The packed-row attention gives what SDPA over the dense block-diagonal mask gives, gradients
included, keeps packed examples apart, and leaves padded batches to SDPA."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sftscope.train.batching import collate_packed, collate_padded
from sftscope.train.encode import encode_example
from sftscope.train.loop import train
from sftscope.train.loss import CompletionLoss, batch_loss
from sftscope.train.packed_attention import NAME, example_bounds, use_packed_attention

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import toy_config, toy_data_dir, toy_examples


def _loss_and_grads(model, batch) -> tuple[float, float, torch.Tensor]:
    model.zero_grad()
    nll, entropy = batch_loss(CompletionLoss(model), batch)
    nll.backward()
    return float(nll.detach()), float(entropy), torch.cat([p.grad.flatten() for p in model.parameters()])


@pytest.fixture
def model_and_examples(tiny_model_dir: Path):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="sdpa")
    encoded = [encode_example(tokenizer, e, suffix=None) for e in toy_examples(5)]
    return tokenizer, model, encoded


def test_example_bounds_come_from_restarting_position_ids() -> None:
    positions = torch.tensor([[0, 1, 2, 0, 1, 0, 1, 2, 3]])
    assert example_bounds(positions) == [0, 3, 5, 9]


def test_packed_attention_equals_sdpa_over_the_block_mask(model_and_examples) -> None:
    _, model, encoded = model_and_examples
    batch = collate_packed(encoded)
    dense = _loss_and_grads(model, batch)
    assert use_packed_attention(model) and model.config._attn_implementation == NAME
    packed = _loss_and_grads(model, batch)
    assert abs(dense[0] - packed[0]) < 1e-5 * abs(dense[0])
    assert abs(dense[1] - packed[1]) < 1e-5 * abs(dense[1])
    assert torch.allclose(dense[2], packed[2], atol=1e-6, rtol=1e-4)


def test_packed_examples_stay_apart_and_padded_batches_are_unchanged(model_and_examples) -> None:
    tokenizer, model, encoded = model_and_examples
    padded = collate_padded(encoded, tokenizer.pad_token_id)
    before = _loss_and_grads(model, padded)
    use_packed_attention(model)
    # Each example alone (one-example rows take SDPA's causal path) sums to the packed row's loss.
    alone = sum(_loss_and_grads(model, collate_packed([item]))[0] for item in encoded)
    assert abs(alone - _loss_and_grads(model, collate_packed(encoded))[0]) < 1e-5 * alone
    after = _loss_and_grads(model, padded)
    assert after[0] == pytest.approx(before[0], rel=1e-6)
    assert torch.allclose(before[2], after[2], atol=1e-7, rtol=1e-5)


def test_a_model_on_another_kernel_is_left_alone(tiny_model_dir: Path) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, attn_implementation="eager")
    assert not use_packed_attention(model)
    assert model.config._attn_implementation == "eager"


def test_a_packed_run_saves_checkpoints_that_load_with_any_kernel(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = toy_config(tiny_model_dir, toy_data_dir(tmp_path), tmp_path / "run", steps=2)
    run = train(config)
    checkpoint = sorted((run / "checkpoints").iterdir())[-1]
    assert NAME not in json.dumps(json.loads((checkpoint / "config.json").read_text()))
    AutoModelForCausalLM.from_pretrained(checkpoint)
