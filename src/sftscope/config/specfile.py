"""Spec YAML read with its line numbers, so every error names file, line and field.

The text is composed into nodes (which keep their line numbers) besides being loaded; a pydantic
error location is then walked down those nodes. Shared by every spec.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from sftscope.config.base import KIND
from sftscope.config.legacy import Rewrites, construct
from sftscope.errors import InputError, also

MAX_LISTED = 10  # problems listed after the first; a file with more is likely not a spec at all


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
        raise InputError(str(path), "file does not exist")
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


def locate(
    root: yaml.Node, loc: tuple[int | str, ...], key_error: bool = False
) -> tuple[int | None, str | None]:
    """The line and field (`sources[0].skip`) of an error location, walked down the YAML nodes.

    Parts with no node are passed over (pydantic's union tags), except the last one of a `key_error`
    (a missing key, or an unknown one added by an override): it is absent from the YAML but named.
    A location with no part in the YAML has no line.
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
    if found == 0 and loc and isinstance(loc[0], str):
        # Nothing of it is in the file: the value came from a preset or the command line. No line
        # then; a location's first part is always a field of the top-level model.
        line, path, found = None, [f".{loc[0]}"], 1
    if key_error and found < len(loc):
        path.append(f"[{loc[-1]}]" if isinstance(loc[-1], int) else f".{loc[-1]}")
    return line, "".join(path).lstrip(".") or None


def drop_replaced(node: yaml.Node, overrides: dict[str, Any]) -> None:
    """Take the keys that overrides replaced out of a file's nodes (in place): an error in such a
    value is not at the file's line."""
    if not isinstance(node, yaml.MappingNode):
        return
    kept = []
    for key, value in node.value:
        replaced = overrides.get(key.value)
        if isinstance(replaced, dict) and isinstance(value, yaml.MappingNode):
            drop_replaced(value, replaced)  # merged key by key, as overrides merge
        elif key.value in overrides:
            continue
        kept.append((key, value))
    node.value = kept


def plain_message(error: dict[str, Any]) -> str:
    """A pydantic error dict in words: an unknown key says so, an unknown or missing `kind:` lists the
    known ones, any other keeps pydantic's message."""
    if error["type"] == "extra_forbidden":
        return "unknown field"
    if _is_kind_error(error):
        tag, known = error["ctx"]["tag"], error["ctx"]["expected_tags"].replace("'", "")
        return f"unknown kind '{tag}'; known: {known}" if tag != "None" else f"missing kind; known: {known}"
    return str(error["msg"]).removeprefix("Value error, ")


def _is_kind_error(error: dict[str, Any]) -> bool:
    """An unknown (or, see `config.base.kind_required`, missing) `kind:` of a discriminated union."""
    return error["type"] == "union_tag_invalid" and error["ctx"]["discriminator"] == f"'{KIND}'"


def read_spec(
    path: Path,
    not_mapping: str = "a spec is a YAML mapping",
    rewrite: Callable[[yaml.Node, Rewrites], None] | None = None,
) -> tuple[dict[str, Any], yaml.Node]:
    """`read_yaml_mapping`, with the old forms `rewrite` finds rewritten to the new ones (on the
    nodes, so errors keep their lines) and one deprecation notice naming them."""
    data, root = read_yaml_mapping(path, not_mapping)
    if rewrite is None:
        return data, root
    found = Rewrites(path)
    rewrite(root, found)
    if not found.notes:
        return data, root
    found.warn()
    return construct(root), root  # type: ignore[return-value]


def validation_error(
    file: str,
    root: yaml.Node | None,
    exc: ValidationError,
    message: Callable[[dict[str, Any]], str] = plain_message,
    values: dict[str, Any] | None = None,
) -> InputError:
    """Pydantic's errors as one InputError at the first one's YAML line and field, the others listed
    below it, each with its own line and field, so one run shows everything to fix.

    `root` is the YAML file's nodes (None: no file); `values`, when the validated values are more
    than the file's (a preset's, the command line's), names the fields the file does not hold.
    `message` words an error dict. The tags pydantic puts into the locations of a `kind:` union are
    no YAML keys: walking the nodes passes over them."""
    # The values as YAML nodes, walked like the file to tell fields from pydantic's union labels.
    try:
        tree = yaml.compose(yaml.safe_dump(values), Loader=yaml.SafeLoader) if values is not None else None
    except yaml.YAMLError:  # a value YAML cannot write (a caller's object): fields from the file only
        tree = None
    located = []
    for error in exc.errors():
        loc = tuple(error["loc"])
        if _is_kind_error(error):
            loc += (KIND,)  # the line of the `kind:` key, when there is one
        key_error = error["type"] in ("missing", "extra_forbidden")
        line, field = locate(root, loc, key_error) if root is not None else (None, None)
        # Not (all) in the file: the value came from elsewhere, and the file has no line for it.
        if tree is not None and (root is None or locate(root, loc)[1] != locate(tree, loc)[1]):
            line, field = None, locate(tree, loc, key_error)[1]
        located.append((error["type"] != "extra_forbidden", line, field, message(error)))
    # In file order, unknown keys first: a misspelt key shows up twice (missing + unknown), and the
    # unknown one is where the typo is.
    located.sort(key=lambda problem: (problem[0], problem[1] or 0))
    (_, line, field, first), others = located[0], located[1:]
    listed = also([(at, name, text) for _, at, name, text in others[:MAX_LISTED]])
    if len(others) > MAX_LISTED:
        listed += f"\n  and {len(others) - MAX_LISTED} more"
    return InputError(file, first + listed, line=line, field=field)
