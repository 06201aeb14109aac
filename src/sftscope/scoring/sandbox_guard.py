"""The first code a sandboxed program runs: limit, then run the program.

Run as ``python -I -c SOURCE CONFIG_JSON`` by `sftscope.scoring.sandbox` (stdlib only: it runs in a
bare interpreter), inside the sandbox or, where the caller allowed it, without one. In order:

1. lower the resource limits: address space, CPU seconds, file size, processes, no core files;
2. install an audit hook, which no later Python code can remove, refusing network use, process
   creation and signals, and writes outside the program's directory. Inside the sandbox it is
   defence in depth; unsandboxed it is the only barrier, and a weak one: C extensions and ctypes
   bypass it;
3. run the program as ``__main__``.
"""

from __future__ import annotations

import json
import os
import resource
import runpy
import sys
from typing import Any

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
    set_limits(config["limits"])
    sys.dont_write_bytecode = True  # a .pyc next to a read-only module would be a write outside root
    install_audit_hook(root)
    os.chdir(root)
    sys.argv = [config["main"], *config["args"]]
    sys.path.insert(0, root)
    runpy.run_path(config["main"], run_name="__main__")


if __name__ == "__main__":
    main()
