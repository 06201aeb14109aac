"""Run an untrusted Python program with limits, in a sandbox, and clean up after it.

The sandbox is bubblewrap with the policy of `sandbox_policy`: an unprivileged user without
capabilities, in fresh pid, network, mount (and, unless root, user) namespaces, with no_new_privs,
a seccomp filter, read-only system directories and a size-limited tmpfs as its only writable place.
Inside it `sandbox_guard` lowers the resource limits and installs an audit hook (defence in depth).
Outside it: its own session, a wall-clock limit, and ``os.killpg(SIGKILL)`` of the whole process
group afterwards, even on success; bwrap's pid namespace takes every process the program started
with it. docs/architecture.md ("Threat model") says what this defends against and what not.

Where bubblewrap is missing or cannot make its namespaces, model-written code is refused
(`SandboxUnavailableError`) unless the caller opts in (``allow_unsandboxed``). The program then
runs *unsandboxed*: a fresh temporary directory as cwd, HOME and TMPDIR, ``python -I``, the limits
and the audit hook, which ctypes and C extensions bypass.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

from sftscope.errors import SftscopeError
from sftscope.scoring.sandbox_policy import WORKDIR, bwrap_command, seccomp_filter

GUARD = Path(__file__).with_name("sandbox_guard.py")
ALLOW_UNSANDBOXED_ENV = "SFTSCOPE_ALLOW_UNSANDBOXED"
"""Set to 1 to let model-written code run without the sandbox where it cannot be had."""
# Uids the sandbox drops to when run as root: unassigned ones, fresh per run, so that the process
# limit of one run counts only its own processes.
_UIDS = range(0x7F000000, 0x7FFF0000)
_HOST_PATH = "/usr/local/bin:/usr/bin:/bin"
_POLL_S = 0.01


class SandboxUnavailableError(SftscopeError):
    """Model-written code would have to run without the sandbox, and the caller did not allow it."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            f"refusing to run model-written code without a sandbox: {reason}. Install bubblewrap "
            "(apt-get install bubblewrap), or accept the risk with the code scorer's param "
            f"allow_unsandboxed: true or {ALLOW_UNSANDBOXED_ENV}=1"
        )


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
    """Processes and threads the program may have (RLIMIT_NPROC); unsandboxed, beyond the user's
    current count, and not for root, whom the kernel exempts."""
    disk_mb: int = 64
    """What the program may write into its directory, a tmpfs (memory, so it counts against the
    host's), beyond the files it is given."""
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
    isolation: Literal["bubblewrap", "unsandboxed"]
    """The sandbox, or (only when the caller allowed it) the limits and the audit hook alone."""


def _sandbox_uid() -> int | None:
    """The uid to drop to: a fresh one as root; None otherwise (a user namespace maps the caller)."""
    return _UIDS[secrets.randbelow(len(_UIDS))] if os.getuid() == 0 else None


@cache
def sandbox_unavailable() -> str | None:
    """Why the sandbox cannot be had here (checked once, by starting Python in it), or None."""
    if shutil.which("bwrap") is None:
        return "bubblewrap (bwrap) is not installed"
    try:
        seccomp = seccomp_filter()
    except (ImportError, OSError, RuntimeError) as exc:
        return f"the seccomp filter cannot be built ({type(exc).__name__}: {exc})"
    with _memfd("seccomp", seccomp) as seccomp_fd:
        command = bwrap_command(files={}, seccomp_fd=seccomp_fd, disk_mb=1, uid=_sandbox_uid())
        try:
            probe = subprocess.run(
                [*command, sys.executable, "-I", "-c", "pass"],
                capture_output=True,
                pass_fds=[seccomp_fd],
                env={"PATH": _HOST_PATH},
                timeout=30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return f"bubblewrap did not start ({exc})"
    if probe.returncode != 0:
        message = probe.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        return f"bubblewrap cannot create the sandbox here ({message[0]})"
    return None


def unsandboxed_allowed(allow: bool = False) -> bool:
    """Whether the caller, or the environment (`ALLOW_UNSANDBOXED_ENV`), allows running unsandboxed."""
    return allow or os.environ.get(ALLOW_UNSANDBOXED_ENV, "").strip().lower() in ("1", "true", "yes")


@contextlib.contextmanager
def _memfd(name: str, content: bytes) -> Iterator[int]:
    """A descriptor reading `content` from its start; it is not inherited unless passed."""
    fd = os.memfd_create(name)
    try:
        view = memoryview(content)
        while view:
            view = view[os.write(fd, view) :]
        os.lseek(fd, 0, os.SEEK_SET)
        yield fd
    finally:
        os.close(fd)


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


def _rlimits(limits: Limits, *, sandboxed: bool) -> dict[str, int]:
    cpu = math.ceil(limits.wall_s) + 1  # CPU time never exceeds wall time; this only stops a runaway child
    rlimits = {
        "RLIMIT_AS": limits.memory_mb << 20,
        "RLIMIT_CPU": cpu,
        "RLIMIT_FSIZE": limits.file_mb << 20,
        "RLIMIT_CORE": 0,
    }
    if sandboxed:
        # A fresh uid (as root) or a fresh user namespace: the count starts from the program's own.
        rlimits["RLIMIT_NPROC"] = limits.processes
    elif os.getuid() != 0:  # root is exempt from RLIMIT_NPROC, and counting its processes is moot
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
    allow_unsandboxed: bool = False,
) -> SandboxRun:
    """Put `files` into a fresh directory and run ``files[main]`` there under `limits`.

    Raises `SandboxUnavailableError` when the sandbox cannot be had and neither `allow_unsandboxed`
    nor the environment (`ALLOW_UNSANDBOXED_ENV`) allows running without it.
    """
    reason = sandbox_unavailable()
    if reason is not None and not unsandboxed_allowed(allow_unsandboxed):
        raise SandboxUnavailableError(reason)
    io_dir = Path(tempfile.mkdtemp(prefix="sftscope-sandbox-io-"))
    try:
        (io_dir / "stdin").write_text(stdin)
        with contextlib.ExitStack() as stack:
            if reason is None:
                command, pass_fds, cwd = _sandboxed(files, main, args, limits, stack)
            else:
                command, pass_fds, cwd = _unsandboxed(files, main, args, limits, stack)
            run = _run(command, pass_fds, cwd, io_dir, limits)
        return SandboxRun(**run, isolation="bubblewrap" if reason is None else "unsandboxed")
    finally:
        shutil.rmtree(io_dir, ignore_errors=True)


