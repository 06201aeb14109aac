"""Errors that point at the exact place of bad input."""

from __future__ import annotations

import errno
from pathlib import Path


class SftscopeError(Exception):
    """Base class for every error sftscope raises on purpose."""


class InputError(SftscopeError):
    """Bad input, located by file, line (1-based, when the format has lines; the row of a table, with
    `unit="row"`) and field."""

    def __init__(
        self,
        file: str,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        unit: str = "line",
    ):
        self.file = str(file)
        self.line = line
        self.field = field
        self.reason = message
        super().__init__(", ".join([self.file, *place(line, field, unit)]) + f": {message}")


def also(problems: list[tuple[int | None, str | None, str]]) -> str:
    """Further problems after an error's first, one per line: `also line N, field 'F': text`."""
    return "".join(f"\n  also {', '.join(place(line, field))}: {text}" for line, field, text in problems)


def place(line: int | None, field: str | None, unit: str = "line") -> list[str]:
    """`line N` (or `row N`) and `field 'F'`, whichever is known."""
    parts = [f"{unit} {line}"] if line is not None else []
    return parts + ([f"field '{field}'"] if field is not None else [])


class DiskFullError(SftscopeError):
    """The disk is (or would be) full writing `path`; what was written before stays usable."""

    def __init__(self, path: str | Path, kept: str | None = None) -> None:
        self.path = str(path)
        detail = f" ({kept})" if kept else ""
        super().__init__(
            f"{path}: not enough space on the device{detail}; free some and run the same command again"
        )


DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def is_disk_full(exc: BaseException) -> bool:
    """An OSError for a full disk or quota, or a database error that reports one (DuckDB's does in text)."""
    if isinstance(exc, OSError):
        return exc.errno in DISK_FULL_ERRNOS
    return "No space left on device" in str(exc) or "Disk quota exceeded" in str(exc)
