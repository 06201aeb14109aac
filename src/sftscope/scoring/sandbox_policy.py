"""What a sandboxed program may do: the seccomp filter and the bubblewrap command line.

`sftscope.scoring.sandbox` runs model-written programs through bubblewrap (``bwrap``), which
builds the namespaces, the file system view and the capability drop; this module only says which:

- new pid, network, IPC, UTS and cgroup namespaces: the program sees its own processes only (``/proc``
  is mounted anew), has no network but a down loopback, and dies with bwrap (``--die-with-parent``);
- a file system of read-only binds (``/usr`` and the symlinks of a merged-usr system, the dynamic
  linker's cache, the Python installation) plus a size-limited tmpfs at `WORKDIR`, its only
  writable place; the files the program needs are copied into it (``--file``), so nothing of the
  caller's directories is visible, let alone writable;
- an empty environment (``--clearenv``) and a new session (no terminal to inject keystrokes into);
- an unprivileged user without capabilities. As root, bwrap sets the sandbox up in privileged mode and
  `setpriv` then drops to `uid` (a fresh unprivileged uid, so RLIMIT_NPROC applies, which the kernel
  never applies to root): no capabilities, no supplementary groups, an empty bounding set. As any
  other user, bwrap makes an unprivileged user namespace, in which the program has no capabilities;
- ``no_new_privs`` (bwrap sets it) and the seccomp filter of `seccomp_filter`.
"""

from __future__ import annotations

import errno
import os
import sys
import tempfile
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path

WORKDIR = "/sandbox"
"""The program's directory inside the sandbox: cwd, HOME and TMPDIR."""
_SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_SYSTEM_FILES = ("/etc/ld.so.cache",)

# Syscalls a scored program never needs and an escape would: changing mounts (old and new mount
# API), entering or making namespaces, tracing or reading other processes, kernel keyrings, eBPF,
# io_uring (whose operations bypass the socket rule), loading kernel code, and the like.
_DENIED = (
    "mount", "umount", "umount2", "pivot_root", "chroot", "fsopen", "fsconfig", "fsmount", "fspick",
    "move_mount", "open_tree", "mount_setattr", "unshare", "setns", "ptrace", "process_vm_readv",
    "process_vm_writev", "kcmp", "pidfd_getfd", "keyctl", "add_key", "request_key", "bpf",
    "perf_event_open", "userfaultfd", "io_uring_setup", "io_uring_enter", "io_uring_register",
    "open_by_handle_at", "name_to_handle_at", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "swapon", "swapoff", "reboot", "acct", "quotactl", "syslog",
)  # fmt: skip
# clone() flags that make namespaces. clone3 passes its flags in memory a filter cannot read: it
# fails with ENOSYS, and the C library falls back to clone(), whose flags the filter sees.
_NAMESPACE_FLAGS = (0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000)
_AF_UNIX = 1


@cache
def seccomp_filter() -> bytes:
    """The BPF program bwrap loads (``--seccomp FD``): everything allowed but the denied syscalls
    (EPERM), sockets other than AF_UNIX (EAFNOSUPPORT: no network, raw or packet sockets, netlink),
    namespace-making clone() flags (EPERM) and clone3 (ENOSYS). Foreign ABIs (x32, i386 on x86-64)
    kill the process: libseccomp's default for architectures the filter was not built for."""
    import pyseccomp
    from pyseccomp import ERRNO, Arg

    rules = pyseccomp.SyscallFilter(pyseccomp.ALLOW)
    for name in _DENIED:
        try:
            rules.add_rule(ERRNO(errno.EPERM), name)
        except (ValueError, OSError):  # not a syscall of this architecture (umount on x86-64)
            continue
    for call in ("socket", "socketpair"):
        rules.add_rule(ERRNO(errno.EAFNOSUPPORT), call, Arg(0, pyseccomp.NE, _AF_UNIX))
    for flag in _NAMESPACE_FLAGS:
        rules.add_rule(ERRNO(errno.EPERM), "clone", Arg(0, pyseccomp.MASKED_EQ, flag, flag))
    rules.add_rule(ERRNO(errno.ENOSYS), "clone3")
    with tempfile.TemporaryFile() as sink:
        rules.export_bpf(sink)
        sink.seek(0)
        return sink.read()


def python_roots() -> list[str]:
    """The directories the interpreter needs: the environment's prefix and the installation behind it."""
    roots = {sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix}
    roots.add(str(Path(os.path.realpath(sys.executable)).parent.parent))
    kept = sorted(r for r in roots if not any(r == s or r.startswith(s + "/") for s in _SYSTEM))
    # A root inside another is bound with it.
    return [r for r in kept if not any(r != o and r.startswith(o + "/") for o in kept)]


def _parents(paths: Iterable[str]) -> list[str]:
    """The directories above `paths` that bwrap must create, outermost first."""
    parents: list[str] = []
    for path in paths:
        parts = path.strip("/").split("/")
        for depth in range(1, len(parts)):
            parent = "/" + "/".join(parts[:depth])
            if parent not in parents:
                parents.append(parent)
    return parents


def bwrap_command(*, files: Mapping[str, int], seccomp_fd: int, disk_mb: int, uid: int | None) -> list[str]:
    """The bwrap invocation up to the program's own command line.

    `files` maps names in `WORKDIR` to readable descriptors of their content; `uid` is the user to
    drop to when running as root (None: bwrap runs unprivileged in a user namespace).
    """
    command = ["bwrap", "--die-with-parent", "--new-session", "--clearenv"]
    command += ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try"]
    if uid is None:
        command += ["--unshare-user", "--uid", "65534", "--gid", "65534", "--disable-userns"]
        command += ["--cap-drop", "ALL"]
    else:
        command += ["--cap-drop", "ALL"]
        command += [arg for cap in ("SETUID", "SETGID", "SETPCAP") for arg in ("--cap-add", f"CAP_{cap}")]
    for path in _SYSTEM:
        if os.path.islink(path):
            command += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            command += ["--ro-bind", path, path]
    command += [arg for path in _SYSTEM_FILES if os.path.exists(path) for arg in ("--ro-bind", path, path)]
    roots = python_roots()
    # bwrap would make the parents mode 0700, which the dropped uid could not traverse.
    command += [arg for parent in _parents(roots) for arg in ("--perms", "0755", "--dir", parent)]
    command += [arg for root in roots for arg in ("--ro-bind", root, root)]
    command += ["--proc", "/proc", "--dev", "/dev"]
    command += ["--perms", "0777", "--size", str(disk_mb << 20), "--tmpfs", WORKDIR, "--chdir", WORKDIR]
    for name, fd in files.items():
        command += ["--file", str(fd), f"{WORKDIR}/{name}"]
    environment = {"PATH": "/usr/bin:/bin", "HOME": WORKDIR, "TMPDIR": WORKDIR, "LANG": "C.UTF-8"}
    command += [arg for name, value in environment.items() for arg in ("--setenv", name, value)]
    command += ["--seccomp", str(seccomp_fd), "--"]
    if uid is not None:
        command += ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all"]
        command += ["--bounding-set=-all", "--"]
    return command
