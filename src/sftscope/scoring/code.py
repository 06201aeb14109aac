"""The `code` scorer: the last Python block of the response, run against its tests in the sandbox.

``meta["tests"]`` holds LiveCodeBench-style tests, a list (or its JSON text) of
``{"input": str, "output": str, "testtype": "stdin" | "functional"}``; functional tests also need
``meta["fn_name"]``. A problem is solved (score 1.0) only when every test passes.

A program that runs out of time is a *wrong* answer ("time limit exceeded"), not a scorer
`timeout`: it is the model's failure, and it must stay in the accuracy denominator.
``timeout_s`` from `score_batch` is the wall-clock limit of the whole run (all tests of one item).

Programs run in the sandbox (`sftscope.scoring.sandbox`). Where it cannot be had, the scorer refuses
(every item becomes an `error` row naming the reason) unless ``allow_unsandboxed: true`` (or the
environment variable ``SFTSCOPE_ALLOW_UNSANDBOXED=1``) accepts the risk; every item scored that way
carries `UNSANDBOXED_NOTE` in its ``error`` field, whatever its verdict, for the report to warn about.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sftscope.scoring.result import ScoreItem, ScoreResult, ScorerParamError, unparsable
from sftscope.scoring.sandbox import Limits, SandboxRun, run_python

UNSANDBOXED_PREFIX = "unsandboxed:"
UNSANDBOXED_NOTE = f"{UNSANDBOXED_PREFIX} the program ran without the sandbox (allow_unsandboxed)"
"""The ``error`` of an item whose program ran unsandboxed; the report counts rows starting with
``unsandboxed:``."""

HARNESS = Path(__file__).with_name("code_harness.py")
_FENCE = re.compile(r"```[ \t]*(?P<lang>[\w+-]*)[^\n]*\n(?P<body>.*?)```", re.DOTALL)


def extract_program(prediction: str) -> str | None:
    """The last ```python block; else the last untagged ``` block; None when there is neither."""
    blocks = [(m.group("lang").lower(), m.group("body")) for m in _FENCE.finditer(prediction)]
    for wanted in (("python", "python3", "py"), ("",)):
        chosen = [body for lang, body in blocks if lang in wanted and body.strip()]
        if chosen:
            return chosen[-1]
    return None


def tests_of(item: ScoreItem) -> list[dict[str, Any]]:
    """The item's tests, validated enough that a malformed row fails with a clear message."""
    tests = item.meta.get("tests")
    if isinstance(tests, str):
        tests = json.loads(tests)
    if not isinstance(tests, list) or not tests:
        raise ValueError("the code scorer needs meta['tests']: a non-empty list of {input, output, testtype}")
    for number, test in enumerate(tests, start=1):
        if not isinstance(test, dict) or not {"input", "output"} <= set(test):
            raise ValueError(f"code test {number} needs 'input' and 'output'")
        if test.get("testtype", "stdin") == "functional" and not item.meta.get("fn_name"):
            raise ValueError(f"code test {number} is functional but meta['fn_name'] is missing")
    return tests


def validate_params(params: Mapping[str, Any]) -> None:
    """`memory_mb`, when given, is a positive integer; `allow_unsandboxed` a boolean."""
    memory = params.get("memory_mb")
    if "memory_mb" in params and (isinstance(memory, bool) or not isinstance(memory, int) or memory <= 0):
        raise ScorerParamError("code", "memory_mb", f"must be a positive integer, got {memory!r}")
    allow = params.get("allow_unsandboxed", False)
    if not isinstance(allow, bool):
        raise ScorerParamError("code", "allow_unsandboxed", f"must be true or false, got {allow!r}")


def check_code(item: ScoreItem, params: Mapping[str, Any], *, timeout_s: float) -> ScoreResult:
    """Run the extracted program on the item's tests. Params: `memory_mb` (default 1024),
    `allow_unsandboxed` (default false)."""
    tests = tests_of(item)
    program = extract_program(item.prediction)
    if program is None:
        return unparsable()
    token = secrets.token_hex(8)  # the verdict line's marker, unguessable for the program
    spec = {"tests": tests, "fn_name": item.meta.get("fn_name")}
    run = run_python(
        {"harness.py": HARNESS.read_text(), "solution.py": program, "tests.json": json.dumps(spec)},
        "harness.py",
        ["solution.py", "tests.json", token],
        limits=Limits(wall_s=timeout_s, memory_mb=int(params.get("memory_mb", 1024))),
        allow_unsandboxed=bool(params.get("allow_unsandboxed", False)),
    )
    result = _verdict(run, token, timeout_s)
    if run.isolation == "unsandboxed":
        return ScoreResult(result.outcome, result.score, result.extracted, UNSANDBOXED_NOTE)
    return result


def _verdict(run: SandboxRun, token: str, timeout_s: float) -> ScoreResult:
    if run.timed_out:
        return ScoreResult("wrong", 0.0, f"time limit exceeded ({timeout_s:g} s)")
    verdict_line = next((line for line in reversed(run.stdout.splitlines()) if line.startswith(token)), None)
    if verdict_line is None:
        # Killed by a limit (memory, CPU, file size) or exited from inside the harness (os._exit).
        tail = run.stderr.strip().splitlines()[-1:] or [f"exit code {run.returncode}"]
        return ScoreResult("wrong", 0.0, f"no verdict: {tail[0][:200]}")
    verdict = json.loads(verdict_line[len(token) :])
    summary = f"passed {verdict['passed']}/{verdict['total']}"
    if verdict["failure"]:
        summary += f"; {verdict['failure'][:200]}"
    solved = verdict["passed"] == verdict["total"]
    return ScoreResult("correct" if solved else "wrong", 1.0 if solved else 0.0, summary)
