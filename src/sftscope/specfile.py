"""Spec YAML read with its line numbers, so every error names file, line and field.

The text is composed into nodes (which keep their line numbers) besides being loaded; a pydantic
error location is then walked down those nodes. Shared by the data, evaluate and study specs.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sftscope.errors import InputError


def node_line(node: yaml.Node) -> int:
    """1-based line where `node` starts."""
    return node.start_mark.line + 1


def _check_duplicate_keys(file: str, node: yaml.Node) -> None:
    """PyYAML keeps the last of two equal keys silently; a spec with both is ambiguous."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                raise InputError(file, "duplicate key", line=node_line(key), field=str(key.value))
            seen.add(key.value)
            _check_duplicate_keys(file, value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _check_duplicate_keys(file, item)


def read_yaml_mapping(
    path: Path, not_mapping: str = "a spec is a YAML mapping"
) -> tuple[dict[str, Any], yaml.Node]:
    """The mapping in a YAML file and its node tree; missing file, bad UTF-8, bad YAML, a top level
    that is not a mapping (`not_mapping` says what it should be) and duplicate keys are InputErrors."""
    if not path.is_file():
        raise InputError(str(path), "spec file does not exist")
    try:
        text = path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(str(path), f"text is not valid UTF-8 (byte {exc.start})") from exc
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(str(path), f"invalid YAML: {getattr(exc, 'problem', exc)}", line=line) from exc
    if root is None or not isinstance(data, dict):
        raise InputError(str(path), not_mapping, line=1)
    _check_duplicate_keys(str(path), root)
    return data, root


def locate(root: yaml.Node, loc: tuple[int | str, ...], key_error: bool = False) -> tuple[int, str | None]:
    """The line and field (`sources[0].skip`) of an error location, walked down the YAML nodes.

    Parts with no node are passed over (pydantic's union tags), except the last one of a `key_error`
    (a missing key, or an unknown one added by an override): it is absent from the YAML but named.
    """
    node, line, path, found = root, node_line(root), [], 0
    for i, part in enumerate(loc):
        if isinstance(node, yaml.MappingNode) and isinstance(part, str):
            for key, value in node.value:
                if key.value == part:
                    node, line, found = value, node_line(key), i + 1
                    path.append(f".{part}")
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node, found = node.value[part], i + 1
            line = node_line(node)
            path.append(f"[{part}]")
    if key_error and found < len(loc):
        path.append(f"[{loc[-1]}]" if isinstance(loc[-1], int) else f".{loc[-1]}")
    return line, "".join(path).lstrip(".") or None


def validation_error(
    file: str,
    root: yaml.Node,
    exc: ValidationError,
    message: Callable[[dict[str, Any]], str],
    skip: Collection[str] = (),
) -> InputError:
    """The first of pydantic's errors as an InputError at its YAML line and field; `message` words
    an error dict, `skip` lists union tags pydantic puts into locations (they are not YAML keys)."""
    errors = exc.errors()
    # A misspelt key shows up twice (missing + unknown); the unknown one is where the typo is.
    first = next((e for e in errors if e["type"] == "extra_forbidden"), errors[0])
    loc = tuple(part for part in first["loc"] if part not in skip)
    line, field = locate(root, loc, first["type"] in ("missing", "extra_forbidden"))
    others = len(errors) - 1
    more = f" (and {others} more {'problem' if others == 1 else 'problems'})" if others else ""
    return InputError(file, message(first) + more, line=line, field=field)
