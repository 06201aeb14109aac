"""FSDP2 in the own loop: each decoder layer is its own shard group, then the root (the loss wrapper,
whose forward the loop calls); a model whose layer class cannot be found, or a sharded state from
another number of processes, is one clear error.

The checks run in a fresh process: a gloo process group leaves threads behind, and a later test's
fork (the study executor's preexec_fn) could deadlock on a lock one of them held."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

CHECKS = """
import json, socket, sys
import torch
from torch.distributed.fsdp import FSDPModule
from transformers import AutoModelForCausalLM
from sftscope.errors import InputError
from sftscope.train.loss import CompletionLoss
from sftscope.train.sharding import check_world_size, shard

with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
torch.distributed.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
out = {}
model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
module = shard(CompletionLoss(model), model, sys.argv[1], "no")
out["wrapped"] = sorted(name for name, sub in module.named_modules() if isinstance(sub, FSDPModule))
out["all_dtensors"] = all(type(p).__name__ == "DTensor" for p in module.parameters())
for name, run in {
    "no_layer_class": lambda: shard(CompletionLoss(model), model, sys.argv[1], "no"),
    "world_size": lambda: check_world_size(sys.argv[1], {"step": 3, "world_size": 2}),
}.items():
    if name == "no_layer_class":
        model = AutoModelForCausalLM.from_pretrained(sys.argv[1])
        model._no_split_modules = ["QwenDecoderLayerThatIsNotHere"]
    try:
        run()
    except InputError as exc:
        out[name] = {"field": exc.field, "message": str(exc)}
torch.distributed.destroy_process_group()
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def checks(tiny_model_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", CHECKS, str(tiny_model_dir)], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def test_each_decoder_layer_and_the_root_are_sharded(checks: dict[str, Any]) -> None:
    assert checks["wrapped"] == ["", "model.model.layers.0", "model.model.layers.1"]
    # Every weight is sharded (a DTensor): the embedding, norm and head live in the root's group.
    assert checks["all_dtensors"]


def test_a_model_without_a_findable_layer_class_is_one_error(checks: dict[str, Any]) -> None:
    error = checks["no_layer_class"]
    assert error["field"] == "_no_split_modules"
    assert "QwenDecoderLayerThatIsNotHere" in error["message"] and "\n" not in error["message"]


def test_a_sharded_state_from_another_world_size_is_refused(checks: dict[str, Any]) -> None:
    error = checks["world_size"]
    assert error["field"] == "world_size" and "2 processes; this launch has 1" in error["message"]
