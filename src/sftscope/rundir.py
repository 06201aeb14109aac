"""The run-directory contract: the one module every stage reads and writes a training run through.

A run directory holds `manifest.json` (base model, its content hash, and one entry per saved
checkpoint) and the checkpoints themselves under `checkpoints/step-XXXXXX/`. Train writes it,
evaluate, analyze and study read it; none of them needs another stage's internals for that.
`write_json_atomic` is the project's one way to replace a JSON file so that readers (and a crash)
only ever see a complete one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from huggingface_hub import snapshot_download
from pydantic import BaseModel, ConfigDict, ValidationError

from sftscope.config.specfile import validation_error
from sftscope.errors import InputError
from sftscope.hashing import file_sha256, text_sha256
from sftscope.models.loading import WEIGHT_FILES, resolve_model
from sftscope.outdir import atomic_file

MANIFEST = "manifest.json"
CHECKPOINTS = "checkpoints"
"""The folder of a run's checkpoints."""
DATA_STATS = "data_stats.json"
"""What the length policy did to the training data (examples, kept, truncated, dropped, their ids)."""


class CheckpointEntry(BaseModel):
    """One saved checkpoint as the manifest records it."""

    model_config = ConfigDict(extra="allow")  # the trainer may record more (e.g. resume details)

    step: int
    path: str
    """Relative to the run directory."""
    content_hash: str
    epoch: float | None = None
    tokens_seen: int | None = None
    wall_time: float | None = None


class Manifest(BaseModel):
    """A run's manifest.json."""

    model_config = ConfigDict(extra="allow")

    base_model: str
    """The base's shipped name, path or hub id, as the train config gave it."""
    base_hash: str
    checkpoints: list[CheckpointEntry]
    total_steps: int | None = None


def write_json_atomic(path: Path, payload: Any, *, sort_keys: bool = False) -> None:
    """Replace `path` with `payload` as JSON, so readers (and a crash) only ever see a complete file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        tmp.write_text(
            json.dumps(payload, indent=2, sort_keys=sort_keys, default=str) + "\n", encoding="utf-8"
        )


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def run_name(run_dir: str | Path) -> str:
    """A run's name in the results store: its folder's name as given. A symlink keeps its own name,
    so a study can file a run trained elsewhere under its cell's name."""
    return Path(os.path.abspath(run_dir)).name


def is_run_dir(path: str | Path) -> bool:
    """A training run's directory. A shipped base directory also holds a manifest.json (its
    pretraining record) but, unlike a run directory, it is itself a model (config.json)."""
    path = Path(path)
    return (path / MANIFEST).is_file() and not (path / "config.json").is_file()


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """manifest.json as written (a dict the trainer appends to); `load_manifest` checks its schema."""
    path = run_dir / MANIFEST
    if not path.exists():
        raise InputError(str(path), "run has no manifest (not a sftscope run directory?)")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:  # written atomically by us, so edited or copied by hand
        raise InputError(str(path), f"malformed JSON: {exc.msg}", line=exc.lineno) from exc
    if not isinstance(manifest, dict):
        raise InputError(str(path), "expected an object {base_model, base_hash, checkpoints, ...}", line=1)
    return manifest


def load_manifest(run_dir: Path) -> Manifest:
    """manifest.json, checked: a missing or mistyped field is an error naming it."""
    raw = read_manifest(run_dir)
    try:
        return Manifest.model_validate(raw)
    except ValidationError as exc:
        raise validation_error(str(run_dir / MANIFEST), None, exc, values=raw) from exc


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    write_json_atomic(run_dir / MANIFEST, manifest)


def new_manifest(base_model: str, base_hash: str, total_steps: int) -> dict[str, Any]:
    return {"base_model": base_model, "base_hash": base_hash, "total_steps": total_steps, "checkpoints": []}


def list_checkpoints(manifest: Manifest) -> list[CheckpointEntry]:
    """The manifest's checkpoints in step order."""
    return sorted(manifest.checkpoints, key=lambda entry: entry.step)


def weight_files(model_dir: Path) -> list[Path]:
    """The files that hold a model's weights (all shards), sorted by name."""
    names = {"model.safetensors", "pytorch_model.bin"}
    found = [p for p in model_dir.iterdir() if p.name in names or p.name.startswith("model-")]
    found += [p for p in model_dir.glob("pytorch_model-*.bin")]
    return sorted(set(found), key=lambda p: p.name)


def files_hash(files: list[Path]) -> str:
    """sha256 of one file itself (= `sha256sum`), else of the lines '<name> <sha256>' of every file."""
    if len(files) == 1:
        return file_sha256(files[0])
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in files)
    return text_sha256(lines)


def content_hash(model_dir: str | Path) -> str:
    """sha256 of the weight files (`files_hash`): the results store keys on it."""
    files = weight_files(Path(model_dir))
    if not files:
        raise InputError(
            str(model_dir), f"no model weights found (expected one of {', '.join(WEIGHT_FILES)})"
        )
    return files_hash(files)


def base_model_dir(name_or_path: str) -> Path:
    """The local directory of a base model: a shipped name, a path, or a hub id already in the HF cache."""
    resolved = Path(resolve_model(name_or_path))
    if resolved.is_dir():
        return resolved
    return Path(snapshot_download(name_or_path, local_files_only=True))
