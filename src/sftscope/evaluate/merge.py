"""A PEFT adapter merged onto its base, saved once as an ordinary model folder any backend loads."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sftscope.errors import InputError

_TOKENIZER_SOURCES = ("tokenizer.json", "tokenizer.model", "vocab.json")


def merged_model(adapter_dir: Path, base_dir: Path, out: Path) -> Path:
    """`out` holding base + adapter merged (written to a temporary sibling, then renamed, so a kill
    never leaves half a model there); reused when it exists. The tokenizer is the adapter's where
    it saved one (it may have added tokens), else the base's."""
    if (out / "config.json").is_file():
        return out
    # peft and torch are heavy; only a sweep that reaches an unmerged adapter needs them.
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    own = any((adapter_dir / name).is_file() for name in _TOKENIZER_SOURCES)
    tokenizer = AutoTokenizer.from_pretrained(adapter_dir if own else base_dir)
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype="auto")
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:  # tokens added during fine-tuning
        model.resize_token_embeddings(len(tokenizer))
    try:
        with torch.no_grad():
            merged = PeftModel.from_pretrained(model, adapter_dir).merge_and_unload()
    except (RuntimeError, ValueError, KeyError) as exc:  # shapes or module names that do not fit
        raise InputError(str(adapter_dir), f"does not fit its base {base_dir}: {exc}") from exc
    tmp = out.with_name(f"{out.name}.{os.getpid()}.tmp")  # one per process: parallel sweeps may merge it too
    shutil.rmtree(tmp, ignore_errors=True)
    merged.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    try:
        tmp.rename(out)
    except OSError:  # another sweep renamed its identical merge into place first
        shutil.rmtree(tmp, ignore_errors=True)
        if not (out / "config.json").is_file():
            raise
    return out
