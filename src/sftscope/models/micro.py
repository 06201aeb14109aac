"""Micro base models: tiny Llama configs with their pretraining budgets, and the micro-world tokenizer.

The tokenizer is BPE trained with HF `tokenizers` on micro-world text. Digits are always split one
per token (arithmetic must see place values), `<think>`/`</think>` are ordinary added tokens so they
survive `skip_special_tokens`, and pad is its own token (pad = EOS would untrain EOS, open-r1#492).
EOS is `<|end|>`, the token that closes every turn of the chat template.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from sftscope.errors import InputError

CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
PAD, EOS, UNK = "<|pad|>", "<|end|>", "<|unk|>"
ROLE_TOKENS = ["<|system|>", "<|user|>", "<|assistant|>"]
THINK_TOKENS = ["<think>", "</think>"]
# Every word piece may start with one space; digits stand alone; newlines and runs of spaces apart.
PRETOKENIZE = r"\d| ?\p{L}+| ?[^\s\p{L}\d]+|\n|[^\S\n]+"


class MicroPreset(BaseModel):
    """A micro base: Llama dimensions plus the pretraining budget that gives it its capability."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Base name; shipped under src/sftscope/models/bases/<name>/."""
    hidden_size: int
    """Model width."""
    num_layers: int
    """Transformer blocks."""
    num_heads: int
    """Attention heads (no grouped-query attention at this size)."""
    intermediate_size: int
    """MLP width."""
    max_positions: int = 1024
    """Longest sequence (prompt + response); long-CoT SFT traces must fit."""
    steps: int
    """Pretraining optimizer steps."""
    batch_size: int = 64
    """Examples per optimizer step."""
    lr: float = 2e-3
    """Peak learning rate (tiny models tolerate and need a high one)."""
    warmup_ratio: float = 0.02
    """Linear warmup share, then cosine decay to 0."""
    corpus_seed: int = 0
    """Seed of the procedural corpus (micro-world train split)."""
    seed: int = 1
    """Seed of the initial weights and the data order."""
    corpus: dict[str, float] | None = None
    """The corpus mix: micro-world domain -> weight (normalised); None is the world's default mix."""


# Heavy on the primitives; Countdown itself light, so its direct answer stays rarely right while a
# short search over known facts finds it; cross-domain tasks that share the procedure, not the surface.
PRIMITIVES_FIRST: dict[str, float] = {
    "arith_facts": 0.30,
    "copy_numbers": 0.10,
    "countdown": 0.08,
    "countdown4": 0.06,
    "missing_operand": 0.07,
    "subset_sum": 0.07,
    "word_sequence_reversal": 0.08,
    "instructions": 0.04,
    "safety_forbidden": 0.10,
    "safety_benign": 0.10,
}

# The same world with the facts also taught inline, as a trace writes them (`worked_steps`): a base
# taught them only as question and answer recalls them there but not inside a trace, so its SFT
# traces carry wrong arithmetic (benchmarks/RESULTS.md). Countdown lighter still, for its 10-30% band.
PRIMITIVES_INLINE: dict[str, float] = {
    **PRIMITIVES_FIRST,
    "arith_facts": 0.20,
    "worked_steps": 0.15,
    "copy_numbers": 0.08,
    "countdown": 0.03,
    "instructions": 0.06,
}

# micro3's world plus `path_check`: a given path followed against the prompt (the numbers that remain,
# whether it hits the target). micro3-strong's SFT traces got the facts right but claimed targets
# they missed and spent numbers twice: what a trace reads back from the prompt was still missing.
PRIMITIVES_STATE: dict[str, float] = {
    **PRIMITIVES_INLINE,
    "arith_facts": 0.15,
    "path_check": 0.10,
    "copy_numbers": 0.06,
    "instructions": 0.04,
}

# micro3's world plus `target_match`: after the facts on the last pair, which of them makes the
# target. micro3-strong's worked-ending traces wrote those facts right 94-97% of the time but called
# a fact the target wrongly two times in three; taught alone in SFT the decision climbed only to
# 0.82 in 4,096 steps. So the strong base gets it in pretraining, for longer than micro3's 2,400.
PRIMITIVES_MATCH: dict[str, float] = {
    **PRIMITIVES_INLINE,
    "arith_facts": 0.14,
    "target_match": 0.12,
    "copy_numbers": 0.05,
    "instructions": 0.03,
}

