"""FSDP2 in the own loop: each decoder layer is its own shard group, then the root (the loss wrapper,
whose forward the loop calls); a model whose layer class cannot be found is one clear error."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from transformers import AutoModelForCausalLM

from sftscope.errors import InputError
from sftscope.train.loss import CompletionLoss
from sftscope.train.sharding import check_world_size, shard


@pytest.fixture
def one_process_group() -> Iterator[None]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    yield
    torch.distributed.destroy_process_group()


def test_each_decoder_layer_and_the_root_are_sharded(tiny_model_dir: Path, one_process_group: None) -> None:
    from torch.distributed.fsdp import FSDPModule

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    module = shard(CompletionLoss(model), model, str(tiny_model_dir), "no")
    wrapped = sorted(name for name, sub in module.named_modules() if isinstance(sub, FSDPModule))
    assert wrapped == ["", "model.model.layers.0", "model.model.layers.1"]
    # Every weight is sharded (a DTensor), and the embedding lives in the root's group.
    assert all(type(p).__name__ == "DTensor" for p in module.parameters())


def test_a_model_without_a_findable_layer_class_is_one_error(
    tiny_model_dir: Path, one_process_group: None
) -> None:
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model._no_split_modules = ["QwenDecoderLayerThatIsNotHere"]
    with pytest.raises(InputError) as caught:
        shard(CompletionLoss(model), model, str(tiny_model_dir), "no")
    assert caught.value.field == "_no_split_modules"
    assert "QwenDecoderLayerThatIsNotHere" in str(caught.value) and "\n" not in str(caught.value)


def test_a_sharded_state_from_another_world_size_is_refused(one_process_group: None, tmp_path: Path) -> None:
    with pytest.raises(InputError) as caught:
        check_world_size(tmp_path, {"step": 3, "world_size": 2})
    assert caught.value.field == "world_size" and "2 processes; this launch has 1" in str(caught.value)
