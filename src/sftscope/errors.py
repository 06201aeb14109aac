"""Errors that point at the exact place of bad input."""

from __future__ import annotations


class SftscopeError(Exception):
    """Base class for every error sftscope raises on purpose."""


class InputError(SftscopeError):
    """Bad input, located by file, line (1-based, when the format has lines) and field."""

    def __init__(self, file: str, message: str, *, line: int | None = None, field: str | None = None):
        self.file = str(file)
        self.line = line
        self.field = field
        self.reason = message
        where = self.file
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")
