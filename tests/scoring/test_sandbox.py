"""The sandbox stops sleeping, forking, network-opening and file-writing programs, in both modes.

"bubblewrap" is the sandbox; "unsandboxed" is what remains, when the caller allows it, where
bubblewrap cannot run. tests/scoring/test_sandbox_escapes.py tries to break out on purpose.
"""

from __future__ import annotations

import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sftscope.scoring import sandbox
from sftscope.scoring.sandbox import Limits, run_python

MODES = ["bubblewrap", "unsandboxed"]


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "bubblewrap" and sandbox.sandbox_unavailable() is not None:
        pytest.skip(f"no sandbox here: {sandbox.sandbox_unavailable()}")
    if request.param == "unsandboxed":
        monkeypatch.setattr(sandbox, "sandbox_unavailable", lambda: "pretended missing")
        monkeypatch.setenv(sandbox.ALLOW_UNSANDBOXED_ENV, "1")
    return request.param


def run(program: str, wall_s: float = 5.0) -> sandbox.SandboxRun:
    return run_python({"main.py": program}, "main.py", limits=Limits(wall_s=wall_s))


def living(name: str) -> list[int]:
    """Processes called `name` that are not zombies (a zombie is dead, waiting to be reaped)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            status = (comm.parent / "status").read_text()
            if comm.read_text().strip() == name and "\nState:\tZ" not in status:
                found.append(int(comm.parent.name))
        except OSError:  # exited while we looked
            continue
    return found


def survivors(name: str) -> list[int]:
    """The living processes called `name`, once SIGKILL has had a moment to land."""
    deadline = time.monotonic() + 5.0
    while (found := living(name)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


# Forks through libc, past the audit hook, so that only the process-group kill and the pid
# namespace can stop the children. Each child renames itself (prctl PR_SET_NAME) so the test can
# look for survivors in /proc, then sleeps; with SETSID it also leaves the process group.
FORKER = """
import ctypes, time
libc = ctypes.CDLL(None)
for _ in range(5):
    if libc.fork() == 0:
        if {setsid}:
            libc.setsid()
        libc.prctl(15, {name!r}.encode(), 0, 0, 0)
        time.sleep(600)
print("forked", flush=True)
{tail}
"""


def test_runs_a_program_with_stdin(mode: str) -> None:
    result = run_python({"main.py": "print(input()[::-1])"}, "main.py", stdin="abc\n")
    assert (result.returncode, result.stdout, result.isolation) == (0, "cba\n", mode)


def test_sleeping_program_is_killed_at_the_wall_clock(mode: str) -> None:
    started = time.monotonic()
    result = run("import time\ntime.sleep(600)", wall_s=1.0)
    assert result.timed_out and result.returncode is None
    assert time.monotonic() - started < 60  # returned, rather than waiting for the sleep


@pytest.mark.parametrize("tail", ["", "time.sleep(600)"], ids=["parent-exits", "parent-sleeps"])
def test_forked_children_do_not_outlive_the_run(mode: str, tail: str) -> None:
    name = "sfs" + secrets.token_hex(5)
    result = run(FORKER.format(setsid=False, name=name, tail=tail), wall_s=2.0)
    assert "forked" in result.stdout
    assert survivors(name) == []


def test_children_that_leave_the_group_die_with_the_pid_namespace(mode: str) -> None:
    if mode != "bubblewrap":
        pytest.skip("without a pid namespace a setsid() child escapes killpg (documented)")
    name = "sfs" + secrets.token_hex(5)
    result = run(FORKER.format(setsid=True, name=name, tail=""), wall_s=2.0)
    assert "forked" in result.stdout
    assert survivors(name) == []


def test_os_fork_is_refused(mode: str) -> None:
    result = run("import os\nos.fork()")
    assert result.returncode != 0 and "os.fork is not allowed" in result.stderr


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    yield server
    server.close()


def test_network_is_unreachable(mode: str, listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    result = run(f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=2).send(b'x')")
    assert result.returncode != 0
    with pytest.raises(TimeoutError):
        listener.accept()


def test_network_namespace_stops_raw_connects(mode: str, listener: socket.socket) -> None:
    if mode != "bubblewrap":
        pytest.skip("ctypes bypasses the audit hook; only the sandbox stops this")
    port = listener.getsockname()[1]
    program = f"""
import ctypes, socket, struct
libc = ctypes.CDLL(None, use_errno=True)
fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
address = struct.pack("=HH4s8x", socket.AF_INET, socket.htons({port}), socket.inet_aton("127.0.0.1"))
print("connect", libc.connect(fd, address, len(address)), ctypes.get_errno())
"""
    result = run(program)
    assert "connect -1" in result.stdout
    with pytest.raises(TimeoutError):
        listener.accept()


def test_writes_outside_the_directory_are_refused(mode: str, tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    program = f"open('in.txt', 'w').write('ok')\nprint(open('in.txt').read())\nopen({str(target)!r}, 'w')"
    result = run(program)
    assert result.stdout.strip() == "ok"  # the sandbox directory itself is writable
    assert result.returncode != 0
    assert not target.exists()


def test_raw_writes_hit_a_read_only_filesystem(mode: str, tmp_path: Path) -> None:
    if mode != "bubblewrap":
        pytest.skip("ctypes bypasses the audit hook; only the sandbox's file system stops this")
    target = tmp_path / "escaped.txt"
    path = str(target).encode()
    program = f"import ctypes, os\nprint('fd', ctypes.CDLL(None).open({path!r}, os.O_CREAT | os.O_WRONLY))"
    result = run(program)
    assert "fd -1" in result.stdout
    assert not target.exists()


def test_memory_limit(mode: str) -> None:
    result = run_python({"main.py": "x = bytearray(3 << 30)"}, "main.py", limits=Limits(memory_mb=512))
    assert result.returncode != 0 and "MemoryError" in result.stderr


@pytest.fixture
def no_sandbox(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "sandbox_unavailable", lambda: "bubblewrap (bwrap) is not installed")
    monkeypatch.delenv(sandbox.ALLOW_UNSANDBOXED_ENV, raising=False)


def test_without_the_sandbox_code_is_refused_unless_allowed(
    no_sandbox: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(sandbox.SandboxUnavailableError, match=r"bwrap.*not installed.*allow_unsandboxed"):
        run("print('ran')")
    allowed = run_python({"main.py": "print('ran')"}, "main.py", allow_unsandboxed=True)
    assert (allowed.stdout, allowed.isolation) == ("ran\n", "unsandboxed")
    monkeypatch.setenv(sandbox.ALLOW_UNSANDBOXED_ENV, "1")
    assert run("print('ran')").isolation == "unsandboxed"
