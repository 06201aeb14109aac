"""Chat rendering: the instruction suffix, <think> wrapping and the trained EOS."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from sftscope.data.chat import DEFAULT_SUFFIX, render_completion, render_example, render_prompt, with_suffix
from sftscope.data.records import Message, user_example


@pytest.fixture(scope="module")
def tokenizer(tiny_model_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


def test_default_suffix_is_the_reference_instruction() -> None:
    assert DEFAULT_SUFFIX == "Please reason step by step, and put your final answer within \\boxed{}."


def test_prompt_goes_through_the_template_with_the_suffix_on_the_last_user_turn(tokenizer: Any) -> None:
    prompt = [Message(role="user", content="first"), Message(role="assistant", content="ok")]
    prompt.append(Message(role="user", content="What is 2+2?  "))
    text = render_prompt(tokenizer, prompt)
    assert text.startswith("<|user|>\nfirst<|end|>")  # earlier turns keep their text
    assert f"What is 2+2?\n{DEFAULT_SUFFIX}<|end|>" in text
    assert text.endswith("<|assistant|>\n")  # the generation prompt


def test_suffix_is_configurable_and_can_be_switched_off(tokenizer: Any) -> None:
    prompt = [Message(role="user", content="Q")]
    assert "Answer briefly." in render_prompt(tokenizer, prompt, "Answer briefly.")
    assert render_prompt(tokenizer, prompt, None) == "<|user|>\nQ<|end|>\n<|assistant|>\n"
    assert with_suffix(prompt, "") == prompt


def test_completion_wraps_reasoning_in_think_tags_and_ends_with_eos(tokenizer: Any) -> None:
    example = user_example("Q", reasoning="step one", final="\\boxed{4}")
    assert render_completion(tokenizer, example) == "<think>\nstep one\n</think>\n\n\\boxed{4}</s>"
    no_cot = user_example("Q", final="\\boxed{4}")
    assert render_example(tokenizer, no_cot)[1] == "\\boxed{4}</s>"


def test_a_tokenizer_without_chat_template_is_refused(tokenizer: Any) -> None:
    bare = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    bare.chat_template = None
    with pytest.raises(ValueError, match="no chat template"):
        render_prompt(bare, [Message(role="user", content="Q")])
