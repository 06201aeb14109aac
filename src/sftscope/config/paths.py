"""The one rule for relative paths in specs: a path is relative to the spec file that names it.

A loader passes the spec's folder as the validation context (`spec_context(path)`); a value given
elsewhere (a `key=value` override on the command line or in a suite) carries its own folder as a
`Located` string, made by `sftscope.config.overrides.parse_overrides(..., base_dir=)`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import BeforeValidator, ValidationInfo

SPEC_DIR = "spec_dir"


class Located(str):
    """A string value that knows the folder its relative paths are relative to."""

    base_dir: Path

    def __new__(cls, value: str, base_dir: Path) -> Located:
        located = super().__new__(cls, value)
        located.base_dir = base_dir
        return located


# A Located value is a plain string to YAML (the error locator dumps the validated values).
yaml.SafeDumper.add_representer(Located, yaml.representer.SafeRepresenter.represent_str)


def spec_context(spec_file: Path) -> dict[str, Any]:
    """The validation context that resolves a spec's relative paths against its folder."""
    return {SPEC_DIR: spec_file.parent}


def resolve(value: str, base_dir: Path | None, *, only_if_exists: bool = False) -> str:
    """`value` against `base_dir` when relative (absolute and `~` paths as they are).

    `only_if_exists` is for values that may also be names (a hub id, a shipped model): those stay as
    written unless the path exists or starts with ./ or ../ (which no name does)."""
    path = Path(value).expanduser()
    if base_dir is None or path.is_absolute():
        return str(path)
    candidate = Path(base_dir) / path
    if only_if_exists and not candidate.exists() and not value.startswith(("./", "../")):
        return value
    return str(candidate.resolve())


def _base_dir(value: Any, info: ValidationInfo) -> Path | None:
    if isinstance(value, Located):
        return value.base_dir
    return (info.context or {}).get(SPEC_DIR)


def _path(value: Any, info: ValidationInfo) -> Any:
    return resolve(str(value), _base_dir(value, info)) if isinstance(value, str) else value


def _path_or_name(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str):
        return value  # pydantic reports the type error
    return resolve(str(value), _base_dir(value, info), only_if_exists=True)


SpecPath = Annotated[str, BeforeValidator(_path)]
"""A file or folder path, relative to the spec file that names it."""
PathOrName = Annotated[str, BeforeValidator(_path_or_name)]
"""A local path (relative to the spec file) or a name (hub id, shipped model): a path when it exists."""
