"""The OpenAI-compatible HTTP backend: any /v1/completions or /v1/chat/completions endpoint.

Requests go through `sftscope.endpoint.EndpointClient` (retries, concurrency, usage, no secrets in
messages). Stop strings are applied here, after the reply, not sent to the server: a server cannot know
that a stop string inside the reasoning must not end the answer. A reply that does not have the
OpenAI shape is an `EndpointError` naming the endpoint and what is missing.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from typing import Any, Literal

from sftscope.data.chat import render_prompt, with_suffix
from sftscope.data.records import Message
from sftscope.endpoint import METER, EndpointClient, EndpointError, Prices, public_url
from sftscope.evaluate.backends.base import FinishReason, Generation, OnDone, PromptLengths, prompt_seeds
from sftscope.evaluate.backends.stops import find_stop, opens_think
from sftscope.evaluate.spec import SamplingSpec
from sftscope.models.loading import load_tokenizer


class OpenAIBackend:
    """Sends each prompt as one request, `concurrency` at a time."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        mode: Literal["completions", "chat"] = "chat",
        concurrency: int = 8,
        timeout_s: float = 600.0,
        retries: int = 2,
        api_key_env: str = "OPENAI_API_KEY",
        tokenizer: str | None = None,
        prices: Prices | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.served_model = model
        self.mode = mode
        self.batch_size = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.api_key_env = api_key_env
        self.tokenizer_name = tokenizer
        self.prices = prices
        self.model_name: str | None = None
        self.tokenizer: Any = None
        self.client: EndpointClient | None = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/{'chat/completions' if self.mode == 'chat' else 'completions'}"

    def load(self, model_path: str) -> None:
        """The endpoint serves the model; requests name it `model` (or the checkpoint path)."""
        self.model_name = self.served_model or str(model_path)
        self.close()
        self.client = EndpointClient(
            self.url,
            api_key=os.environ.get(self.api_key_env) or None,
            timeout_s=self.timeout_s,
            retries=self.retries,
            concurrency=self.batch_size,
            usage=METER.usage(f"{public_url(self.url)} ({self.model_name})", self.prices),
        )
        if self.mode == "completions":
            # Plain completions need the chat template applied here, from the model's tokenizer.

            self.tokenizer = load_tokenizer(self.tokenizer_name or str(model_path))

    def render(self, messages: list[Message], suffix: str | None) -> str:
        if self.mode == "chat":  # the server applies its template; the prompt is the messages as JSON
            return json.dumps([m.model_dump() for m in with_suffix(messages, suffix)])
        return render_prompt(self.tokenizer, messages, suffix)

    def generate(
        self,
        prompts: list[str],
        sampling: SamplingSpec,
        *,
        seeds: list[int] | None = None,
        on_done: OnDone | None = None,
    ) -> list[Generation]:
        seeds = prompt_seeds(prompts, sampling, seeds)
        results: list[Generation | None] = [None] * len(prompts)
        pool = ThreadPoolExecutor(max_workers=max(1, self.batch_size))
        try:
            pending = {
                pool.submit(self._one, p, sampling, s): i
                for i, (p, s) in enumerate(zip(prompts, seeds, strict=True))
            }
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:  # the finished ones reach on_done before any failure is raised
                    index = pending.pop(future)
                    if future.exception() is None:
                        results[index] = future.result()
                        if on_done is not None:
                            on_done(index, results[index])  # type: ignore[arg-type]
                failure = next((f.exception() for f in finished if f.exception() is not None), None)
                if failure is not None:
                    raise failure
        finally:
            # A failed request ends the batch: requests not yet sent are dropped, not waited for.
            pool.shutdown(wait=True, cancel_futures=True)
        return [r for r in results if r is not None]

    def _one(self, prompt: str, sampling: SamplingSpec, seed: int) -> Generation:
        body: dict[str, Any] = {
            "model": self.model_name,
            "max_tokens": sampling.max_new_tokens,
            "temperature": sampling.temperature,
            "top_p": sampling.top_p,
            "seed": seed % 2**31,  # some servers take a 32-bit seed only
            "n": 1,
        }
        if self.mode == "chat":
            body["messages"] = json.loads(prompt)
        else:
            body["prompt"] = prompt
        if self.client is None:
            raise RuntimeError("OpenAIBackend.generate before load")
        reply = self.client.post(body)
        try:
            text, finish, usage = parse_reply(self.url, self.mode, reply)
        except EndpointError as exc:  # the reply may quote the request's secrets back
            raise EndpointError(self.url, self.client.mask(exc.problem)) from None
        think_open = self.mode == "completions" and opens_think(prompt)
        cut = find_stop(text, sampling.stop, think_open) if sampling.stop else None
        if cut is not None:
            text, finish = text[:cut], "stop"
        # Token counts are the server's (None when it reports no usage).
        return Generation(text, usage.get("prompt_tokens"), usage.get("completion_tokens"), finish)

    def prompt_lengths(self, prompts: list[str]) -> PromptLengths | None:
        return None  # the served model's context is the server's to know

    def close(self) -> None:
        self.tokenizer = None
        if self.client is not None:
            self.client.close()
            self.client = None


def parse_reply(url: str, mode: str, reply: Any) -> tuple[str, FinishReason, dict[str, Any]]:
    """(text, finish_reason, usage) of an OpenAI-style reply; EndpointError saying what is missing."""

    def bad(problem: str) -> EndpointError:
        return EndpointError(url, f"malformed response: {problem}")

    if not isinstance(reply, dict):
        raise bad(f"expected a JSON object, got {type(reply).__name__}")
    if "error" in reply:
        raise EndpointError(url, f"endpoint error: {reply['error']}")
    choices = reply.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise bad("no choices[0]")
    choice = choices[0]
    if mode == "chat":
        message = choice.get("message")
        # content may be null (e.g. a refusal field instead), but the key belongs to every chat reply.
        if not isinstance(message, dict) or not isinstance(message.get("content", 0), (str, type(None))):
            raise bad("choices[0].message.content is missing")
        text = message.get("content") or ""
        # Reasoning servers return the thought apart; put it back so the scorer's split sees it.
        reasoning = message.get("reasoning_content") or message.get("reasoning")
        if isinstance(reasoning, str) and reasoning:
            text = f"<think>{reasoning}</think>{text}"
    else:
        text = choice.get("text")
        if not isinstance(text, str):
            raise bad("choices[0].text is missing or not a string")
    finish = choice.get("finish_reason")
    if not isinstance(finish, str):
        raise bad(f"choices[0].finish_reason is {finish!r}, expected a string such as 'stop' or 'length'")
    usage = reply.get("usage")
    # Anything but 'length' (stop, eos, content_filter, ...) ended the reply before the limit.
    return text, "length" if finish == "length" else "stop", usage if isinstance(usage, dict) else {}
