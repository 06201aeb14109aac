"""Checkpoints and the run manifest, written so that a kill at any instant leaves a usable run.

A checkpoint directory is filled under `step-XXXXXX.tmp`, renamed, and only then added to
manifest.json (itself replaced atomically). On resume, the last manifest entry whose directory exists
is the truth; `.tmp` leftovers and directories missing from the manifest are incomplete and removed.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path
from typing import Any

from sftscope.errors import InputError
from sftscope.hashing import file_sha256
from sftscope.models.loading import WEIGHT_FILES, resolve_model

MANIFEST = "manifest.json"
STATE_FILE = "trainer_state.pt"


def checkpoint_name(step: int) -> str:
    return f"step-{step:06d}"


def weight_files(model_dir: Path) -> list[Path]:
    """The files that hold a model's weights (all shards), sorted by name."""
    names = {"model.safetensors", "pytorch_model.bin"}
    found = [p for p in model_dir.iterdir() if p.name in names or p.name.startswith("model-")]
    found += [p for p in model_dir.glob("pytorch_model-*.bin")]
    return sorted(set(found), key=lambda p: p.name)


def content_hash(model_dir: str | Path) -> str:
    """sha256 of the weight files: of the file itself for a single file (= `sha256sum model.safetensors`),
    else of the lines '<name> <sha256>' of every shard. The results store keys on it."""
    files = weight_files(Path(model_dir))
    if not files:
        raise InputError(
            str(model_dir), f"no model weights found (expected one of {', '.join(WEIGHT_FILES)})"
        )
    if len(files) == 1:
        return file_sha256(files[0])
    lines = "".join(f"{p.name} {file_sha256(p)}\n" for p in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def base_model_dir(name_or_path: str) -> Path:
    """The local directory of a base model: a shipped name, a path, or a hub id already in the HF cache."""
    resolved = Path(resolve_model(name_or_path))
    if resolved.is_dir():
        return resolved
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(name_or_path, local_files_only=True))


def read_manifest(run_dir: Path) -> dict[str, Any]:
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


def write_manifest(run_dir: Path, manifest: dict[str, Any]) -> None:
    """Replace manifest.json atomically: readers see the old or the new version, never half of one."""
    tmp = run_dir / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, run_dir / MANIFEST)


def new_manifest(base_model: str, base_hash: str, total_steps: int) -> dict[str, Any]:
    return {"base_model": base_model, "base_hash": base_hash, "total_steps": total_steps, "checkpoints": []}


def save_checkpoint(
    run_dir: Path,
    manifest: dict[str, Any],
    entry: dict[str, Any],
    model: Any,
    tokenizer: Any,
    state: dict[str, Any],
    state_dict: dict[str, Any] | None = None,
) -> Path:
    """Write checkpoint `entry['step']` atomically, then record it (with its content hash) in the manifest.

    `entry` holds step, epoch, tokens_seen and wall_time; content_hash and path are added here.
    """
    import torch

    final = run_dir / "checkpoints" / checkpoint_name(entry["step"])
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
    tokenizer.save_pretrained(tmp)
    torch.save(state, tmp / STATE_FILE)
    shutil.rmtree(final, ignore_errors=True)  # a complete-looking dir the manifest never listed
    os.replace(tmp, final)
    entry = {**entry, "content_hash": content_hash(final), "path": str(final.relative_to(run_dir))}
    manifest["checkpoints"].append(entry)
    write_manifest(run_dir, manifest)
    return final


def last_complete(run_dir: Path, manifest: dict[str, Any]) -> dict[str, Any] | None:
    """The newest manifest entry whose directory holds weights and trainer state."""
    for entry in reversed(manifest["checkpoints"]):
        path = run_dir / entry["path"]
        if (path / STATE_FILE).exists() and weight_files(path):
            return entry
    return None


def prune_after(run_dir: Path, manifest: dict[str, Any], step: int) -> None:
    """Forget everything after `step`: manifest entries and checkpoint directories (incl. `.tmp` ones)."""
    manifest["checkpoints"] = [e for e in manifest["checkpoints"] if e["step"] <= step]
    write_manifest(run_dir, manifest)
    keep = {run_dir / e["path"] for e in manifest["checkpoints"]}
    folder = run_dir / "checkpoints"
    if folder.exists():
        for path in folder.iterdir():
            if path not in keep:
                shutil.rmtree(path, ignore_errors=True)
