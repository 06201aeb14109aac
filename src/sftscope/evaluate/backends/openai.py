"""The OpenAI-compatible HTTP backend: any /v1/completions or /v1/chat/completions endpoint.

Stop strings are applied here, after the reply, not sent to the server: a server cannot know
that a stop string inside the reasoning must not end the answer. A reply that does not have the
OpenAI shape is an `EndpointError` naming the endpoint and what is missing.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any, Literal

from sftscope.data.chat import render_prompt, with_suffix
from sftscope.data.records import Message
from sftscope.errors import SftscopeError
from sftscope.evaluate.backends.base import FinishReason, Generation, OnDone, prompt_seeds
from sftscope.evaluate.backends.stops import find_stop, opens_think
from sftscope.evaluate.spec import SamplingSpec


class EndpointError(SftscopeError):
    """The endpoint failed or answered something that is not an OpenAI-style completion."""

    def __init__(self, url: str, problem: str) -> None:
        self.url = url
        super().__init__(f"{url}: {problem}")


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
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.served_model = model
        self.mode = mode
        self.batch_size = concurrency
        self.timeout_s = timeout_s
        self.retries = retries
        self.api_key_env = api_key_env
        self.tokenizer_name = tokenizer
        self.model_name: str | None = None
        self.tokenizer: Any = None

    @property
    def url(self) -> str:
        return f"{self.base_url}/{'chat/completions' if self.mode == 'chat' else 'completions'}"

    def load(self, model_path: str) -> None:
        """The endpoint serves the model; requests name it `model` (or the checkpoint path)."""
        self.model_name = self.served_model or str(model_path)
        if self.mode == "completions":
            # Plain completions need the chat template applied here, from the model's tokenizer.
            from sftscope.models.loading import load_tokenizer

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
        with ThreadPoolExecutor(max_workers=max(1, self.batch_size)) as pool:
            futures = {
                pool.submit(self._one, p, sampling, s): i
                for i, (p, s) in enumerate(zip(prompts, seeds, strict=True))
            }
            for future in as_completed(futures):
                index = futures[future]
                results[index] = future.result()
                if on_done is not None:
                    on_done(index, results[index])  # type: ignore[arg-type]
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
        reply = self._post(body)
        text, finish, usage = parse_reply(self.url, self.mode, reply)
        think_open = self.mode == "completions" and opens_think(prompt)
        cut = find_stop(text, sampling.stop, think_open) if sampling.stop else None
        if cut is not None:
            text, finish = text[:cut], "stop"
        # Token counts are the server's (None when it reports no usage).
        return Generation(text, usage.get("prompt_tokens"), usage.get("completion_tokens"), finish)

    def _post(self, body: dict[str, Any]) -> Any:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        for attempt in range(self.retries + 1):
            request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
            wait = 0.5 * 2**attempt
            try:
                with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                    raw = response.read()
                break
            except urllib.error.HTTPError as exc:
                detail = exc.read()[:300].decode("utf-8", "replace")
                # Rate limits (429) and server errors pass; any other 4xx will not get better by retrying.
                if (exc.code < 500 and exc.code != 429) or attempt == self.retries:
                    raise EndpointError(self.url, f"HTTP {exc.code}: {detail}") from exc
                wait = retry_after(exc.headers.get("Retry-After"), wait, self.timeout_s)
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    raise EndpointError(self.url, f"request failed: {exc}") from exc
            time.sleep(wait)
        try:
            return json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise EndpointError(self.url, f"malformed response: not JSON ({raw[:120]!r})") from exc

    def close(self) -> None:
        self.tokenizer = None


def retry_after(header: str | None, default: float, limit: float) -> float:
    """Seconds to wait before a retry: the server's Retry-After (in seconds) when it sent one, at most
    `limit`; else `default`. (The HTTP-date form is rare from model servers and falls back.)"""
    try:
        seconds = float(header) if header is not None else default
    except ValueError:
        return default
    if not math.isfinite(seconds):  # "nan" and "inf" parse as floats
        return default
    return min(max(seconds, 0.0), limit)


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
