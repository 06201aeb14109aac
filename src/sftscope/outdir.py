"""Output folders that never cost the user a file: what a command may write into, and how.

A command that writes a folder takes one that is absent, empty, or one it wrote before (a marker
file, `.sftscope`, says so, and names the command). Any other folder is the user's: refused unless
they pass `--overwrite`. One-shot outputs (a data build, a base export) are written into a
temporary sibling and renamed into place when complete, so a failure or a kill leaves the old
folder as it was and never a half-written one.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sftscope.errors import DiskFullError, InputError

MARKER = ".sftscope"


def mark(folder: Path, command: str) -> None:
    """Record that `command` wrote this folder."""
    (folder / MARKER).write_text(json.dumps({"written_by": f"sftscope {command}"}) + "\n", encoding="utf-8")


def is_ours(folder: Path, legacy: Callable[[Path], bool] | None = None) -> bool:
    """Whether sftscope wrote this folder: its marker, or `legacy` (how outputs written before the
    marker existed are recognised)."""
    return (folder / MARKER).is_file() or (legacy is not None and legacy(folder))


def claim(
    folder: Path,
    command: str,
    *,
    overwrite: bool = False,
    legacy: Callable[[Path], bool] | None = None,
    remedy: str = "--overwrite",
) -> None:
    """Check that `command` may write into `folder`; raises `InputError` for a folder of the user's.
    `remedy` is the option the message offers: `--overwrite`, or the name of the output setting for
    a command that has no such flag."""
    if folder.exists() and not folder.is_dir():
        raise InputError(str(folder), "exists and is not a folder; give another output path")
    if overwrite or not folder.exists() or not any(folder.iterdir()) or is_ours(folder, legacy):
        return
    offer = "or pass --overwrite to replace what is in it" if remedy == "--overwrite" else f"as {remedy}"
    raise InputError(
        str(folder),
        f"the folder is not empty and was not written by sftscope {command}; give an empty or new folder "
        + offer,
    )


@contextmanager
def fresh_output(
    out: Path, command: str, *, overwrite: bool, legacy: Callable[[Path], bool] | None = None
) -> Iterator[Path]:
    """Yield a temporary sibling of `out` to write into; when the block ends without an error, it
    replaces `out`. On an error the sibling is removed and `out` is left as it was."""
    claim(out, command, overwrite=overwrite, legacy=legacy)
    tmp = _sibling(out, "tmp")
    try:
        tmp.mkdir(parents=True)
        mark(tmp, command)
        yield tmp
        _replace(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _replace(new: Path, out: Path) -> None:
    """Move `new` to `out`; an existing `out` is moved aside first and removed only once `new` is in
    place (a rename cannot replace a non-empty folder)."""
    if not out.exists():
        os.replace(new, out)
        return
    old = _sibling(out, "old")
    os.replace(out, old)
    try:
        os.replace(new, out)
    except BaseException:
        os.replace(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _sibling(out: Path, kind: str) -> Path:
    """A hidden, unique name beside `out` (same filesystem, so renames are atomic)."""
    return out.parent / f".{out.name}.{uuid.uuid4().hex[:8]}.{kind}"


def require_free_space(folder: Path, needed: int, what: str) -> None:
    """Refuse to start writing `what` (at least `needed` bytes) where the disk has less free space."""
    existing = next(p for p in (folder, *folder.parents) if p.exists())
    free = shutil.disk_usage(existing).free
    if needed > free:
        raise DiskFullError(
            folder, f"{what} needs at least {needed / 1e6:.1f} MB and {free / 1e6:.1f} MB are free"
        )


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of `path` to write; it becomes `path` when the block ends without an
    error, and is removed otherwise (a full disk leaves the previous file, not a truncated one)."""
    tmp = _sibling(path, "tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
