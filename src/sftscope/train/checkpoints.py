"""Saving checkpoints (format: sftscope.rundir) so that a kill at any instant leaves a usable run.

A checkpoint directory is filled under `step-XXXXXX.tmp`, renamed, and only then added to
manifest.json (itself replaced atomically). On resume, the last manifest entry whose directory exists
is the truth; `.tmp` leftovers and directories missing from the manifest are incomplete and removed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from sftscope.rundir import (
    CHECKPOINTS,
    MANIFEST,
    base_model_dir,
    checkpoint_name,
    content_hash,
    new_manifest,
    read_manifest,
    weight_files,
    write_manifest,
)

# The run-directory format lives in sftscope.rundir; the trainer's code names it through this module.
__all__ = [
    "MANIFEST",
    "STATE_FILE",
    "base_model_dir",
    "content_hash",
    "last_complete",
    "new_manifest",
    "prune_after",
    "read_manifest",
    "save_checkpoint",
    "write_manifest",
]

STATE_FILE = "trainer_state.pt"


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

    final = run_dir / CHECKPOINTS / checkpoint_name(entry["step"])
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True, state_dict=state_dict)
        tokenizer.save_pretrained(tmp)
        torch.save(state, tmp / STATE_FILE)
    except OSError:  # e.g. disk full: leave no half-written checkpoint behind
        shutil.rmtree(tmp, ignore_errors=True)
        raise
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
    folder = run_dir / CHECKPOINTS
    if folder.exists():
        for path in folder.iterdir():
            if path not in keep:
                shutil.rmtree(path, ignore_errors=True)
