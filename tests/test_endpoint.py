"""The shared OpenAI-compatible HTTP client against the stub server on 127.0.0.1: retries and their
waits, what is not retried, timeouts, the concurrency limit, usage and cost, and no secret in any
message."""

from __future__ import annotations

import logging
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from sftscope.endpoint import METER, EndpointClient, EndpointError, Prices, Usage, public_url, retry_after

sys.path.insert(0, str(Path(__file__).parent / "fixtures" / "eval"))
from openai_stub import Stub

OK = {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}]}


def _client(url: str, waits: list[float], **options: Any) -> EndpointClient:
    return EndpointClient(f"{url}/chat/completions", sleep=waits.append, **options)


def _status(state: Stub, status: int, reply: Any, headers: dict[str, str] | None = None) -> None:
    state.status, state.reply, state.headers = status, reply, headers or {}


def test_rate_limits_wait_as_the_server_asks_capped(stub: tuple[Stub, str]) -> None:
    state, url = stub
    _status(state, 429, {"error": "slow down"}, {"Retry-After": "1.5"})
    waits: list[float] = []
    client = _client(url, waits, retries=2)
    with pytest.raises(EndpointError, match=r"HTTP 429: .*slow down.*\(after 3 attempts\)"):
        client.post({"x": 1})
    assert len(state.requests) == 3 and waits == [1.5, 1.5]
    assert (client.usage.retries, client.usage.failed, client.usage.requests) == (2, 1, 0)

    state.headers = {"Retry-After": "900"}  # an hour's wait is cut to max_wait_s
    waits.clear()
    with pytest.raises(EndpointError):
        _client(url, waits, retries=1, max_wait_s=5.0).post({})
    assert waits == [5.0]


def test_server_errors_back_off_exponentially_then_pass(stub: tuple[Stub, str]) -> None:
    state, url = stub

    def flaky(body: dict[str, Any]) -> Any:
        state.status = 500 if len(state.requests) <= 2 else 200
        return {"error": "busy"} if state.status == 500 else OK

    state.reply = flaky
    waits: list[float] = []
    client = _client(url, waits, retries=3, backoff_s=0.25)
    assert client.post({"n": 1}) == OK
    assert len(state.requests) == 3 and waits == [0.25, 0.5]
    assert (client.usage.retries, client.usage.failed, client.usage.requests) == (2, 0, 1)


@pytest.mark.parametrize(
    ("status", "reply", "message"),
    [
        (404, {"error": "no such model"}, "HTTP 404: .*no such model"),
        (400, {"error": "bad request"}, "HTTP 400"),
        (200, b"<html>gateway</html>", "malformed response: not JSON"),
        (200, [1, 2], "expected a JSON object, got list"),
    ],
)
def test_what_retrying_cannot_fix_fails_at_once(
    stub: tuple[Stub, str], status: int, reply: Any, message: str
) -> None:
    state, url = stub
    _status(state, status, reply)
    waits: list[float] = []
    client = _client(url, waits, retries=3)
    with pytest.raises(EndpointError, match=message) as caught:
        client.post({})
    assert len(state.requests) == 1 and waits == [] and client.usage.failed == 1
    assert "attempts" not in str(caught.value)


def test_a_slow_reply_times_out_each_attempt(stub: tuple[Stub, str]) -> None:
    state, url = stub

    def slow(body: dict[str, Any]) -> Any:
        time.sleep(0.6)
        return OK

    state.reply = slow
    waits: list[float] = []
    client = _client(url, waits, retries=1, timeout_s=0.2)
    started = time.monotonic()
    with pytest.raises(EndpointError, match=r"timed out after 0.2s \(after 2 attempts\)"):
        client.post({})
    assert time.monotonic() - started < 1.0  # did not wait for the replies
    assert len(state.requests) == 2 and waits == [0.5]


def test_a_refused_connection_is_retried_then_named() -> None:
    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}/v1"
    waits: list[float] = []
    with pytest.raises(EndpointError, match=r"request failed: ConnectError.*\(after 2 attempts\)") as caught:
        _client(url, waits, retries=1).post({})
    assert str(caught.value).startswith(f"{url}/chat/completions: ") and waits == [0.5]