def _guard_command(root: str, main: str, args: Sequence[str], rlimits: dict[str, int]) -> list[str]:
    config = {"root": root, "main": f"{root}/{main}", "args": list(args), "limits": rlimits}
    return [sys.executable, "-I", "-c", GUARD.read_text(), json.dumps(config)]


def _sandboxed(
    files: Mapping[str, str], main: str, args: Sequence[str], limits: Limits, stack: contextlib.ExitStack
) -> tuple[list[str], list[int], str]:
    seccomp_fd = stack.enter_context(_memfd("seccomp", seccomp_filter()))
    contents = {name: text.encode() for name, text in files.items()}
    fds = {name: stack.enter_context(_memfd(name, content)) for name, content in contents.items()}
    # The files come on top of the program's own space: a large test file must not eat into it.
    disk_mb = limits.disk_mb + (sum(map(len, contents.values())) >> 20) + 1
    command = bwrap_command(files=fds, seccomp_fd=seccomp_fd, disk_mb=disk_mb, uid=_sandbox_uid())
    command += _guard_command(WORKDIR, main, args, _rlimits(limits, sandboxed=True))
    return command, [seccomp_fd, *fds.values()], "/"


def _unsandboxed(
    files: Mapping[str, str], main: str, args: Sequence[str], limits: Limits, stack: contextlib.ExitStack
) -> tuple[list[str], list[int], str]:
    root = Path(tempfile.mkdtemp(prefix="sftscope-sandbox-")).resolve()
    stack.callback(shutil.rmtree, root, ignore_errors=True)
    for name, text in files.items():
        (root / name).write_text(text)
    return _guard_command(str(root), main, args, _rlimits(limits, sandboxed=False)), [], str(root)


def _run(
    command: list[str], pass_fds: list[int], cwd: str, io_dir: Path, limits: Limits
) -> dict[str, int | str | bool | None]:
    """Run `command` in its own session under the wall-clock limit; the outcome's fields."""
    env = {"PATH": _HOST_PATH, "HOME": cwd, "TMPDIR": cwd, "LANG": "C.UTF-8"}
    with (
        open(io_dir / "stdin", "rb") as fin,
        open(io_dir / "stdout", "wb") as fout,
        open(io_dir / "stderr", "wb") as ferr,
    ):
        process = subprocess.Popen(
            command,
            cwd=cwd,
            stdin=fin,
            stdout=fout,
            stderr=ferr,
            env=env,
            pass_fds=pass_fds,
            start_new_session=True,
        )
        finished = _wait_unreaped(process.pid, limits.wall_s)
        # The whole group, on success too: a forked child must not outlive the run.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        returncode = process.wait()
        _wait_group_gone(process.pid)
    cap = limits.output_kb << 10
    return {
        "returncode": returncode if finished else None,
        "stdout": (io_dir / "stdout").read_bytes()[:cap].decode("utf-8", "replace"),
        "stderr": (io_dir / "stderr").read_bytes()[:cap].decode("utf-8", "replace"),
        "timed_out": not finished,
    }
