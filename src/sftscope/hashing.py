"""Content hashes shared by the stages (data cards, checkpoints, manifests, spec identities)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file's bytes (= `sha256sum`), read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def text_sha256(text: str) -> str:
    """Hex sha256 of a string's UTF-8 bytes."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def json_sha256(value: Any) -> str:
    """Hex sha256 of a JSON-able value, keys sorted (anything else as its str), so equal content
    hashes equally whatever the key order."""
    return text_sha256(json.dumps(value, sort_keys=True, default=str))
