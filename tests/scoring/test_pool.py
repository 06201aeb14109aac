"""The process pool: per-item timeouts, errors and dead workers become rows, never a crashed batch."""

from __future__ import annotations

import os
import pickle
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection

import pytest

from sftscope.scoring import pool
from sftscope.scoring.pool import _WORKER_CODE, run_checks, run_threaded
from sftscope.scoring.registry import SCORERS, Scorer, score_batch
from sftscope.scoring.result import ScoreItem, ScoreResult, graded


# Module-level so that pool workers can import them by name.
def misbehaving_check(item: ScoreItem, params: dict) -> ScoreResult:
    if item.prediction == "hang":
        time.sleep(3600)
    if item.prediction == "raise":
        raise ZeroDivisionError("boom in one item")
    if item.prediction == "die":
        os._exit(3)
    return graded(item.prediction == item.gold, item.prediction)


def double(x: int) -> int:
    return 2 * x


def triple(x: int) -> int:
    return 3 * x


def nap(x: float) -> float:
    time.sleep(x)
    return x


def worker_pids() -> list[int]:
    return [w.process.pid for w in pool._SHARED.workers]


@pytest.fixture
def misbehaving(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(SCORERS, "misbehaving", Scorer("misbehaving", misbehaving_check))
    return "misbehaving"


def test_hang_error_and_death_become_rows_while_the_rest_score(misbehaving: str) -> None:
    predictions = ["1", "hang", "raise", "2", "die", "x", "3"]
    items = [ScoreItem(p, p if p != "x" else "y") for p in predictions]
    results = score_batch(misbehaving, items, timeout_s=1.0, workers=2)
    assert [r.outcome for r in results] == [
        "correct",
        "timeout",
        "error",
        "correct",
        "error",
        "wrong",
        "correct",
    ]
    assert "ZeroDivisionError: boom in one item" in (results[2].error or "")
    assert "exit code 3" in (results[4].error or "")
    assert "1 s" in (results[1].error or "")
    assert all(r.score == 0.0 for r in results if r.outcome in ("timeout", "error"))


def test_inline_mode_catches_errors_without_processes() -> None:
    outcomes = run_checks(double, [1, "a", None], timeout_s=1.0, workers=0)
    assert [o.status for o in outcomes] == ["ok", "ok", "error"]
    assert outcomes[0].value == 2 and outcomes[1].value == "aa"
    assert (outcomes[2].error or "").startswith("TypeError")


def test_pool_keeps_order_and_handles_more_items_than_workers() -> None:
    outcomes = run_checks(double, list(range(9)), timeout_s=10.0, workers=2)
    assert [o.value for o in outcomes] == [2 * i for i in range(9)]
    assert run_checks(double, [], timeout_s=1.0, workers=2) == []


def test_workers_outlive_a_batch_and_switch_checks() -> None:
    # Starting a worker costs seconds (its imports), more than a commit's batch takes to score.
    assert [o.value for o in run_checks(double, [1, 2, 3], timeout_s=10.0, workers=2)] == [2, 4, 6]
    first = worker_pids()
    assert len(first) == 2
    assert [o.value for o in run_checks(triple, [1, 2, 3], timeout_s=10.0, workers=2)] == [3, 6, 9]
    assert [o.value for o in run_checks(double, [5], timeout_s=10.0, workers=2)] == [10]
    assert worker_pids() == first  # the same processes, each told the new check
    # A timeout kills and replaces only that worker; the next batch runs on the pool as it is then.
    outcomes = run_checks(nap, [5.0, 0.0, 0.0], timeout_s=0.5, workers=2)
    assert [o.status for o in outcomes] == ["timeout", "ok", "ok"]
    after = worker_pids()
    assert len(after) == 2 and len(set(after) & set(first)) == 1
    assert [o.value for o in run_checks(triple, [2, 4], timeout_s=10.0, workers=2)] == [6, 12]
    # A worker that died between batches (OOM killer) is replaced, not blamed for an item.
    pool._SHARED.workers[0].process.kill()
    pool._SHARED.workers[0].process.wait()
    assert [o.status for o in run_checks(double, [1, 2, 3], timeout_s=10.0, workers=2)] == ["ok"] * 3
    assert [o.value for o in run_checks(double, [7], timeout_s=10.0, workers=1)] == [14]
    assert len(worker_pids()) == 1  # a call that wants fewer workers stops the rest


def test_an_abandoned_batch_stops_its_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    run_checks(double, [1], timeout_s=10.0, workers=2)
    started = [w.process for w in pool._SHARED.workers]

    def interrupted(*args: object, **kwargs: object) -> list:
        raise KeyboardInterrupt  # Ctrl-C while items are in flight

    with monkeypatch.context() as patch:
        patch.setattr(pool, "wait", interrupted)
        with pytest.raises(KeyboardInterrupt):
            run_checks(nap, [0.2, 0.2], timeout_s=10.0, workers=2)
    assert pool._SHARED.workers == [] and all(p.poll() is not None for p in started)
    # Their late answers cannot reach the next batch: it runs on new workers.
    assert [o.value for o in run_checks(double, [1, 2], timeout_s=10.0, workers=2)] == [2, 4]


def test_threaded_runner_keeps_order_and_errors() -> None:
    outcomes = run_threaded(double, [3, None, 4], workers=2)
    assert [o.status for o in outcomes] == ["ok", "error", "ok"]
    assert [outcomes[0].value, outcomes[2].value] == [6, 8]


def _orphaned_worker(give_item: bool) -> subprocess.CompletedProcess[bytes]:
    """Run a worker whose parent closes the socket before reading its 'ready' (or its result)."""
    ours, theirs = socket.socketpair()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    process = subprocess.Popen(
        [sys.executable, "-c", _WORKER_CODE, str(theirs.fileno())],
        pass_fds=[theirs.fileno()],
        env=env,
        stderr=subprocess.PIPE,
    )
    theirs.close()
    conn = Connection(ours.detach())
    conn.send(("check", pickle.dumps(double)))
    if give_item:
        assert conn.recv() == "ready"
        conn.send((0, 21))
    conn.close()
    _, stderr = process.communicate(timeout=120)
    return subprocess.CompletedProcess(process.args, process.returncode, stderr=stderr)


@pytest.mark.parametrize("give_item", [False, True])
def test_worker_shuts_down_quietly_when_the_parent_stops_listening(give_item: bool) -> None:
    result = _orphaned_worker(give_item)
    assert (result.returncode, result.stderr.decode()) == (0, "")
