"""Render records through the tokenizer's chat template: prompt text and completion text.

The prompt ends with the template's generation prompt; the completion is the response
(reasoning in <think>...</think>, then the final part) followed by the EOS token, which
is trained (see pitfalls: pad = EOS silently untrains it).
"""

from __future__ import annotations

from typing import Any

from sftscope.data.records import Example, Message

DEFAULT_SUFFIX = "Please reason step by step, and put your final answer within \\boxed{}."


def with_suffix(prompt: list[Message], suffix: str | None) -> list[Message]:
    """Append the instruction suffix to the last user turn (separated by a newline)."""
    if not suffix:
        return list(prompt)
    messages = list(prompt)
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            content = messages[index].content.rstrip()
            messages[index] = Message(role="user", content=f"{content}\n{suffix}")
            break
    return messages


def render_prompt(tokenizer: Any, prompt: list[Message], suffix: str | None = DEFAULT_SUFFIX) -> str:
    """The prompt as text, through the tokenizer's chat template, ending with the generation prompt."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise ValueError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '?')} has no chat template; "
            "set one (tokenizer.chat_template) before rendering chat data"
        )
    messages = [m.model_dump() for m in with_suffix(prompt, suffix)]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def render_completion(tokenizer: Any, example: Example) -> str:
    """The response text the model is trained to produce, ending with the EOS token."""
    if tokenizer.eos_token is None:
        raise ValueError(f"tokenizer {getattr(tokenizer, 'name_or_path', '?')} has no EOS token")
    return example.response_text() + tokenizer.eos_token


def render_example(tokenizer: Any, example: Example, suffix: str | None = DEFAULT_SUFFIX) -> tuple[str, str]:
    """(prompt text, completion text) for one training example."""
    return render_prompt(tokenizer, example.prompt, suffix), render_completion(tokenizer, example)
