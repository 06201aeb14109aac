"""Run an untrusted Python program in a subprocess with limits, without network, and clean up after it.

Layers, each best effort (this is hygiene for model-written code, not a boundary against an
attacker; run adversarial code in a container or VM):

- a fresh temporary directory as cwd, HOME and TMPDIR, deleted afterwards; ``python -I`` ignores
  the caller's environment and user site;
- when ``unshare`` can create them (checked once): new user, mount, pid and network namespaces
  (``unshare -rmnpf``). The network namespace has only a down loopback; `sandbox_guard` makes all
  mounts but the temporary directory read-only; in the pid namespace, every process the program
  started dies with it, even one that left the process group;
- `sandbox_guard` lowers RLIMIT_AS (memory), RLIMIT_CPU, RLIMIT_FSIZE (stdout and stderr are
  files, so output is capped too) and RLIMIT_NPROC (which the kernel does not apply to root), and
  installs an audit hook that refuses sockets, process creation and writes outside the directory;
- its own session (``start_new_session``), a wall-clock limit, and ``os.killpg(SIGKILL)`` of the
  whole process group afterwards, even on success.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

GUARD = Path(__file__).with_name("sandbox_guard.py")
_NAMESPACES = (
    "--user",
    "--map-root-user",
    "--mount",
    "--pid",
    "--fork",
    "--kill-child",
    "--mount-proc",
    "--net",
)
_POLL_S = 0.01


@dataclass(frozen=True)
class Limits:
    """What one sandboxed run may use."""

    wall_s: float = 10.0
    """Wall-clock seconds before the process group is killed."""
    memory_mb: int = 1024
    """Address space per process (RLIMIT_AS)."""
    file_mb: int = 16
    """Largest file the program may write, stdout and stderr included (RLIMIT_FSIZE)."""
    processes: int = 16
    """Processes the program may add beyond the user's current count (RLIMIT_NPROC; not for root)."""
    output_kb: int = 256
    """How much of stdout and of stderr is read back."""


@dataclass(frozen=True)
class SandboxRun:
    """How a sandboxed run ended."""

    returncode: int | None
    """The exit status; None when the wall-clock limit killed it."""
    stdout: str
    stderr: str
    timed_out: bool
    isolation: Literal["namespaces", "audit-hook"]
    """Which layers were available: namespaces (plus the hook), or only the audit hook."""


@cache
def namespaces_available() -> bool:
    """Whether ``unshare`` may create the user, mount, pid and network namespaces here."""
    if shutil.which("unshare") is None:
        return False
    try:
        probe = subprocess.run(["unshare", *_NAMESPACES, "true"], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def _own_process_count() -> int:
    uid = str(os.getuid())
    count = 0
    for entry in Path("/proc").iterdir():
        try:
            status = (entry / "status").read_text() if entry.name.isdigit() else ""
        except OSError:  # exited while we looked
            continue
        count += any(line.split()[1:2] == [uid] for line in status.splitlines() if line.startswith("Uid:"))
    return count


def _rlimits(limits: Limits) -> dict[str, int]:
    cpu = math.ceil(limits.wall_s) + 1  # CPU time never exceeds wall time; this only stops a runaway child
    rlimits = {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_CPU": cpu,
        "RLIMIT_FSIZE": limits.file_mb << 20,
        "RLIMIT_CORE": 0,
    }
    if os.getuid() != 0:  # root is exempt from RLIMIT_NPROC, and counting its processes is moot
        rlimits["RLIMIT_NPROC"] = _own_process_count() + limits.processes
    return rlimits


def _wait_unreaped(pid: int, timeout_s: float) -> bool:
    """Wait for `pid` to exit *without reaping it*: while it is a zombie its pid, and so its process
    group id, cannot be reused, which makes the killpg afterwards safe."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            return True
        time.sleep(_POLL_S)
    return False


def _group_running(pgid: int) -> bool:
    """Whether a member of the group is still running; zombies are dead, only not yet reaped by init."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After the ")" closing the command name: state, ppid, pgrp, ...
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue
        if group == str(pgid) and state != "Z":
            return True
    return False


def _wait_group_gone(pgid: int, timeout_s: float = 2.0) -> None:
    """SIGKILL is asynchronous: wait briefly until no member of the group runs, so a caller
    looping over many programs does not pile up dying processes."""
    deadline = time.monotonic() + timeout_s
    while _group_running(pgid) and time.monotonic() < deadline:
        time.sleep(_POLL_S)


def run_python(
    files: Mapping[str, str],
    main: str,
    args: Sequence[str] = (),
    *,
    stdin: str = "",
    limits: Limits = Limits(),
) -> SandboxRun:
    """Write `files` into a fresh directory and run ``files[main]`` there under `limits`."""
    isolated = namespaces_available()
    root = Path(tempfile.mkdtemp(prefix="sftscope-sandbox-")).resolve()
    io_dir = Path(tempfile.mkdtemp(prefix="sftscope-sandbox-io-"))
    try:
        for name, text in files.items():
            (root / name).write_text(text)
        (io_dir / "stdin").write_text(stdin)
        config = {
            "root": str(root),
            "main": str(root / main),
            "args": list(args),
            "confine_mounts": isolated,
            "limits": _rlimits(limits),
        }
        command = [sys.executable, "-I", str(GUARD), json.dumps(config)]
        if isolated:
            command = ["unshare", *_NAMESPACES, *command]
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(root),
            "TMPDIR": str(root),
            "LANG": "C.UTF-8",
        }
        with (
            open(io_dir / "stdin", "rb") as fin,
            open(io_dir / "stdout", "wb") as fout,
            open(io_dir / "stderr", "wb") as ferr,
        ):
            process = subprocess.Popen(
                command, cwd=root, stdin=fin, stdout=fout, stderr=ferr, env=env, start_new_session=True
            )
            finished = _wait_unreaped(process.pid, limits.wall_s)
            # The whole group, on success too: a forked child must not outlive the run.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            returncode = process.wait()
            _wait_group_gone(process.pid)
        cap = limits.output_kb << 10
        return SandboxRun(
            returncode=returncode if finished else None,
            stdout=(io_dir / "stdout").read_bytes()[:cap].decode("utf-8", "replace"),
            stderr=(io_dir / "stderr").read_bytes()[:cap].decode("utf-8", "replace"),
            timed_out=not finished,
            isolation="namespaces" if isolated else "audit-hook",
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(io_dir, ignore_errors=True)