def test_at_most_concurrency_requests_are_in_flight(stub: tuple[Stub, str]) -> None:
    state, url = stub
    lock, now, peak = threading.Lock(), [0], [0]

    def counted(body: dict[str, Any]) -> Any:
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1
        return OK

    state.reply = counted
    client = _client(url, [], concurrency=2)
    threads = [threading.Thread(target=client.post, args=({"i": i},)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(state.requests) == 8 and peak[0] == 2


def test_usage_and_cost_are_counted_per_endpoint(stub: tuple[Stub, str]) -> None:
    state, url = stub
    usage = {"prompt_tokens": 1000, "completion_tokens": 500}
    state.reply = lambda body: {**OK, "usage": usage} if body["with_usage"] else OK
    counted = Usage("test", Prices(0.2, 0.6))
    client = EndpointClient(f"{url}/chat/completions", usage=counted)
    for with_usage in (True, True, False):
        client.post({"with_usage": with_usage})
    assert (counted.requests, counted.prompt_tokens, counted.completion_tokens) == (3, 2000, 1000)
    assert counted.unreported == 1 and counted.cost == pytest.approx(0.2 * 2 + 0.6 * 1)
    assert counted.line() == (
        "test: 3 requests, 0 retried, 0 failed, 2000 prompt + 1000 completion tokens, "
        "1 replies without usage, cost 1.0000"
    )
    assert Usage("free").line().endswith("cost: no prices given")


def test_the_meter_resets_in_place_for_long_lived_clients() -> None:
    usage = METER.usage("meter-test")
    usage.count({"usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    assert any(line.startswith("meter-test: 1 requests") for line in METER.lines())
    METER.reset()
    assert not any(line.startswith("meter-test") for line in METER.lines())
    usage.count({})
    assert METER.usage("meter-test") is usage and usage.requests == 1


@pytest.mark.parametrize("text", ["0.1", "1,2,3", "a,b", "-1,2", "nan,1"])
def test_bad_prices_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="PROMPT,COMPLETION"):
        Prices.parse(text)


KEY = "sk-test-SECRET-4242"
PASSWORD = "pw-SECRET-1717"


ECHO = f"denied: key {KEY}, password {PASSWORD}".encode()  # a careless server quoting secrets back


@pytest.mark.parametrize("case", ["401", "429", "500", "not-json", "slow", "refused"])
def test_no_secret_in_any_error_or_log(
    stub: tuple[Stub, str], case: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore log every request at INFO and DEBUG
    state, url = stub
    host = url.split("//")[1]
    if case == "refused":
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            host = f"127.0.0.1:{probe.getsockname()[1]}/v1"
    elif case == "slow":
        state.reply = lambda body: time.sleep(0.5) or OK
    else:
        _status(state, 200 if case == "not-json" else int(case), ECHO)
    secret_url = f"http://user:{PASSWORD}@{host}/chat/completions"
    client = EndpointClient(secret_url, api_key=KEY, retries=1, timeout_s=0.2, sleep=lambda s: None)
    with pytest.raises(EndpointError) as caught:
        client.post({})
    shown = f"{caught.value} {caught.value.url} {caught.value!r} {client.usage.line()} {caplog.text}"
    assert "HTTP Request" in caplog.text or case in ("slow", "refused")  # the log was captured
    assert KEY not in shown and PASSWORD not in shown and "user" not in shown
    assert f"http://{host.split('/')[0]}/v1/chat/completions" in str(caught.value)


def test_public_url_drops_userinfo_query_and_fragment() -> None:
    assert public_url("https://u:p@host:8000/v1?api-key=k#x") == "https://host:8000/v1"
    assert public_url("http://[::1]:8000/v1") == "http://[::1]:8000/v1"
    assert public_url("http://host/v1/") == "http://host/v1/"


@pytest.mark.parametrize(
    ("header", "expected"),
    [(None, 1.0), ("3", 3.0), ("-2", 0.0), ("900", 60.0), ("Wed, 21 Oct", 1.0), ("nan", 1.0), ("inf", 1.0)],
)
def test_retry_after_header(header: str | None, expected: float) -> None:
    assert retry_after(header, 1.0, 60.0) == expected
