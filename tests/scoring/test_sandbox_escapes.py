"""Programs that try to break out of the sandbox, one per known escape; each must fail inside it.

They go past the audit hook on purpose (ctypes calls libc directly), so only the sandbox stops them.
Where the sandbox cannot be had, each test asserts instead that the program is refused.
"""

from __future__ import annotations

import errno
import secrets
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sftscope.scoring import sandbox
from sftscope.scoring.sandbox import Limits, SandboxRun, SandboxUnavailableError, run_python

LIBC = "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
MS_REMOUNT, MS_BIND, MS_RELATIME, MNT_DETACH = 32, 4096, 1 << 21, 2


def attempt(program: str, wall_s: float = 10.0) -> SandboxRun | None:
    """The run of `program` in the sandbox; None (after checking the refusal) where there is none."""
    if sandbox.sandbox_unavailable() is not None:
        with pytest.raises(SandboxUnavailableError, match="refusing to run model-written code"):
            run_python({"main.py": program}, "main.py")
        return None
    result = run_python({"main.py": LIBC + program}, "main.py", limits=Limits(wall_s=wall_s))
    assert result.isolation == "bubblewrap"
    return result


def printed(result: SandboxRun) -> dict[str, list[int]]:
    """Lines ``name value errno`` the program printed, as {name: [value, errno]}."""
    fields = (line.split() for line in result.stdout.splitlines())
    return {f[0]: [int(v) for v in f[1:]] for f in fields if len(f) == 3 and f[0].isidentifier()}


