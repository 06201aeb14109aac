"""The first code a sandboxed program runs: confine, limit, then run the program.

Run as ``python -I sandbox_guard.py CONFIG_JSON`` by `sftscope.scoring.sandbox` (stdlib only: it
runs in a bare interpreter). In order:

1. inside fresh user/mount/pid/net namespaces (when the parent could create them), make every
   mount read-only except the sandbox directory, and replace /dev by a tmpfs holding only null,
   zero, random and urandom (a process mapped to root could otherwise write to disk devices);
2. lower the resource limits: address space, CPU seconds, file size, processes, no core files;
3. install an audit hook, which no later Python code can remove, refusing network use, process
   creation and signals, and writes outside the sandbox directory. It is the only barrier when
   namespaces are unavailable, and it is best effort: C extensions and ctypes bypass it;
4. run the program as ``__main__``.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import runpy
import sys
from typing import Any

MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND = 1, 2, 4, 8, 32, 4096
# statvfs flag -> mount flag: a read-only remount must repeat the flags a user namespace cannot clear.
_KEEP_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: 1024, 2048: 2048, 4096: 1 << 21}
_DEVICES = ("null", "zero", "random", "urandom")

_REFUSED_EVENTS = frozenset(
    {
        "socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg", "socket.getaddrinfo",
        "socket.gethostbyname", "socket.gethostbyaddr", "os.fork", "os.forkpty", "os.exec", "os.spawn",
        "os.posix_spawn", "os.system", "subprocess.Popen", "pty.spawn", "os.kill", "os.killpg",
    }
)  # fmt: skip
_PATH_EVENTS = frozenset(
    {"os.remove", "os.rename", "os.mkdir", "os.rmdir", "os.chmod", "os.chown", "os.link", "os.symlink",
     "os.truncate", "os.utime", "shutil.rmtree", "shutil.move", "shutil.copyfile"}
)  # fmt: skip
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def _mount(libc: Any, source: str | None, target: str, fstype: str | None, flags: int) -> bool:
    source_bytes = None if source is None else source.encode()
    fstype_bytes = None if fstype is None else fstype.encode()
    return libc.mount(source_bytes, target.encode(), fstype_bytes, flags, None) == 0


def confine_mounts(root: str) -> int:
    """Make everything but `root` read-only and shrink /dev; returns how many mounts stayed writable."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_void_p]
    # A bind mount of root onto itself is a mount of its own, left writable by the loop below.
    _mount(libc, root, root, None, MS_BIND)
    dev = os.open("/dev", os.O_RDONLY | os.O_DIRECTORY)  # keeps the real nodes reachable after the tmpfs
    if _mount(libc, "tmpfs", "/dev", "tmpfs", MS_NOSUID | MS_NOEXEC):
        for name in _DEVICES:
            open(f"/dev/{name}", "w").close()
            _mount(libc, f"/proc/self/fd/{dev}/{name}", f"/dev/{name}", None, MS_BIND)
    os.close(dev)
    writable = 0
    with open("/proc/self/mountinfo") as mountinfo:
        # Field 5 is the mount point, with spaces and the like escaped as octal (\040).
        targets = [line.split()[4].encode().decode("unicode_escape") for line in mountinfo]
    for target in targets:
        if target == root:
            continue
        try:
            present = os.statvfs(target).f_flag
        except OSError:  # shadowed by a later mount (the old /dev/shm): unreachable anyway
            continue
        keep = sum(flag for bit, flag in _KEEP_FLAGS.items() if present & bit)
        if not _mount(libc, None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | keep):
            writable += 1
    return writable


def set_limits(limits: dict[str, int]) -> None:
    """Lower the per-process limits; children inherit them."""
    for name, value in limits.items():
        resource.setrlimit(getattr(resource, name), (value, value))


def install_audit_hook(root: str) -> None:
    """Refuse network, process creation, signals and writes outside `root`, for the rest of the process."""

    def inside(path: Any) -> bool:
        resolved = os.path.realpath(os.fsdecode(path))
        return resolved == root or resolved.startswith(root + os.sep) or resolved == os.devnull

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event in _REFUSED_EVENTS:
            raise PermissionError(f"sandbox: {event} is not allowed")
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and isinstance(path, (str, bytes)) and not inside(path):
                raise PermissionError(f"sandbox: writing {os.fsdecode(path)!r} is not allowed")
        elif event in _PATH_EVENTS:
            for path in args[:2]:
                if isinstance(path, (str, bytes)) and not inside(path):
                    raise PermissionError(f"sandbox: {event} on {os.fsdecode(path)!r} is not allowed")

    sys.addaudithook(hook)


def main() -> None:
    config = json.loads(sys.argv[1])
    root = config["root"]
    if config["confine_mounts"]:
        writable = confine_mounts(root)
        if writable:
            print(f"sandbox: {writable} mounts could not be made read-only", file=sys.stderr)
    set_limits(config["limits"])
    sys.dont_write_bytecode = True  # a .pyc next to a read-only module would be a write outside root
    install_audit_hook(root)
    os.chdir(root)
    sys.argv = [config["main"], *config["args"]]
    sys.path.insert(0, root)
    runpy.run_path(config["main"], run_name="__main__")


if __name__ == "__main__":
    main()
