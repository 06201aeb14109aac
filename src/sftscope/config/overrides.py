"""`key=value` overrides of a spec: parsing, merging, task scopes, and the inverse (values -> args).

`a=1 b.c=x` is {'a': 1, 'b': {'c': 'x'}}, values parsed as YAML (numbers, lists, null). In a suite
or `eval --set`, `TASK:key=value` applies to the task named TASK only; an unscoped one to every task.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from sftscope.config.paths import Located
from sftscope.errors import InputError


def parse_overrides(
    overrides: list[str], source: str = "command line", base_dir: Path | None = None
) -> dict[str, Any]:
    """`a=1 b.c=x` -> {'a': 1, 'b': {'c': 'x'}}; values are parsed as YAML.

    With `base_dir`, string values are `Located` there: a relative path in them is relative to
    where the override was written (the working directory, a suite file), not to the spec."""
    result: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(source, f"override '{item}' is not key=value")
        value = yaml.safe_load(raw) if raw else ""
        if base_dir is not None and isinstance(value, str):
            value = Located(value, base_dir)
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise InputError(source, f"override '{item}' conflicts with another", field=key)
        node[parts[-1]] = value
    return result


def merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep merge: nested dicts merge key by key, anything else is replaced."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def to_overrides(values: dict[str, Any]) -> list[str]:
    """The inverse of `parse_overrides`: nested values as dotted `key=value` items, values as inline YAML."""
    return [item for key, value in values.items() for item in _flatten(key, value)]


def _flatten(prefix: str, value: Any) -> list[str]:
    if isinstance(value, dict):
        return [item for key, sub in value.items() for item in _flatten(f"{prefix}.{key}", sub)]
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9).strip()
    text = text.removesuffix("\n...").removesuffix("...").strip()
    return [f"{prefix}={text}"]


def split_scope(item: str) -> tuple[str | None, str]:
    """'TASK:key=value' -> ('TASK', 'key=value'); an unscoped 'key=value' -> (None, 'key=value')."""
    key = item.split("=", 1)[0]
    if ":" in key:
        task, rest = item.split(":", 1)
        return task, rest
    return None, item


def scoped_to(overrides: list[str], name: str | None) -> list[str]:
    """The overrides that apply to the task named `name`, without their scope."""
    return [rest for task, rest in map(split_scope, overrides) if task in (None, name)]


def check_scopes(overrides: list[str], names: list[str], source: str = "--set") -> None:
    """A TASK: prefix must name one of the tasks being run (a typo would silently change nothing)."""
    for item in overrides:
        task, _ = split_scope(item)
        if task is not None and task not in names:
            raise InputError(source, f"'{item}' names task '{task}', which is not among {names}")
