"""Runs a candidate program against its tests; executed *inside* the sandbox (stdlib only).

``python code_harness.py solution.py tests.json TOKEN`` runs the tests in order and stops at the
first failure (a problem is solved only when every test passes, as in LiveCodeBench). Two kinds:

- ``stdin``: the whole program runs with the test input as stdin and its stdout captured, both
  pipes on the real descriptors 0 and 1 (so ``open(0)`` and ``os.write(1, ...)`` work, and neither
  counts against the sandbox's file-size limit); the output must
  equal the expected output line by line after stripping, numbers compared by value ("2.50" == "2.5");
- ``functional``: the program is executed, then ``Solution().<fn_name>(*args)`` (or a top-level
  ``<fn_name>``) is called with one JSON value per input line; the result must equal the JSON output.

The verdict is one line ``TOKEN {json}`` on the real stdout; the program's own output is captured.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any

# What LiveCodeBench puts in front of every candidate: solutions may use these names unimported.
PRELUDE = (
    "from typing import *\nfrom collections import *\nfrom itertools import *\nfrom functools import *\n"
    "from heapq import *\nfrom bisect import *\nfrom math import *\nimport collections, heapq, itertools, "
    "functools, bisect, math, string, re, sys\n"
)


def _tokens_equal(got: str, expected: str) -> bool:
    if got == expected:
        return True
    try:
        return Decimal(got) == Decimal(expected)
    except InvalidOperation:
        return False


def same_output(got: str, expected: str) -> bool:
    """Line by line, whitespace-insensitive at line ends, numbers by value."""
    got_lines = [line.strip() for line in got.strip().splitlines()]
    expected_lines = [line.strip() for line in expected.strip().splitlines()]
    if len(got_lines) != len(expected_lines):
        return False
    for got_line, expected_line in zip(got_lines, expected_lines, strict=True):
        got_tokens, expected_tokens = got_line.split(), expected_line.split()
        if len(got_tokens) != len(expected_tokens):
            return False
        if not all(_tokens_equal(g, e) for g, e in zip(got_tokens, expected_tokens, strict=True)):
            return False
    return True


def _pipe_end(fd: int) -> tuple[int, int, int]:
    """What tells a pipe end apart: its pipe (device, inode), and its access mode; both ends of a
    pipe share the inode, so the mode is what keeps the harness's own end out of `_copies_of`."""
    status = os.fstat(fd)
    return status.st_dev, status.st_ino, fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE


def _copies_of(ends: set[tuple[int, int, int]]) -> list[tuple[int, tuple[int, int, int]]]:
    """The open descriptors that are one of these pipe ends (the program's ``os.dup`` copies)."""
    # /proc on Linux (the sandbox's /dev holds four devices only), /dev/fd on macOS.
    listing = next((path for path in ("/proc/self/fd", "/dev/fd") if os.path.isdir(path)), None)
    copies = []
    for name in os.listdir(listing) if listing else []:
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            if (end := _pipe_end(int(name))) in ends:
                copies.append((int(name), end))
    return copies


@contextlib.contextmanager
def _descriptor_on(fd: int, source: int) -> Iterator[None]:
    """Point descriptor `fd` at the pipe end `source` (which it takes over and closes) for the
    duration, then back at what it was (even if the program closed it, as ``open(0)`` does when
    garbage-collected). Restoring drops the harness's reference to the pipe end; copies the program
    made are `_release_copies`' job."""
    saved = os.dup(fd)
    try:
        os.dup2(source, fd)
        os.close(source)
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)


def _release_copies(ends: set[tuple[int, int, int]]) -> None:
    """Once the program is done, replace the copies of its pipe ends it made and left open
    (``os.dup(1)``) by a spent pipe end, so they do not hold the pipe open, and the thread at the
    other end sees EOF or EPIPE (as a standalone program's exit closes them); their numbers are
    not reused, since a file object still holding one closes it later. One pass for both ends:
    the collection and the descriptor scan are the per-test cost."""
    gc.collect()  # file objects the program left in reference cycles flush and close theirs first
    if copies := _copies_of(ends):
        spent_read, spent_write = os.pipe()
        for copy, end in copies:
            os.dup2(spent_read if end[2] == os.O_RDONLY else spent_write, copy)
        os.close(spent_read)
        os.close(spent_write)


def _feed(write_end: int, data: bytes) -> None:
    """Write the input into the pipe, then close it so the program sees EOF after the input."""
    view = memoryview(data)
    try:
        while view:
            view = view[os.write(write_end, view) :]
    except BrokenPipeError:  # the program closed fd 0, or finished, without reading all its input
        pass
    finally:
        os.close(write_end)


