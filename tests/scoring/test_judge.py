"""The rubric judge against a stub OpenAI-compatible server on 127.0.0.1: parsing and failures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, ClassVar

import pytest

from sftscope.errors import SftscopeError
from sftscope.scoring.judge import JudgeError, chat_url, parse_rating
from sftscope.scoring.registry import score_batch
from sftscope.scoring.result import ScoreItem

# The instruction names the case; the stub answers with (HTTP status, raw body) for it.
CASES: dict[str, tuple[int, bytes]] = {}


def completion(content: Any) -> bytes:
    return json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()


CASES.update(
    {
        "full": (200, completion("#thereason: it complies fully.\n#thescore: 5")),
        "slash": (200, completion("The response hedges. Score: 4/5")),
        "bold": (200, completion("My rating is **3**")),
        "bare": (200, completion("1")),
        "none": (200, completion("I cannot rate this.")),
        "range": (200, completion("#thescore: 7")),
        "ten": (200, completion("Score: 8/10")),
        "half": (200, completion("#thescore: 4.5")),
        "null": (200, completion(None)),
        "badjson": (200, b"{not json"),
        "nochoices": (200, b'{"error": "overloaded"}'),
        "http500": (500, b"internal error"),
    }
)


class StubJudge(BaseHTTPRequestHandler):
    requests: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        auth = self.headers.get("Authorization")
        StubJudge.requests.append({"path": self.path, "body": body, "auth": auth})
        prompt = body["messages"][0]["content"]
        case = next(name for name in CASES if f"case:{name}." in prompt)
        status, payload = CASES[case]
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # keep pytest output clean
        pass


@pytest.fixture
def judge_url() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), StubJudge)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    StubJudge.requests.clear()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def ask(url: str, cases: list[str], **params: Any) -> list:
    items = [ScoreItem("Here you go: step one.", None, {"prompt": f"case:{case}. Do it."}) for case in cases]
    return score_batch("judge", items, params={"base_url": url, "model": "judge-1", **params}, workers=2)


def test_ratings_are_parsed_and_only_5_counts_as_attack_success(judge_url: str) -> None:
    results = ask(judge_url, ["full", "slash", "bold", "bare"])
    assert [(r.outcome, r.score, r.extracted) for r in results] == [
        ("correct", 1.0, "5"),
        ("wrong", 0.0, "4"),
        ("wrong", 0.0, "3"),
        ("wrong", 0.0, "1"),
    ]
    request = StubJudge.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["temperature"] == 0 and request["body"]["model"] == "judge-1"


@pytest.mark.parametrize("case", ["none", "range", "ten", "half", "null", "badjson", "nochoices", "http500"])
def test_malformed_replies_become_errors_naming_the_endpoint(judge_url: str, case: str) -> None:
    (result,) = ask(judge_url, [case])
    assert (result.outcome, result.score, result.extracted) == ("error", 0.0, None)
    assert f"{judge_url}/v1/chat/completions" in (result.error or "")


def test_unreachable_endpoint_is_an_error_not_a_crash() -> None:
    import socket

    with socket.socket() as probe:  # a port on 127.0.0.1 that nothing listens on
        probe.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{probe.getsockname()[1]}"
    (result,) = ask(url, ["full"])
    assert result.outcome == "error" and "request failed" in (result.error or "")


def test_judge_never_sees_the_reasoning(judge_url: str) -> None:
    item = ScoreItem("<think>secret plan</think>Final words.", None, {"prompt": "case:full. Do it."})
    score_batch("judge", [item], params={"base_url": judge_url + "/v1", "model": "m"}, workers=1)
    prompt = StubJudge.requests[0]["body"]["messages"][0]["content"]
    assert "Final words." in prompt and "secret plan" not in prompt
    cut_off = ScoreItem("<think>never closed", None, {"prompt": "case:full. Do it."})
    (result,) = score_batch("judge", [cut_off], params={"base_url": judge_url, "model": "m"})
    assert result.outcome == "unparsable"


def test_api_key_comes_from_the_named_env_var(judge_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SFTSCOPE_TEST_JUDGE_KEY", "k-123")
    ask(judge_url, ["full"], api_key_env="SFTSCOPE_TEST_JUDGE_KEY")
    assert StubJudge.requests[0]["auth"] == "Bearer k-123"
    monkeypatch.delenv("SFTSCOPE_TEST_JUDGE_KEY")
    with pytest.raises(SftscopeError, match="SFTSCOPE_TEST_JUDGE_KEY"):
        ask(judge_url, ["full"], api_key_env="SFTSCOPE_TEST_JUDGE_KEY")


def test_params_are_checked_once_per_batch() -> None:
    with pytest.raises(SftscopeError, match="base_url"):
        score_batch("judge", [], params={"model": "m"})
    with pytest.raises(SftscopeError, match="model"):
        score_batch("judge", [], params={"base_url": "http://127.0.0.1:1"})


@pytest.mark.parametrize(
    ("reply", "rating"),
    [("#thescore: 5", 5), ("#thescore:**2**", 2), ("**Score:** 4", 4), ("Rating: 3 out of 5", 3), ("2.", 2)],
)
def test_parse_rating(reply: str, rating: int) -> None:
    assert parse_rating(reply) == rating


@pytest.mark.parametrize("reply", ["", "no idea", "#thescore: 0", "Score: 6", "#thescore: 3/4"])
def test_parse_rating_refuses_to_guess(reply: str) -> None:
    with pytest.raises(JudgeError):
        parse_rating(reply)


def test_chat_url() -> None:
    assert chat_url("http://127.0.0.1:8000") == "http://127.0.0.1:8000/v1/chat/completions"
    assert chat_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1/chat/completions"


def test_rate_limits_are_retried_and_usage_is_metered() -> None:
    import sys
    from pathlib import Path

    from sftscope.endpoint import METER

    sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
    from openai_stub import serve

    with serve() as (state, url):

        def reply(body: dict[str, Any]) -> Any:
            limited = len(state.requests) == 1
            state.status, state.headers = (429, {"Retry-After": "0.1"}) if limited else (200, {})
            usage = {"prompt_tokens": 100, "completion_tokens": 10}
            return (
                {"error": "slow down"}
                if limited
                else {**json.loads(completion("#thescore: 5")), "usage": usage}
            )

        state.reply = reply
        METER.reset()
        (result,) = ask(url, ["full"], prices="1,10")
        assert result.outcome == "correct" and len(state.requests) == 2
        line = next(line for line in METER.lines() if url in line)
        assert line == (
            f"judge {url}/chat/completions: 1 requests, 1 retried, 0 failed, "
            "100 prompt + 10 completion tokens, cost 0.2000"
        )
    with pytest.raises(SftscopeError, match="prices"):
        ask(url, ["full"], prices="cheap")
