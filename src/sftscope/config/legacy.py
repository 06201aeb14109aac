"""Old spec forms, still read for one release: rewritten to the new form on the YAML nodes, so an
error in an old spec still names its line, with one deprecation notice per file.

The rewrites work on composed nodes (which keep their line numbers) before the values are built
from them. Each spec kind's rewrite lives with its loader; these are the node tools they share.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import yaml


class SpecFormWarning(DeprecationWarning):
    """A spec written in an old form; the message names the new one."""


@dataclass
class Rewrites:
    """The old forms found in one spec file, for its one deprecation notice."""

    path: Path
    notes: list[str] = field(default_factory=list)

    def note(self, old: str, new: str) -> None:
        text = f"{old} -> {new}"
        if text not in self.notes:
            self.notes.append(text)

    def warn(self) -> None:
        """One line naming every old form found and its new form (nothing when there was none)."""
        if self.notes:
            message = f"{self.path}: old spec form, read for one more release; write {'; '.join(self.notes)}"
            warnings.warn(message, SpecFormWarning, stacklevel=4)


def get(node: yaml.Node, key: str) -> yaml.Node | None:
    """The value node of `key` in a mapping node (None when absent or not a mapping)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
    return None


def pop(node: yaml.MappingNode, key: str) -> tuple[yaml.Node, yaml.Node] | None:
    """Take `key` out of a mapping node: its (key, value) nodes."""
    for i, (k, v) in enumerate(node.value):
        if k.value == key:
            del node.value[i]
            return k, v
    return None


def scalar(value: str, at: yaml.Node) -> yaml.ScalarNode:
    """A string node placed at `at` (errors about it point at that line)."""
    return yaml.ScalarNode("tag:yaml.org,2002:str", value, at.start_mark, at.end_mark)


def rename(node: yaml.MappingNode, old: str, new: str) -> bool:
    """Rename a key in place (its value and line kept); False when `old` is absent."""
    for i, (k, v) in enumerate(node.value):
        if k.value == old:
            node.value[i] = (scalar(new, k), v)
            return True
    return False


def set_kind(node: yaml.MappingNode, kind: str, at: yaml.Node) -> None:
    """Put `kind: KIND` first in a mapping node, at the line of `at` (the old form's key)."""
    node.value.insert(0, (scalar("kind", at), scalar(kind, at)))


def lift(node: yaml.MappingNode, key: str) -> yaml.Node | None:
    """`{key: {a: 1}, b: 2}` -> `{kind: key, a: 1, b: 2}`: the options of `key` move up a level.

    Returns the key node (None when `key` is absent); options that are not a mapping stay under
    the key, so validation names them."""
    found = pop(node, key)
    if found is None:
        return None
    k, options = found
    set_kind(node, key, k)
    if isinstance(options, yaml.MappingNode):
        node.value[1:1] = options.value
    elif not (isinstance(options, yaml.ScalarNode) and options.value in ("", "~", "null")):
        node.value.append((k, options))
    return k


def items(node: yaml.Node | None) -> list[yaml.Node]:
    """The item nodes of a sequence node (none for anything else)."""
    return list(node.value) if isinstance(node, yaml.SequenceNode) else []


def construct(node: yaml.Node) -> object:
    """The Python values of a node tree, as `yaml.safe_load` would build them."""
    return yaml.SafeLoader("").construct_document(node)
