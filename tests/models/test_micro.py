"""The micro tokenizer (digits, special tokens, chat template, round trip) and the micro configs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sftscope.data.chat import render_example
from sftscope.data.microworld import domains, generate
from sftscope.errors import InputError
from sftscope.models import micro
from sftscope.models.micro import CHAT_TEMPLATE, EOS, PAD, PRESETS, init_model, preset, train_tokenizer
from sftscope.train.pretrain import TOKENIZER_DIR, tokenizer_texts


@pytest.fixture(scope="module")
def sample() -> list[Any]:
    return [e for d in domains() for e in generate(d.name, split="train", n=40)]


@pytest.fixture(scope="module")
def tokenizer(sample: list[Any], tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A tokenizer trained on a small sample, saved and loaded back as any HF tokenizer would be."""
    from transformers import AutoTokenizer

    out = tmp_path_factory.mktemp("micro-tok")
    train_tokenizer(tokenizer_texts(sample), vocab_size=512).save_pretrained(out)
    return AutoTokenizer.from_pretrained(out)


def _shipped() -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(TOKENIZER_DIR)


@pytest.mark.parametrize("which", ["trained", "shipped"])
def test_digits_are_single_tokens(tokenizer: Any, which: str) -> None:
    tok = tokenizer if which == "trained" else _shipped()
    pieces = tok.convert_ids_to_tokens(tok("Target: 1234 and 907", add_special_tokens=False)["input_ids"])
    digits = [p for p in pieces if any(c.isdigit() for c in p)]
    assert digits == list("1234907")


@pytest.mark.parametrize("which", ["trained", "shipped"])
def test_special_tokens_and_pad_is_not_eos(tokenizer: Any, which: str) -> None:
    tok = tokenizer if which == "trained" else _shipped()
    assert tok.eos_token == EOS and tok.pad_token == PAD and tok.pad_token_id != tok.eos_token_id
    for token in ["<|user|>", "<|assistant|>", "<|system|>", "<think>", "</think>", EOS]:
        assert len(tok(token, add_special_tokens=False)["input_ids"]) == 1, token
    # <think> tags are ordinary added tokens: decoding with skip_special_tokens keeps them.
    ids = tok("<think>\nx\n</think>\n\nok" + EOS, add_special_tokens=False)["input_ids"]
    assert tok.decode(ids, skip_special_tokens=True) == "<think>\nx\n</think>\n\nok"
    assert len(tok) <= 1024


def test_chat_template_renders(tokenizer: Any) -> None:
    assert tokenizer.chat_template == CHAT_TEMPLATE == _shipped().chat_template
    example = generate("arithmetic", split="eval", n=1)[0]
    prompt, completion = render_example(tokenizer, example)
    assert prompt == (
        f"<|user|>\n{example.question}\nPlease reason step by step, and put your final answer within "
        "\\boxed{}.<|end|>\n<|assistant|>\n"
    )
    assert completion == example.final + EOS


def test_round_trip(tokenizer: Any, sample: list[Any]) -> None:
    for example in sample[::7]:
        text = "".join(render_example(tokenizer, example))
        assert tokenizer.decode(tokenizer(text, add_special_tokens=False)["input_ids"]) == text
    unseen = "Zebra quux ~ 42 {}"
    assert tokenizer.decode(tokenizer(unseen, add_special_tokens=False)["input_ids"]) == unseen


def test_preset_sizes(tokenizer: Any) -> None:
    weak, strong = preset("micro-weak"), preset("micro-strong")
    sizes = {name: init_model(spec, tokenizer).num_parameters() for name, spec in PRESETS.items()}
    assert 250_000 < sizes["micro-weak"] < 600_000
    assert 1_300_000 < sizes["micro-strong"] < 3_000_000
    # "Strong" means bigger and trained longer: more examples, and over 10x the compute (params x examples).
    weak_examples, strong_examples = weak.steps * weak.batch_size, strong.steps * strong.batch_size
    assert strong_examples >= 3 * weak_examples
    assert sizes["micro-strong"] * strong_examples > 10 * sizes["micro-weak"] * weak_examples


def test_config_uses_tokenizer_ids(tokenizer: Any) -> None:
    model = init_model(preset("micro-weak"), tokenizer)
    assert model.config.eos_token_id == tokenizer.eos_token_id
    assert model.config.pad_token_id == tokenizer.pad_token_id
    assert model.config.vocab_size == len(tokenizer) and model.config.tie_word_embeddings


def test_unknown_preset() -> None:
    with pytest.raises(InputError, match="micro-strong"):
        preset("micro-huge")


def test_shipped_tokenizer_is_a_plain_hf_directory() -> None:
    assert (Path(TOKENIZER_DIR) / "tokenizer.json").exists()


@pytest.mark.parametrize("world", ["micro2", "micro3", "micro4", "micro5"])
def test_primitives_first_presets(tokenizer: Any, world: str) -> None:
    """The strong base is bigger and trained on many more examples than the weak one; both share one
    valid mix that leans on the primitives (single-step facts and copying) over Countdown itself."""
    weak, strong = preset(f"{world}-weak"), preset(f"{world}-strong")
    assert weak.corpus == strong.corpus and weak.corpus is not None
    mix = weak.corpus
    assert mix["arith_facts"] + mix["copy_numbers"] > 3 * mix["countdown"]
    size = {spec.name: init_model(spec, tokenizer).num_parameters() for spec in (weak, strong)}
    weak_examples, strong_examples = weak.steps * weak.batch_size, strong.steps * strong.batch_size
    assert size[strong.name] > 3 * size[weak.name] and strong_examples >= 4 * weak_examples
    assert size[strong.name] * strong_examples > 10 * size[weak.name] * weak_examples


def test_micro3_teaches_the_facts_inline_too() -> None:
    """micro3 is micro2's world plus the facts worked out inline, as a trace writes them."""
    assert set(micro.PRIMITIVES_INLINE) == set(micro.PRIMITIVES_FIRST) | {"worked_steps"}
    assert micro.PRIMITIVES_INLINE["worked_steps"] > 0


def test_micro4_adds_following_a_path_against_the_prompt() -> None:
    assert set(micro.PRIMITIVES_STATE) == set(micro.PRIMITIVES_INLINE) | {"path_check"}


def test_micro5_adds_matching_a_result_with_the_target_and_trains_longer() -> None:
    assert set(micro.PRIMITIVES_MATCH) == set(micro.PRIMITIVES_INLINE) | {"target_match"}
    assert preset("micro5-strong").steps > preset("micro3-strong").steps