def test_remounting_root_writable_fails(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    program = f"""
flags = {MS_REMOUNT | MS_BIND | MS_RELATIME}
print("remount_root", libc.mount(None, b"/", None, flags, None), ctypes.get_errno())
print("remount_usr", libc.mount(None, b"/usr", None, flags, None), ctypes.get_errno())
print("tmpfs", libc.mount(b"none", b"/usr", b"tmpfs", 0, None), ctypes.get_errno())
print("write_usr", libc.open(b"/usr/escaped", os.O_CREAT | os.O_WRONLY, 0o644), ctypes.get_errno())
print("write_host", libc.open({str(target).encode()!r}, os.O_CREAT | os.O_WRONLY, 0o644), ctypes.get_errno())
"""
    if (result := attempt(program)) is None:
        return
    calls = printed(result)
    assert set(calls) == {"remount_root", "remount_usr", "tmpfs", "write_usr", "write_host"}, result.stderr
    assert calls["remount_root"] == calls["remount_usr"] == calls["tmpfs"] == [-1, errno.EPERM]
    assert calls["write_usr"][0] == calls["write_host"][0] == -1
    assert not target.exists() and not Path("/usr/escaped").exists()


def test_unmounting_fails() -> None:
    program = f"""
print("dev", libc.umount2(b"/dev", {MNT_DETACH}), ctypes.get_errno())
print("proc", libc.umount2(b"/proc", 0), ctypes.get_errno())
print("null", len(open("/dev/null", "rb").read()), 0)
"""
    if (result := attempt(program)) is None:
        return
    calls = printed(result)
    assert calls["dev"] == calls["proc"] == [-1, errno.EPERM], result.stderr
    assert calls["null"] == [0, 0]  # /dev is still mounted


def test_no_secret_of_the_host_reaches_the_program(monkeypatch: pytest.MonkeyPatch) -> None:
    secret = "sftscope-secret-" + secrets.token_hex(8)
    monkeypatch.setenv("SFTSCOPE_TEST_SECRET", secret)
    program = """
seen = [str(dict(os.environ))]
for pid in os.listdir("/proc"):
    try:
        seen.append(open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace"))
    except OSError:
        pass
print("\\n".join(seen))
print("processes", len([p for p in os.listdir("/proc") if p.isdigit()]), 0)
"""
    if (result := attempt(program)) is None:
        return
    assert "processes" in printed(result), result.stderr
    assert secret not in result.stdout
    # The host has dozens of processes (this one included); the sandbox shows bwrap's and its own.
    assert printed(result)["processes"][0] <= 3


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    yield server
    server.close()


def test_connecting_to_a_local_listener_fails(listener: socket.socket) -> None:
    port = listener.getsockname()[1]
    program = f"""
import socket, struct
address = struct.pack("=HH4s8x", socket.AF_INET, socket.htons({port}), socket.inet_aton("127.0.0.1"))
fd = libc.socket(socket.AF_INET, socket.SOCK_STREAM, 0)
print("socket", fd, ctypes.get_errno())
print("connect", libc.connect(fd, address, len(address)), ctypes.get_errno())
print("raw", libc.socket(socket.AF_PACKET, socket.SOCK_RAW, 0), ctypes.get_errno())
print("unix", int(libc.socket(socket.AF_UNIX, socket.SOCK_STREAM, 0) >= 0), 0)
"""
    if (result := attempt(program)) is None:
        return
    calls = printed(result)
    assert calls["socket"] == [-1, errno.EAFNOSUPPORT], result.stderr
    assert calls["raw"] == [-1, errno.EAFNOSUPPORT]
    assert calls["connect"][0] == -1
    assert calls["unix"] == [1, 0]  # local pipes between the program's own processes still work
    with pytest.raises(TimeoutError):
        listener.accept()


def test_a_fork_bomb_is_contained() -> None:
    name = "sfb" + secrets.token_hex(5)
    program = f"""
import time
started = 0
for _ in range(2000):
    pid = libc.fork()
    if pid == 0:
        libc.prctl(15, {name!r}.encode(), 0, 0, 0)
        time.sleep(600)
        os._exit(0)
    if pid < 0:
        break
    started += 1
print("forks", started, ctypes.get_errno())
"""
    before = time.monotonic()
    if (result := attempt(program, wall_s=20.0)) is None:
        return
    calls = printed(result)
    assert calls["forks"][1] == errno.EAGAIN, result.stderr  # stopped by the process limit
    assert calls["forks"][0] < Limits().processes
    assert time.monotonic() - before < 20  # it ended by itself, not at the wall clock
    deadline = time.monotonic() + 5.0  # SIGKILL lands asynchronously
    while _living(name) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _living(name) == []


def _living(name: str) -> list[str]:
    """Processes called `name` that are not zombies (dead, waiting to be reaped)."""
    found = []
    for comm in Path("/proc").glob("[0-9]*/comm"):
        try:
            if comm.read_text().strip() == name and "\nState:\tZ" not in (comm.parent / "status").read_text():
                found.append(comm.parent.name)
        except OSError:  # exited while we looked
            continue
    return found


def test_writing_outside_the_directory_fails(tmp_path: Path) -> None:
    target = tmp_path / "escaped.txt"
    program = f"""
print("inside", int(libc.open(b"inside.txt", os.O_CREAT | os.O_WRONLY, 0o644) >= 0), 0)
for name, path in (("host", {str(target).encode()!r}), ("etc", b"/etc/escaped"), ("root", b"/escaped"),
                   ("python", {sandbox.sys.prefix.encode()!r} + b"/escaped")):
    print(name, libc.open(path, os.O_CREAT | os.O_WRONLY, 0o644), ctypes.get_errno())
"""
    if (result := attempt(program)) is None:
        return
    calls = printed(result)
    assert calls["inside"] == [1, 0], result.stderr
    assert [calls[name][0] for name in ("host", "etc", "root", "python")] == [-1] * 4
    assert not target.exists()
    assert not Path(sandbox.sys.prefix, "escaped").exists()


def test_the_program_has_no_privileges() -> None:
    program = """
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines())
for field in ("CapEff", "CapPrm", "CapBnd", "NoNewPrivs", "Seccomp"):
    print(field, int(status[field].strip(), 16), 0)
print("uid", os.getuid(), 0)
"""
    if (result := attempt(program)) is None:
        return
    calls = printed(result)
    assert calls["CapEff"] == calls["CapPrm"] == calls["CapBnd"] == [0, 0], result.stderr
    assert calls["NoNewPrivs"] == [1, 0] and calls["Seccomp"] == [2, 0]  # 2: a filter is loaded
    assert calls["uid"][0] != 0
