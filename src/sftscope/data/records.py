"""The one record type every stage exchanges: a training (or evaluation) example."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from sftscope.hashing import json_sha256

Role = Literal["system", "user", "assistant"]


class Message(BaseModel):
    """One chat turn."""

    model_config = ConfigDict(extra="forbid")

    role: Role
    """Who speaks: system, user or assistant."""
    content: str
    """The turn's text."""


class Example(BaseModel):
    """A prompt as chat messages, a response split into reasoning and final part, and its gold answer."""

    model_config = ConfigDict(extra="forbid")

    id: str = ""
    """Stable identifier; derived from the content when left empty."""
    prompt: list[Message]
    """The conversation up to the response (usually one user turn)."""
    reasoning: str | None = None
    """The chain of thought, rendered inside <think>...</think>; None for no-CoT data."""
    final: str = ""
    """The final part of the response: summary and answer, shown after the reasoning."""
    answer: str | None = None
    """The gold answer used by verifiers and scorers (e.g. '42', or a Countdown expression)."""
    source: str = ""
    """Where the row came from (generator, file or dataset id)."""
    meta: dict[str, Any] = Field(default_factory=dict)
    """Free metadata; transforms record what they did here (e.g. meta['corruption'])."""

    def model_post_init(self, __context: Any) -> None:
        if not self.id:
            self.id = content_id(self)

    @property
    def question(self) -> str:
        """The text of the last user turn."""
        for message in reversed(self.prompt):
            if message.role == "user":
                return message.content
        return ""

    def response_text(self) -> str:
        """Reasoning wrapped in <think> tags, then the final part: what the model is trained to emit."""
        if self.reasoning is None:
            return self.final
        return f"<think>\n{self.reasoning}\n</think>\n\n{self.final}"


def content_id(example: Example) -> str:
    """A short hash of the prompt and gold answer: equal questions get equal ids."""
    return json_sha256({"prompt": [m.model_dump() for m in example.prompt], "answer": example.answer})[:16]


def user_example(question: str, **fields: Any) -> Example:
    """Shorthand for the common single-user-turn example."""
    return Example(prompt=[Message(role="user", content=question)], **fields)


class SplitResponse(BaseModel):
    """A raw model response split at the last </think>."""

    reasoning: str | None
    """Text inside the think block; None when the response has no think tags."""
    final: str
    """Text after the last </think> (the whole text when there are no think tags), stripped."""
    raw_final: str
    """The same text exactly as generated (for checks that must see its leading blank lines)."""
    closed: bool
    """False when a <think> was opened and never closed: the response was cut off mid-thought."""


def split_response(text: str) -> SplitResponse:
    """Split at the *last* </think>, as the reference evaluation does before scoring.

    An opened but unclosed think block yields final="" and closed=False, so a trace cut
    off mid-thought is never graded as if its reasoning were the answer.
    """
    end = text.rfind("</think>")
    if end == -1:
        start = text.find("<think>")
        if start == -1:
            return SplitResponse(reasoning=None, final=text.strip(), raw_final=text, closed=True)
        reasoning = text[start + len("<think>") :].strip()
        return SplitResponse(reasoning=reasoning, final="", raw_final="", closed=False)
    head, final = text[:end], text[end + len("</think>") :]
    start = head.find("<think>")
    reasoning = head[start + len("<think>") :] if start != -1 else head
    return SplitResponse(reasoning=reasoning.strip(), final=final.strip(), raw_final=final, closed=True)
