"""A served model that misbehaves: garbage, rate limits (429), lone surrogates and hangs, from the
local stub server, through `sftscope eval --backend openai` end to end. A fault the client can ride
out costs retries, not rows; one it cannot is one clear line and exit code 2. Either way the store
keeps every row it committed, and the same command later computes exactly the rest."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from faults_support import one_error_line
from openai_stub import Stub
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.evaluate.store import KEY, ResultsStore

PROMPTS = 6
GOOD = {"choices": [{"message": {"content": "\\boxed{1+2}"}, "finish_reason": "stop"}]}


def sweep(url: str, store: Path, *extra: str) -> tuple[int, str]:
    # One request at a time, so the stub's n-th reply goes to the n-th request.
    args = [
        "eval",
        "micro-weak",
        "--task",
        "countdown",
        "--set",
        f"source.n={PROMPTS}",
        "--store",
        str(store),
    ]
    args += ["--backend", "openai", "--endpoint", url, "--batch-size", "1", "--quiet", *extra]
    result = CliRunner().invoke(app, args)
    return result.exit_code, result.output


def stored(store: Path) -> list[dict[str, Any]]:
    with ResultsStore(store, read_only=True) as results:
        rows = results.samples().to_pylist()
    keys = [tuple(r[k] for k in KEY) for r in rows]
    assert len(keys) == len(set(keys))  # nothing stored twice
    return rows


def test_garbage_stops_the_sweep_clearly_and_keeps_what_came_before(
    stub: tuple[Stub, str], tmp_path: Path
) -> None:
    state, url = stub
    state.reply = lambda body: GOOD if len(state.requests) <= 3 else b"<html>502 Bad Gateway</html>"
    store = tmp_path / "s.duckdb"
    code, output = sweep(url, store)
    assert code == 2 and "malformed response" in one_error_line(output), output
    assert len(stored(store)) == 3
    state.reply = GOOD
    code, output = sweep(url, store)
    assert code == 0 and "3 rows computed" in output and "3 reused" in output, output
    assert len(stored(store)) == PROMPTS


def test_rate_limits_cost_retries_not_rows_and_a_lasting_one_is_one_line(
    stub: tuple[Stub, str], tmp_path: Path
) -> None:
    state, url = stub
    state.headers = {"Retry-After": "0"}

    def every_other(body: dict[str, Any]) -> Any:
        limited = len(state.requests) % 2 == 1  # each prompt's first try
        state.status = 429 if limited else 200
        return {"error": {"message": "rate limited"}} if limited else GOOD

    state.reply = every_other
    store = tmp_path / "s.duckdb"
    code, output = sweep(url, store, "--set", "source.seed=1")
    assert code == 0 and f"{PROMPTS} rows computed (0 error/timeout)" in " ".join(output.split()), output
    assert len(state.requests) == 2 * PROMPTS
    state.status, state.reply = 429, {"error": {"message": "rate limited"}}
    code, output = sweep(url, tmp_path / "other.duckdb")
    assert code == 2 and "429" in one_error_line(output), output
    assert len(stored(store)) == PROMPTS


def test_lone_surrogates_in_replies_are_stored_repaired(stub: tuple[Stub, str], tmp_path: Path) -> None:
    state, url = stub
    broken = b'{"choices": [{"message": {"content": "\\\\boxed{1+2} \\ud800"}, "finish_reason": "stop"}]}'
    state.reply = lambda body: broken if len(state.requests) % 2 else GOOD
    store = tmp_path / "s.duckdb"
    code, output = sweep(url, store)
    assert code == 0 and f"{PROMPTS} rows computed" in output, output
    rows = stored(store)
    repaired = [r for r in rows if r["error"] and "lone surrogate(s) in output" in r["error"]]
    assert len(rows) == PROMPTS and len(repaired) == PROMPTS // 2
    assert all(r["output"].endswith("\ufffd") for r in repaired)


def test_a_hang_costs_a_retry_and_a_lasting_one_is_one_line(stub: tuple[Stub, str], tmp_path: Path) -> None:
    state, url = stub

    def hang_once(body: dict[str, Any]) -> Any:
        if len(state.requests) == 2:
            time.sleep(2.0)  # past the client's 1 s limit: it gives up on this try
        return GOOD

    state.reply = hang_once
    store = tmp_path / "s.duckdb"
    code, output = sweep(url, store, "--endpoint-timeout", "1")
    assert code == 0 and f"{PROMPTS} rows computed" in output, output
    assert len(stored(store)) == PROMPTS

    def hang(body: dict[str, Any]) -> Any:
        time.sleep(1.5)
        return GOOD

    state.reply = hang
    other = tmp_path / "other.duckdb"
    code, output = sweep(url, other, "--endpoint-timeout", "1", "--set", "source.n=1")
    assert code == 2 and url in one_error_line(output), output
    assert stored(other) == []
