"""The OpenAI-compatible backend against a stub server on 127.0.0.1 (never any other address)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import pytest

from sftscope.data.records import Message
from sftscope.endpoint import EndpointError
from sftscope.errors import SftscopeError
from sftscope.evaluate.backends import make_backend
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


def test_openai_backend_needs_an_endpoint() -> None:
    with pytest.raises(SftscopeError, match="--endpoint"):
        make_backend("openai")


def test_unknown_backend() -> None:
    with pytest.raises(SftscopeError, match="known: transformers, vllm, openai"):
        make_backend("tgi")


POISON = "case-poison"


@pytest.mark.parametrize(
    ("failure", "attempts", "message"),
    [
        ("429", 3, r"HTTP 429: .*slow down.*\(after 3 attempts\)"),
        ("500", 3, r"HTTP 500: .*busy.*\(after 3 attempts\)"),
        ("not-json", 1, "malformed response: not JSON"),
        ("slow", 3, r"timed out after 0.3s \(after 3 attempts\)"),
    ],
)
def test_a_failing_prompt_stops_the_sweep_with_only_whole_rows_stored(
    stub: tuple[Stub, str], tmp_path: Path, failure: str, attempts: int, message: str
) -> None:
    from sftscope.evaluate.spec import load_task
    from sftscope.evaluate.store import ResultsStore
    from sftscope.evaluate.sweep import Task, run_sweep
    from sftscope.evaluate.targets import Target

    state, url = stub
    task = Task.load(load_task("countdown", ["source.n=4", "scorer.workers=0"]))
    task.examples[2].prompt[-1].content += POISON

    def reply(body: dict[str, Any]) -> Any:
        state.status, state.headers = 200, {}
        if POISON not in body["messages"][-1]["content"]:
            return _chat("\\boxed{1}")
        if failure == "429":
            state.status, state.headers = 429, {"Retry-After": "0.05"}
            return {"error": "slow down"}
        if failure == "500":
            state.status = 500
            return {"error": "busy"}
        if failure == "slow":
            time.sleep(0.5)
            return _chat("too late")
        return b"<html>bad gateway</html>"

    state.reply = reply
    # One request at a time, committed one by one: prompts 0 and 1 are stored; 3 may have been in
    # flight, and is stored whole if it finished before the failure was seen.
    backend = make_backend("openai", base_url=url, model="m", batch_size=1, timeout_s=0.3)
    target = Target("served", 0, "m", "f" * 64)
    with ResultsStore(tmp_path / "results.duckdb") as store:
        with pytest.raises(EndpointError, match=message):
            run_sweep([target], [task], store, backend, show_progress=False)
        rows = store.samples().to_pylist()
    sent = [POISON in r["messages"][-1]["content"] for r in state.requests]
    assert sum(sent) == attempts and len(sent) - attempts in (2, 3)
    stored = [r["prompt_id"] for r in rows]
    assert len(stored) == len(set(stored)) and set(stored) - {task.examples[3].id} == {
        e.id for e in task.examples[:2]
    }
    assert all(r["status"] in ("ok", "wrong") and r["output"] == "\\boxed{1}" for r in rows)


KEY, PASSWORD = "sk-test-SECRET-4242", "pw-SECRET-1717"


def test_no_secret_reaches_the_output_the_store_or_the_aggregates(
    stub: tuple[Stub, str], tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from sftscope.cli import app

    state, url = stub
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    secret_url = url.replace("http://", f"http://user:{PASSWORD}@")
    state.reply = {**_chat("\\boxed{1}"), "usage": {"prompt_tokens": 10, "completion_tokens": 4}}
    args = ["eval", str(tiny_model_dir), "--task", "countdown", "--set", "scorer.workers=0", "--quiet"]
    args += ["--store", str(tmp_path / "served.duckdb"), "--backend", "openai", "--endpoint", secret_url]
    args += ["--endpoint-model", "served", "--endpoint-price", "1,2"]
    ok = CliRunner().invoke(app, [*args, "--set", "source.n=2"])
    assert ok.exit_code == 0, ok.output
    usage = (
        f"endpoint {url}/chat/completions (served): 2 requests, 0 retried, 0 failed, 20 prompt + 8 completion"
    )
    assert usage in " ".join(ok.output.split()) and "cost 0.0360" in ok.output
    assert f"openai:served@{url.split('/')[2]}" in ok.output  # the run name, without userinfo

    state.status, state.reply = 401, f"invalid key {KEY} for {PASSWORD}".encode()  # quoted back
    failed = CliRunner().invoke(app, [*args, "--set", "source.n=3"])
    assert failed.exit_code == 2 and f"{url}/chat/completions: HTTP 401: invalid key ***" in failed.output
    bad_url = CliRunner().invoke(app, [*args[:-4], "--endpoint", f"ftp://user:{PASSWORD}@host"])
    assert bad_url.exit_code == 2 and "ftp://host" in bad_url.output

    written = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())
    assert written
    for secret in (KEY, PASSWORD):
        for text in (ok.output, failed.output, bad_url.output, written.decode("latin-1")):
            assert secret not in text
