"""Checks on a study's bases before any job runs: a micro base is built, and a base pretrained by
`sftscope pretrain` shares the tokenizer its data conditions are measured with.

A micro preset name that is not built yet (no weights under models/bases/) would otherwise reach the
first training job as a hub lookup; a base pretrained with another vocabulary than the data's would
train on token lengths and length limits that describe a different tokenization.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from sftscope.data.card import default_tokenizer
from sftscope.errors import InputError
from sftscope.models.loading import resolve_model
from sftscope.models.micro import PRESETS
from sftscope.study.cells import Cell


def unbuilt_base(model: str) -> str | None:
    """The one-line fix when `model` names a micro preset whose base is not built, else None."""
    if model not in PRESETS or resolve_model(model) != model:
        return None
    return f"base '{model}' is not built yet: run `sftscope pretrain --preset {model}` first"


def _vocabulary(folder: Path) -> Any:
    """What decides how text becomes ids: the model's vocabulary and merges, and the added tokens."""
    tokenizer = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
    added = sorted((t["id"], t["content"]) for t in tokenizer.get("added_tokens", []))
    return tokenizer.get("model"), added


def _pretrained_here(folder: Path) -> bool:
    """Whether the base folder is a `sftscope pretrain` export (its manifest records the preset)."""
    manifest = folder / "manifest.json"
    return manifest.is_file() and "preset" in json.loads(manifest.read_text(encoding="utf-8"))


def data_tokenizer(data_spec: Path, base: Path) -> Path | None:
    """The local tokenizer folder the data spec measures lengths with, when it must match `base`:
    the spec's own `tokenizer:`, or the default micro tokenizer for a base pretrained here.

    Only the `tokenizer` key is read: the rest of the spec is the data stage's to validate, in its job.
    """

    data = yaml.safe_load(data_spec.read_text(encoding="utf-8")) if data_spec.is_file() else None
    name = data.get("tokenizer") if isinstance(data, dict) else None
    if name is None:
        name = default_tokenizer() if _pretrained_here(base) else None
    if not isinstance(name, str):
        return None
    # As the data spec resolves it: a local folder relative to the spec file, else a name.
    local = data_spec.parent / name
    folder = local if local.is_dir() else Path(resolve_model(name))
    return folder if (folder / "tokenizer.json").is_file() else None  # a hub id: not checkable offline


def check_bases(cells: list[Cell], spec_path: Path) -> None:
    """InputError (one line) for the first base that is not built or whose tokenizer differs from
    its data's."""

    checked: set[tuple[str, Path]] = set()
    for cell in cells:
        model = cell.base.model
        if (fix := unbuilt_base(model)) is not None:
            raise InputError(str(spec_path), fix, field=f"bases.{cell.base.name}")
        base = Path(resolve_model(model))
        if cell.data is None or not (base / "tokenizer.json").is_file():
            continue  # a condition of checkpoints trained elsewhere has no data spec to compare
        if (model, cell.data.spec_path) in checked:
            continue
        checked.add((model, cell.data.spec_path))
        tokenizer = data_tokenizer(cell.data.spec_path, base)
        if tokenizer is not None and _vocabulary(tokenizer) != _vocabulary(base):
            raise InputError(
                str(spec_path),
                f"base '{cell.base.name}' ({base}) was pretrained with another tokenizer than the one "
                f"condition '{cell.condition.name}' is measured with ({tokenizer}); pretrain the base "
                "with that tokenizer or set the data spec's `tokenizer:` to the base's",
                field=f"bases.{cell.base.name}",
            )
