"""The OpenAI-compatible backend against a stub server on 127.0.0.1 (never any other address)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sftscope.data.records import Message
from sftscope.errors import SftscopeError
from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.backends.openai import EndpointError, retry_after
from sftscope.evaluate.spec import SamplingSpec

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from openai_stub import Stub


def _chat(content: str, finish: str = "stop", **message: Any) -> dict[str, Any]:
    return {
        "choices": [
            {"message": {"role": "assistant", "content": content, **message}, "finish_reason": finish}
        ],
        "usage": {"prompt_tokens": 7, "completion_tokens": 5},
    }


def test_chat_mode_sends_messages_and_applies_stops_outside_think(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.reply = _chat("the answer END more", reasoning_content="thinking END still")
    backend = make_backend("openai", base_url=url, model="served", mode="chat", batch_size=2)
    backend.load("/models/ckpt")
    prompt = backend.render([Message(role="user", content="Q?")], "Think.")
    done: list[int] = []
    (gen,) = backend.generate(
        [prompt], SamplingSpec(max_new_tokens=9, stop=["END"]), seeds=[3], on_done=lambda i, g: done.append(i)
    )
    assert gen.text == "<think>thinking END still</think>the answer " and gen.finish_reason == "stop"
    assert (gen.prompt_tokens, gen.output_tokens, done) == (7, 5, [0])
    request = state.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["model"] == "served"
    assert request["messages"] == [{"role": "user", "content": "Q?\nThink."}] and request["max_tokens"] == 9
    assert "stop" not in request and request["seed"] == 3


def test_completions_mode_renders_with_the_tokenizer(stub: tuple[Stub, str], tiny_model_dir: Any) -> None:
    state, url = stub
    state.reply = {"choices": [{"text": " 42", "finish_reason": "length"}]}
    backend = make_backend("openai", base_url=url, mode="completions")
    backend.load(str(tiny_model_dir))
    prompt = backend.render([Message(role="user", content="Q?")], None)
    (gen,) = backend.generate([prompt], SamplingSpec())
    assert state.requests[0]["prompt"].startswith("<|user|>") and state.requests[0]["model"] == str(
        tiny_model_dir
    )
    assert (gen.text, gen.finish_reason, gen.output_tokens) == (" 42", "length", None)  # no usage reported


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"<html>oops</html>", "not JSON"),
        ([1, 2], "expected a JSON object"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"message": {"role": "assistant"}, "finish_reason": "stop"}]}, "content"),
        ({"choices": [{"message": {"content": "x"}}]}, "finish_reason"),
        ({"error": {"message": "model not found"}}, "model not found"),
    ],
)
def test_malformed_replies_name_the_endpoint(stub: tuple[Stub, str], reply: Any, message: str) -> None:
    state, url = stub
    state.reply = reply
    backend = make_backend("openai", base_url=url, model="m")
    backend.load("m")
    with pytest.raises(EndpointError, match=message) as caught:
        backend.generate([backend.render([Message(role="user", content="x")], None)], SamplingSpec())
    assert str(caught.value).startswith(f"{url}/chat/completions: ")


def test_http_errors_are_retried_then_reported(stub: tuple[Stub, str]) -> None:
    state, url = stub
    state.status, state.reply = 500, {"error": "busy"}
    backend = make_backend("openai", base_url=url, model="m", retries=1)
    backend.load("m")
    with pytest.raises(EndpointError, match="HTTP 500"):
        backend.generate([backend.render([Message(role="user", content="x")], None)], SamplingSpec())
    assert len(state.requests) == 2
    state.status = 404
    with pytest.raises(EndpointError, match="HTTP 404"):
        backend.generate([backend.render([Message(role="user", content="x")], None)], SamplingSpec())
    assert len(state.requests) == 3  # a 4xx is not retried


def test_rate_limits_are_retried_after_the_servers_wait(stub: tuple[Stub, str]) -> None:
    state, url = stub
    sent: list[float] = []

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        sent.append(time.monotonic())
        limited = len(sent) == 1
        state.status, state.headers = (429, {"Retry-After": "1.2"}) if limited else (200, {})
        return {"error": "slow down"} if limited else _chat("fine")

    state.reply = reply
    backend = make_backend("openai", base_url=url, model="m", retries=1)
    backend.load("m")
    (gen,) = backend.generate([backend.render([Message(role="user", content="x")], None)], SamplingSpec())
    assert gen.text == "fine" and len(sent) == 2
    assert sent[1] - sent[0] >= 1.2  # waited as told (the first backoff would be 0.5 s)


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 1.0), ("3", 3.0), ("-2", 0.0), ("900", 60.0), ("Wed, 21 Oct", 1.0), ("nan", 1.0), ("inf", 1.0)],
)
def test_retry_after_header(header: str | None, expected: float) -> None:
    assert retry_after(header, 1.0, 60.0) == expected


def test_openai_backend_needs_an_endpoint() -> None:
    with pytest.raises(SftscopeError, match="--endpoint"):
        make_backend("openai")


def test_unknown_backend() -> None:
    with pytest.raises(SftscopeError, match="known: transformers, vllm, openai"):
        make_backend("tgi")