def _drain(read_end: int, chunks: list[bytes]) -> None:
    """Collect the program's output as it comes, so a full pipe never blocks the program."""
    try:
        while chunk := os.read(read_end, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(read_end)


def _join_started_threads(existing: set[threading.Thread]) -> None:
    """Wait for the non-daemon threads the program started (and those they started), as a
    standalone interpreter does before it exits: ``threading.Thread(target=main).start()`` returns
    at once. A thread that never ends is stopped by the sandbox's time limit."""
    while started := [t for t in threading.enumerate() if t not in existing and not t.daemon]:
        for thread in started:
            thread.join()


def _exec_main(code: Any) -> None:
    """Execute the program as ``__main__`` with fresh sys.stdin / sys.stdout over descriptors 0 and 1."""
    saved = sys.stdin, sys.stdout
    # A program raising it (for deep recursion in a thread) must not size the next test's I/O threads.
    stack_size = threading.stack_size()
    existing = set(threading.enumerate())
    # closefd=False: the descriptors belong to `_descriptor_on`, which restores them. Leaving the
    # block closes sys.stdout, which flushes what print() and sys.stdout.write() buffered.
    with (
        open(0, encoding="utf-8", closefd=False) as stdin,
        open(1, "w", encoding="utf-8", closefd=False) as stdout,
    ):
        sys.stdin, sys.stdout = stdin, stdout
        try:
            exec(code, {"__name__": "__main__"})
        except SystemExit:  # exit() / sys.exit() end a competitive-programming solution normally
            pass
        finally:
            # Before the flush and the restore: the program's threads may still read and print.
            _join_started_threads(existing)
            threading.stack_size(stack_size)
            sys.stdin, sys.stdout = saved


def run_stdin(code: Any, test_input: str) -> str:
    """Execute the program once with `test_input` on stdin; return what it wrote to stdout.

    Input and output are pipes on descriptors 0 and 1, as in a standalone run under a judge, so
    that input(), sys.stdin.buffer, open(0), os.read(0, n), print and os.write(1, ...) all see
    this test's input and all count as output. Buffered and direct writes interleave as they
    would there: print() output reaches the pipe at the next flush, os.write() output at once.
    Threads feed and drain the pipes, so input and output of any size fit.
    """
    stdin_read, stdin_write = os.pipe()
    stdout_read, stdout_write = os.pipe()
    chunks: list[bytes] = []
    # Daemons, and started before the program runs, so `_join_started_threads` leaves them alone.
    feeder = threading.Thread(target=_feed, args=(stdin_write, test_input.encode()), daemon=True)
    drainer = threading.Thread(target=_drain, args=(stdout_read, chunks), daemon=True)
    feeder.start()
    drainer.start()
    program_ends = {_pipe_end(stdin_read), _pipe_end(stdout_write)}
    try:
        with _descriptor_on(0, stdin_read), _descriptor_on(1, stdout_write):
            _exec_main(code)
    finally:
        _release_copies(program_ends)
        feeder.join()
        drainer.join()
    return b"".join(chunks).decode("utf-8", "replace")


def _normalise(value: Any) -> Any:
    """Tuples compare equal to lists: JSON has only lists."""
    if isinstance(value, (list, tuple)):
        return [_normalise(v) for v in value]
    return value


def run_functional(code: Any, fn_name: str, test_input: str) -> Any:
    """Execute the program, then call the named method or function on the JSON arguments."""
    namespace: dict[str, Any] = {"__name__": "__candidate__"}
    sys.stdout = io.StringIO()  # prints inside the solution are not the answer
    try:
        exec(code, namespace)
        target = getattr(namespace["Solution"](), fn_name) if "Solution" in namespace else namespace[fn_name]
        args = [json.loads(line) for line in test_input.strip().splitlines()]
        return _normalise(target(*args))
    finally:
        sys.stdout = sys.__stdout__


def run_tests(source: str, tests: list[dict[str, Any]], fn_name: str | None) -> dict[str, Any]:
    """Run the tests in order; stop at the first failure."""
    try:
        code = compile(PRELUDE + source, "solution.py", "exec")
    except SyntaxError as exc:
        return {"passed": 0, "total": len(tests), "failure": f"SyntaxError: {exc.msg} (line {exc.lineno})"}
    for number, test in enumerate(tests, start=1):
        failed = {"passed": number - 1, "total": len(tests)}
        try:
            if test.get("testtype", "stdin") == "functional":
                if not fn_name:
                    raise ValueError("a functional test needs fn_name")
                ok = run_functional(code, fn_name, test["input"]) == _normalise(json.loads(test["output"]))
            else:
                ok = same_output(run_stdin(code, test["input"]), test["output"])
        except Exception as exc:
            return {**failed, "failure": f"test {number}: {type(exc).__name__}: {exc}"}
        if not ok:
            return {**failed, "failure": f"test {number}: wrong output"}
    return {"passed": len(tests), "total": len(tests), "failure": None}


def main() -> None:
    solution_path, tests_path, token = sys.argv[1:4]
    with open(solution_path) as handle:
        source = handle.read()
    with open(tests_path) as handle:
        spec = json.load(handle)
    # The expected outputs must not be readable by the program under test.
    os.remove(tests_path)
    verdict = run_tests(source, spec["tests"], spec.get("fn_name"))
    sys.__stdout__.write(f"\n{token} {json.dumps(verdict)}\n")
    sys.__stdout__.flush()


if __name__ == "__main__":
    main()
