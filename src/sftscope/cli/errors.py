"""Turn sftscope's own errors into one clear line and exit code 2, and Ctrl-C into a line saying what
was kept and exit code 130, without a traceback; a spec in an old form gets one warning line."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import wraps
from typing import Any, TypeVar

import typer

from sftscope.config.legacy import SpecFormWarning
from sftscope.errors import DiskFullError, SftscopeError, is_disk_full
from sftscope.progress import console

F = TypeVar("F", bound=Callable[..., Any])


@contextmanager
def user_errors() -> Iterator[None]:
    with warnings.catch_warnings():
        # Python hides DeprecationWarnings raised outside __main__; a user must see these.
        warnings.simplefilter("default", SpecFormWarning)
        warnings.showwarning = _one_line
        try:
            yield
        except SftscopeError as exc:
            _fail(exc)
        except OSError as exc:  # a full disk can strike any write; it is the user's to fix, not a bug
            if not is_disk_full(exc):
                raise
            _fail(DiskFullError(exc.filename or "a file being written"))


def _fail(exc: SftscopeError) -> None:
    # soft_wrap: rich would fold a long path mid-word, and a pasted path would then be wrong.
    console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
    raise typer.Exit(2) from exc


def _one_line(message: Warning | str, category: type[Warning], *args: Any, **kwargs: Any) -> None:
    console.print(f"[yellow]warning:[/yellow] {message}", highlight=False, soft_wrap=True)


@contextmanager
def on_interrupt(kept: str) -> Iterator[None]:
    """Ctrl-C ends with `kept` (what survives and how to go on) and exit code 130 (128 + SIGINT)."""
    try:
        yield
    except KeyboardInterrupt:
        console.print(f"interrupted: {kept}", highlight=False, soft_wrap=True)
        raise typer.Exit(130) from None


def reports_errors(func: F) -> F:
    """Decorator for commands: bad input ends with the error's message, not a traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with user_errors():
            return func(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
