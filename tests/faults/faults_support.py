"""Helpers shared by the fault-injection tests (no tests here): killing a process at a seeded random
point of its progress, a small tmpfs standing in for a full disk, and the store's key check."""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

SEED = 22  # the kill points of every test derive from it: a failure replays exactly


def rng(name: str) -> random.Random:
    """A generator of kill points for one test, the same on every run."""
    return random.Random(f"{SEED}:{name}")


def kill_when(
    process: subprocess.Popen, ready: Callable[[], bool], delay: float, timeout: float = 120
) -> None:
    """SIGKILL `process` `delay` seconds after `ready()` first holds (the delay moves the kill off the
    observed event, into whatever the process does next). Fails if the process ends first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert process.poll() is None, "the process ended before the point it was to be killed at"
        assert time.monotonic() < deadline, "the process never reached the point it was to be killed at"
        time.sleep(0.005)
    time.sleep(delay)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, "the process ended before the kill landed"


@contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A `size` tmpfs mounted at `path` for the block; the test is skipped where none can be mounted."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(
            f"cannot mount a tmpfs for a full disk (needs root or CAP_SYS_ADMIN): {mounted.stderr.strip()}"
        )
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def one_error_line(output: str) -> str:
    """The CLI's single error line, checking there is exactly one and no traceback."""
    assert "Traceback" not in output, output
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    return lines[0]