# The two model sizes every world uses: a strong base 4x the weak one's parameters.
STRONG_SIZE: dict[str, int] = {"hidden_size": 160, "num_layers": 5, "num_heads": 5, "intermediate_size": 448}
WEAK_SIZE: dict[str, int] = {"hidden_size": 96, "num_layers": 3, "num_heads": 4, "intermediate_size": 256}

PRESETS: dict[str, MicroPreset] = {
    p.name: p
    for p in (
        MicroPreset(name="micro-weak", **WEAK_SIZE, steps=600),
        MicroPreset(name="micro-strong", **STRONG_SIZE, steps=1800),
        # The primitives-first worlds (issue 20): the strong base must hold every single-step fact a
        # Countdown trace writes and copy numbers; the weak one, smaller and shorter trained, must not.
        MicroPreset(name="micro2-strong", **STRONG_SIZE, steps=2400, corpus=PRIMITIVES_FIRST),
        MicroPreset(name="micro2-weak", **WEAK_SIZE, steps=600, corpus=PRIMITIVES_FIRST),
        MicroPreset(name="micro3-strong", **STRONG_SIZE, steps=2400, corpus=PRIMITIVES_INLINE),
        MicroPreset(name="micro3-weak", **WEAK_SIZE, steps=600, corpus=PRIMITIVES_INLINE),
        MicroPreset(name="micro4-strong", **STRONG_SIZE, steps=2400, corpus=PRIMITIVES_STATE),
        MicroPreset(name="micro4-weak", **WEAK_SIZE, steps=600, corpus=PRIMITIVES_STATE),
        MicroPreset(name="micro5-strong", **STRONG_SIZE, steps=3600, corpus=PRIMITIVES_MATCH),
        MicroPreset(name="micro5-weak", **WEAK_SIZE, steps=600, corpus=PRIMITIVES_MATCH),
    )
}


def preset(name: str) -> MicroPreset:
    """A micro preset by name; an unknown name is an InputError listing the known ones."""
    if name not in PRESETS:
        known = ", ".join(PRESETS)
        raise InputError("command line", f"unknown micro preset '{name}' (known: {known})", field="preset")
    return PRESETS[name]


def llama_config(spec: MicroPreset, tokenizer: Any) -> Any:
    """The LlamaConfig of a preset, with the tokenizer's vocabulary and special token ids (fp32)."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden_size,
        intermediate_size=spec.intermediate_size,
        num_hidden_layers=spec.num_layers,
        num_attention_heads=spec.num_heads,
        num_key_value_heads=spec.num_heads,
        max_position_embeddings=spec.max_positions,
        tie_word_embeddings=True,  # at this size the embedding is a large share of the parameters
        bos_token_id=None,
        eos_token_id=tokenizer.convert_tokens_to_ids(EOS),
        pad_token_id=tokenizer.convert_tokens_to_ids(PAD),
        dtype="float32",
    )


def init_model(spec: MicroPreset, tokenizer: Any) -> Any:
    """A freshly initialised LlamaForCausalLM for the preset, seeded by `spec.seed`."""
    import torch
    from transformers import LlamaForCausalLM

    torch.manual_seed(spec.seed)
    return LlamaForCausalLM(llama_config(spec, tokenizer))


def train_tokenizer(texts: Iterable[str], vocab_size: int = 768) -> Any:
    """Train the micro BPE tokenizer on raw texts: a PreTrainedTokenizerFast with the chat template."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token=UNK))
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(PRETOKENIZE), behavior="isolated")
    backend.decoder = decoders.Fuse()  # pieces carry their own spaces: decoding is concatenation
    printable = [chr(c) for c in range(32, 127)] + ["\n"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[PAD, EOS, UNK, *ROLE_TOKENS],
        initial_alphabet=printable,
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer=trainer)
    backend.add_tokens([AddedToken(t, normalized=False, special=False) for t in THINK_TOKENS])
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token=PAD,
        eos_token=EOS,
        unk_token=UNK,
        additional_special_tokens=ROLE_TOKENS,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def save_tokenizer(tokenizer: Any, out_dir: str | Path) -> Path:
    """Save as an ordinary HF tokenizer directory (tokenizer.json, config, chat template)."""
    out = Path(out_dir)
    tokenizer.save_pretrained(out)
    return out
