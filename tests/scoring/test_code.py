"""The code scorer: program extraction, the test harness, and end-to-end runs in the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from sftscope.errors import SftscopeError
from sftscope.scoring import sandbox
from sftscope.scoring.code import UNSANDBOXED_NOTE, extract_program
from sftscope.scoring.code_harness import run_tests, same_output
from sftscope.scoring.registry import score_batch
from sftscope.scoring.result import ScoreItem, ScoreResult


def scored_in_sandbox(items: list[ScoreItem], **kwargs: Any) -> list[ScoreResult]:
    """The code scorer's results. Where no sandbox can be had, it checks that every row with a program
    was refused and skips the rest of the test, as test_sandbox_escapes does; .ci/run installs
    bubblewrap, so CI runs them."""
    results = score_batch("code", items, **kwargs)
    if (missing := sandbox.sandbox_unavailable()) is not None:
        ran = [r for r in results if r.outcome != "unparsable"]
        assert ran and all(
            r.outcome == "error" and "refusing to run model-written code" in (r.error or "") for r in ran
        )
        pytest.skip(f"no sandbox here: {missing}; the rows were refused")
    return results


ADD_TESTS = [
    {"input": "1 2\n", "output": "3\n", "testtype": "stdin"},
    {"input": "5 7\n", "output": "12", "testtype": "stdin"},
]


def fenced(code: str, lang: str = "python") -> str:
    return f"Reasoning done.\n```{lang}\n{code}\n```\nThat is all."


def test_extracts_the_last_python_block() -> None:
    text = "```python\nfirst()\n```\n```text\nnot code\n```\n```python\nsecond()\n```"
    assert extract_program(text) == "second()\n"
    assert extract_program("```\nplain()\n```") == "plain()\n"
    assert extract_program("```py\nshort()\n```\n```\nuntagged()\n```") == "short()\n"
    assert extract_program("no code at all") is None


def test_output_comparison() -> None:
    assert same_output("3 \n4\n\n", "3\n4")
    assert same_output("2.50", "2.5")
    assert not same_output("3\n4", "3 4")
    assert not same_output("abc", "abd")


def test_harness_stdin_and_functional_tests_in_process() -> None:
    adder = "import sys\na, b = map(int, sys.stdin.buffer.read().split())\nprint(a + b)"
    assert run_tests(adder, ADD_TESTS, None)["passed"] == 2
    wrong = run_tests("print(0)", ADD_TESTS, None)
    assert (wrong["passed"], wrong["failure"]) == (0, "test 1: wrong output")
    functional = [{"input": "[3, 1, 2]\n1", "output": "[2, 3]", "testtype": "functional"}]
    method = (
        "class Solution:\n"
        "    def drop(self, xs: List[int], k: int) -> List[int]:\n        return sorted(xs)[k:]"
    )
    assert run_tests(method, functional, "drop")["passed"] == 1
    function = "def drop(xs, k):\n    return tuple(sorted(xs)[k:])"  # a tuple equals the JSON list
    assert run_tests(function, functional, "drop")["passed"] == 1
    assert "SyntaxError" in run_tests("def (", ADD_TESTS, None)["failure"]


def test_end_to_end(tmp_path: Path) -> None:
    escaped = tmp_path / "escaped.txt"
    meta = {"tests": ADD_TESTS}
    programs = {
        "solves": fenced("a, b = map(int, input().split())\nprint(a + b)"),
        "wrong": fenced("print(3)"),
        "sleeps": fenced("import time\ntime.sleep(600)"),
        "forks": fenced("import os\nwhile True:\n    os.fork()"),
        "network": fenced("import urllib.request\nurllib.request.urlopen('http://127.0.0.1:9/')"),
        "writes": fenced(f"open({str(escaped)!r}, 'w').write('x')\nprint(3)\nprint(12)"),
        "no code": "I would add the numbers.",
        "peeks": fenced("import json\nprint(json.load(open('tests.json'))['tests'][0]['output'])"),
    }
    items = [ScoreItem(text, None, meta) for text in programs.values()]
    items.append(ScoreItem(programs["solves"], None, {"tests": json.dumps(ADD_TESTS)}))
    scored = scored_in_sandbox(items, timeout_s=2.0, workers=2)
    results = dict(zip([*programs, "json tests"], scored, strict=True))
    outcomes = {name: result.outcome for name, result in results.items()}
    assert outcomes == {
        "solves": "correct",
        "wrong": "wrong",
        "sleeps": "wrong",
        "forks": "wrong",
        "network": "wrong",
        "writes": "wrong",
        "no code": "unparsable",
        "peeks": "wrong",
        "json tests": "correct",
    }
    assert results["sleeps"].extracted == "time limit exceeded (2 s)"
    assert "os.fork is not allowed" in (results["forks"].extracted or "")
    assert not escaped.exists()


# Competitive-programming I/O idioms, each given a tiny "add two ints" solution. Two tests, so a
# harness that kept the first input on fd 0 (or read none at all) fails the second.
READING_IDIOMS = {
    "open-0-read": "a, b = map(int, open(0).read().split())\nprint(a + b)",
    "open-0-lines": "for line in open(0):\n    a, b = map(int, line.split())\n    print(a + b)",
    "os-read-0": "import os\na, b = map(int, os.read(0, 1 << 16).split())\nprint(a + b)",
    "io-open-0": "import io\na, b = map(int, io.open(0).read().split())\nprint(a + b)",
    "stdin-fileno": "import os, sys\na, b = map(int, os.read(sys.stdin.fileno(), 99).split())\nprint(a + b)",
    "input-after-eof": (
        "a, b = map(int, input().split())\ntry:\n    input()\nexcept EOFError:\n    print(a + b)"
    ),
}
WRITING_IDIOMS = {
    "os-write-1": "import os\na, b = map(int, input().split())\nos.write(1, f'{a + b}\\n'.encode())",
    "buffer-write": (
        "import sys\na, b = map(int, input().split())\nsys.stdout.buffer.write(b'%d\\n' % (a + b))"
    ),
    "stdout-close": "import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.stdout.close()",
    "os-close-1": "import os\na, b = map(int, input().split())\nos.write(1, b'%d' % (a + b))\nos.close(1)",
    "exit-buffered": "import sys\na, b = map(int, input().split())\nprint(a + b)\nsys.exit(0)",
    # A copy of fd 1 left open: a standalone run's output ends when the process exits, copies and all.
    "dup-1-kept": (
        "import os\na, b = map(int, input().split())\nout = os.dup(1)\nos.dup2(out, 7)\n"
        "os.write(out, b'%d\\n' % (a + b))"
    ),
    # Common for deep recursion; a standalone run waits for the thread before the program exits.
    "unjoined-thread": (
        "import sys, threading\n"
        "def main():\n    a, b = map(int, sys.stdin.readline().split())\n    print(a + b)\n"
        "threading.stack_size(1 << 26)\nthreading.Thread(target=main).start()"
    ),
}


def sandboxed_verdict(program: str) -> tuple[str, str | None]:
    [result] = scored_in_sandbox([ScoreItem(fenced(program), None, {"tests": ADD_TESTS})], workers=1)
    return result.outcome, result.extracted


@pytest.mark.parametrize("program", READING_IDIOMS.values(), ids=READING_IDIOMS.keys())
def test_reading_idioms_see_each_tests_input(program: str) -> None:
    assert sandboxed_verdict(program) == ("correct", "passed 2/2")


@pytest.mark.parametrize("program", WRITING_IDIOMS.values(), ids=WRITING_IDIOMS.keys())
def test_writing_idioms_are_compared(program: str) -> None:
    assert sandboxed_verdict(program) == ("correct", "passed 2/2")


# ~17 MiB, more than Limits.file_mb: neither the program's input nor its output is a file it writes.
LINES = "12345678\n" * 2_000_000
BEYOND_FILE_SIZE_LIMIT = {
    "output": ('print("12345678\\n" * int(input()), end="")', "2000000", LINES),
    "input": ("import sys\nprint(sum(1 for _ in sys.stdin))", LINES, "2000000"),
}


@pytest.mark.parametrize(
    ("program", "test_input", "output"), BEYOND_FILE_SIZE_LIMIT.values(), ids=BEYOND_FILE_SIZE_LIMIT.keys()
)
def test_io_beyond_the_file_size_limit(program: str, test_input: str, output: str) -> None:
    tests = [{"input": test_input, "output": output, "testtype": "stdin"}]
    item = ScoreItem(fenced(program), None, {"tests": tests})
    # About I/O, not speed: a generous limit, so that a busy machine does not turn it into a TLE.
    [result] = scored_in_sandbox([item], timeout_s=30.0, workers=1)
    assert (result.outcome, result.extracted) == ("correct", "passed 1/1")


UNREAD_INPUT = {
    "fd-0": "a, b = map(int, input().split())\nprint(a + b)",
    "a copy of fd 0 kept open": (
        "import os\nkept = os.dup(0)\na, b = map(int, os.read(kept, 4).split())\nprint(a + b)"
    ),
}


@pytest.mark.parametrize("program", UNREAD_INPUT.values(), ids=UNREAD_INPUT.keys())
def test_input_left_unread(program: str) -> None:
    """More input than a pipe holds, one line read: the test ends when the program does."""
    tests = [{"input": "1 2\n" + "0\n" * 200_000, "output": "3", "testtype": "stdin"}]
    item = ScoreItem(fenced(program), None, {"tests": tests})
    [result] = scored_in_sandbox([item], timeout_s=5.0, workers=1)
    assert (result.outcome, result.extracted) == ("correct", "passed 1/1")


def test_bad_rows_and_params() -> None:
    results = score_batch("code", [ScoreItem(fenced("print(1)"), None, {})], workers=1)
    assert results[0].outcome == "error" and "meta['tests']" in (results[0].error or "")
    functional = {"tests": [{"input": "1", "output": "1", "testtype": "functional"}]}
    results = score_batch("code", [ScoreItem(fenced("print(1)"), None, functional)], workers=1)
    assert "fn_name" in (results[0].error or "")
    with pytest.raises(SftscopeError, match="memory_mb"):
        score_batch("code", [], params={"memory_mb": "lots"})


def test_without_the_sandbox_rows_are_refused_or_marked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "sandbox_unavailable", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.delenv(sandbox.ALLOW_UNSANDBOXED_ENV, raising=False)
    tests = [{"input": "", "output": "1", "testtype": "stdin"}]
    items = [ScoreItem(fenced("print(1)"), None, {"tests": tests})]
    [refused] = score_batch("code", items, workers=1)
    assert refused.outcome == "error" and "refusing to run model-written code" in (refused.error or "")
    [allowed] = score_batch("code", items, workers=1, params={"allow_unsandboxed": True})
    assert (allowed.outcome, allowed.error) == ("correct", UNSANDBOXED_NOTE)
    assert UNSANDBOXED_NOTE.startswith("unsandboxed:")  # the prefix the report looks for
    with pytest.raises(SftscopeError, match="param allow_unsandboxed: must be true or false"):
        score_batch("code", [], params={"allow_unsandboxed": "yes"})
