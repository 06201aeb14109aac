"""Generation backends behind one interface (`base.Backend`): transformers, vLLM, OpenAI-compatible HTTP."""

from __future__ import annotations

from typing import Any

from sftscope.errors import SftscopeError
from sftscope.evaluate.backends.base import Backend, Generation, sample_seed
from sftscope.evaluate.backends.hf import TransformersBackend
from sftscope.evaluate.backends.openai import OpenAIBackend
from sftscope.evaluate.backends.vllm import VLLMBackend, gpu_lanes, visible_gpus

__all__ = ["BACKENDS", "Backend", "Generation", "make_backend", "make_backends", "sample_seed"]

BACKENDS = ("transformers", "vllm", "openai")


def make_backend(name: str, *, batch_size: int | None = None, **options: Any) -> Backend:
    """A backend by name; `options` go to its constructor (e.g. base_url for openai)."""
    sized = {"batch_size": batch_size} if batch_size is not None else {}
    if name == "transformers":
        return TransformersBackend(**sized, **options)
    if name == "vllm":
        return VLLMBackend(**sized, **options)
    if name == "openai":
        if "base_url" not in options:
            raise SftscopeError("the openai backend needs an endpoint URL (--endpoint http://HOST:PORT/v1)")
        return OpenAIBackend(options.pop("base_url"), concurrency=batch_size or 8, **options)
    raise SftscopeError(f"unknown backend '{name}'; known: {', '.join(BACKENDS)}")


def make_backends(name: str, *, batch_size: int | None = None, **options: Any) -> list[Backend]:
    """The backends of a sweep: for vllm one per GPU lane of this node (data parallel; a lane is
    `tensor_parallel_size` x `pipeline_parallel_size` GPUs), else the one backend."""
    if name == "vllm":
        per_engine = int(options.get("tensor_parallel_size", 1)) * int(
            options.get("pipeline_parallel_size", 1)
        )
        lanes = gpu_lanes(visible_gpus(), per_engine)
        if len(lanes) > 1:
            return [make_backend(name, batch_size=batch_size, device=lane, **options) for lane in lanes]
    return [make_backend(name, batch_size=batch_size, **options)]
