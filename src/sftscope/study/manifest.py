"""The study manifest: what ran, with which code and packages, so a study can be traced and redone."""

from __future__ import annotations

import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import sftscope
from sftscope.hashing import file_sha256
from sftscope.rundir import write_json_atomic
from sftscope.study.cells import Cell
from sftscope.study.state import StudyDir, read_json

PACKAGES = (
    "sftscope",
    "torch",
    "transformers",
    "accelerate",
    "tokenizers",
    "datasets",
    "duckdb",
    "pydantic",
    "reasoning-gym",
    "math-verify",
    "vllm",
    "ray",
    "submitit",
)


def package_versions() -> dict[str, str | None]:
    """Installed versions (None when a package is absent, e.g. vllm on CPU machines)."""
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_commit(path: Path) -> dict[str, Any]:
    """The commit of the sftscope checkout (and whether it had local changes), if it is one."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=path, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = bool(git("status", "--porcelain", "--untracked-files=no")) if commit else None
    return {"commit": commit, "dirty": dirty}


def write_manifest(
    study: StudyDir, spec_path: Path, cells: list[Cell], executor: dict[str, Any], *, finished: bool
) -> None:
    """Write STUDY/manifest.json at the start and the end of every `study run` (one attempt each)."""
    previous = read_json(study.manifest) or {}
    attempts = previous.get("attempts", [])
    if finished and attempts:
        attempts[-1]["finished"] = time.time()
    else:
        attempts.append({"started": time.time(), "finished": None})
    data_hashes = {}
    for cell in cells:
        if cell.data is None:
            continue
        card = read_json(study.data_dir(cell.data.key) / "card.json") or {}
        data_hashes[cell.data.key] = {
            "spec_sha256": cell.data.spec_hash,
            "content_hash": card.get("content_hash"),
        }

    manifest = {
        "spec": {"path": str(spec_path), "sha256": file_sha256(spec_path)},
        "attempts": attempts,
        "git": git_commit(Path(sftscope.__file__).parent),
        "packages": package_versions(),
        "python": platform.python_version(),
        "host": platform.node(),
        "executor": executor,
        "data": data_hashes,
        "cells": {
            cell.id: {
                "base": cell.base.name,
                "model": cell.base.model,
                "capability": cell.base.capability,
                "condition": cell.condition.name,
                "preset": cell.preset.name,
                "seed": cell.seed,
                "config_hash": cell.config_hash,
                "data": cell.data.key if cell.data else None,
                "checkpoints": str(cell.checkpoints) if cell.checkpoints else None,
                "blocks": list(cell.blocks),
            }
            for cell in cells
        },
    }
    write_json_atomic(study.manifest, manifest, sort_keys=True)
