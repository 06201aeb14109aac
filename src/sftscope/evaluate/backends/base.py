"""The one interface every generation backend implements."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple, Protocol

from sftscope.data.records import Message
from sftscope.evaluate.spec import SamplingSpec

FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class Generation:
    """One generated response."""

    text: str
    """The generated text only (not the prompt), cut before a stop string; no EOS token."""
    prompt_tokens: int | None
    """Prompt length in tokens; None when a remote backend does not report it."""
    output_tokens: int | None
    """Generated tokens (a stop string's tokens included, EOS excluded); None when not reported."""
    finish_reason: FinishReason
    """stop: EOS or a stop string; length: max_new_tokens reached."""


OnDone = Callable[[int, Generation], None]


class PromptLengths(NamedTuple):
    """How long prompts are for the loaded model, and how much it can take."""

    tokens: list[int]
    """Each prompt's length in tokens, as `generate` would feed it."""
    context: int
    """Positions the model attends over, prompt and output together."""


class Backend(Protocol):
    """A model server: load a checkpoint, render prompts, generate."""

    name: str
    """Recorded with every sample (`backend` column)."""
    batch_size: int
    """Rows decoded together; recorded with every sample (outputs can depend on it, vllm#9567)."""

    def load(self, model_path: str) -> None:
        """Serve this checkpoint next (reusing what can be reused from the previous one)."""

    def render(self, messages: list[Message], suffix: str | None) -> str:
        """The prompt in the form `generate` takes (chat-templated text, or the messages for chat APIs)."""

    def generate(
        self,
        prompts: list[str],
        sampling: SamplingSpec,
        *,
        seeds: list[int] | None = None,
        on_done: OnDone | None = None,
    ) -> list[Generation]:
        """One generation per prompt, in order. `seeds[i]` seeds prompt i's sampling on its own, so a
        sample does not depend on what else is in the batch; `on_done(i, generation)` is called as
        soon as prompt i is finished (for committing results while the rest still run)."""

    def prompt_lengths(self, prompts: list[str]) -> PromptLengths | None:
        """The prompts' token counts and the loaded model's context, or None when the backend cannot
        tell (a remote endpoint: its server refuses what does not fit)."""

    def close(self) -> None:
        """Release the model."""


def sample_seed(seed: int, prompt_id: str, sample_idx: int) -> int:
    """The seed of one sample: fixed by the task's seed, the prompt and the sample index alone."""
    digest = hashlib.sha256(f"{seed}:{prompt_id}:{sample_idx}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1  # non-negative int64, as torch and vLLM accept


def prompt_seeds(prompts: list[str], sampling: SamplingSpec, seeds: list[int] | None) -> list[int]:
    """The per-prompt seeds `generate` got, or the sampling seed for every prompt when it got none."""
    return seeds if seeds is not None else [sampling.seed] * len(prompts)
