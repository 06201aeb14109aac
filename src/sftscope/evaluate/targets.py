"""What a sweep evaluates: every checkpoint of a training run plus its base as step 0, or one model."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import urlparse

from sftscope.errors import InputError
from sftscope.models.loading import check_weights, resolve_model
from sftscope.rundir import (
    MANIFEST,
    base_model_dir,
    content_hash,
    files_hash,
    is_run_dir,
    list_checkpoints,
    load_manifest,
    weight_files,
    write_json_atomic,
)

# Weight hashes already computed, with the file stamps they were computed for: re-hashing every
# checkpoint of a finished sweep would read every weight file again just to skip it. Kept in the
# user's cache, not beside the weights: a model directory may be read-only, shared, or a package's.
HASH_CACHE_ENV = "SFTSCOPE_CACHE"


@dataclass(frozen=True)
class Target:
    """One model to evaluate, and where its rows belong."""

    run: str
    """Run name in the store (the run directory's name, or the model's name)."""
    step: int
    """Optimizer step; 0 is the base model."""
    path: str
    """Local model directory."""
    model_hash: str
    """Content hash of the weights: the store's key."""


def resolve_targets(
    target: str | Path, *, steps: list[int] | None = None, every: int | None = None
) -> list[Target]:
    """The run's base (step 0) and its checkpoints, selected by `steps` / `every`; or one model as step 0.

    Every selected checkpoint must hold weights: a missing one is reported before anything runs.
    """
    if every is not None and every < 1:
        raise InputError(str(target), f"--every must be at least 1, got {every}")
    run_dir = Path(target)
    if is_run_dir(run_dir):
        return _run_targets(run_dir, steps, every)
    if (steps and set(steps) - {0}) or every is not None:
        message = "--steps/--every select checkpoints of a run directory; this is a model"
        raise InputError(str(target), message)
    path = _local_model(str(target))
    return [Target(Path(str(target).rstrip("/")).name, 0, path, weights_hash(Path(path)))]


def _local_model(name: str) -> str:
    resolved = Path(resolve_model(name))
    if resolved.is_dir():
        check_weights(resolved)
        return str(resolved)
    if resolved.exists():
        raise InputError(name, "expected a model directory (or a shipped model name), got a file")
    try:  # a hub id already in the HF cache (evaluation never downloads)
        return str(base_model_dir(name))
    except Exception as exc:  # huggingface_hub raises several types for "not cached"
        message = f"no such model directory or shipped model, and not in the HF cache ({exc})"
        raise InputError(name, message) from exc


def _run_targets(run_dir: Path, steps: list[int] | None, every: int | None) -> list[Target]:
    manifest = load_manifest(run_dir)
    where = str(run_dir / MANIFEST)
    entries = list_checkpoints(manifest)
    available = [e.step for e in entries]
    if steps is not None:
        unknown = sorted(set(steps) - set(available) - {0})
        if unknown:
            message = f"no checkpoint at steps {unknown}; checkpoints: {available}"
            raise InputError(where, message, field="checkpoints")
        entries = [e for e in entries if e.step in steps]
    if every is not None:
        last = entries[-1].step if entries else None
        entries = [e for e in entries if e.step % every == 0 or e.step == last]
    run = run_dir.resolve().name
    base = _local_model(manifest.base_model)
    _check_hash(Path(base), manifest.base_hash, where, "base_hash")
    targets = [Target(run, 0, base, manifest.base_hash)]
    for entry in entries:
        path = run_dir / entry.path
        if not path.is_dir():
            message = f"checkpoint of step {entry.step} is listed in the manifest but missing"
            raise InputError(str(path), message)
        check_weights(path)
        index = manifest.checkpoints.index(entry)
        _check_hash(path, entry.content_hash, where, f"checkpoints[{index}].content_hash")
        targets.append(Target(run, entry.step, str(path), entry.content_hash))
    return targets


def _check_hash(model_dir: Path, recorded: str, where: str, field: str) -> None:
    """The store keys rows by the recorded hash: weights changed since (a copy over another step's, a
    re-download) would silently take over that model's rows."""
    actual = weights_hash(model_dir)
    if actual != recorded:
        message = (
            f"the weights in {model_dir} hash to {actual[:16]}, the manifest records {recorded[:16]}: "
            "they changed after training"
        )
        raise InputError(where, message, field=field)


def hash_cache_dir() -> Path:
    """$SFTSCOPE_CACHE, else $XDG_CACHE_HOME/sftscope, else ~/.cache/sftscope; then weight-hashes/."""
    root = os.environ.get(HASH_CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "sftscope"
    return Path(root).expanduser() / "weight-hashes"


def weights_hash(model_dir: Path) -> str:
    """`content_hash` of a model directory's weights, cached (`cached_files_hash`)."""
    files = weight_files(model_dir)
    if not files:
        content_hash(model_dir)  # the error naming what was looked for
    return cached_files_hash(files)


def cached_files_hash(files: list[Path]) -> str:
    """`files_hash(files)`, cached for as long as each file keeps its size, mtime, ctime and inode.

    The ctime and inode catch what size and mtime miss: a same-size rewrite with its mtime set back
    (the ctime moves), or another file renamed into place (a new inode).
    """
    stats = {str(p.resolve()): p.stat() for p in files}
    stamp = {
        name: [stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino] for name, stat in stats.items()
    }
    key = hashlib.sha256(json.dumps(sorted(stamp)).encode()).hexdigest()[:32]
    cache = hash_cache_dir() / f"{key}.json"
    try:
        cached = json.loads(cache.read_text())
        if cached["files"] == stamp:
            return str(cached["sha256"])
    except (OSError, ValueError, KeyError, TypeError):  # no entry yet, or a damaged one
        pass
    digest = files_hash(files)
    with contextlib.suppress(OSError):  # an unwritable cache only means hashing again next time
        write_json_atomic(cache, {"files": stamp, "sha256": digest})
    return digest


def served_target(target: Target, base_url: str, served_model: str | None) -> Target:
    """The target as an endpoint serves it: keyed by the endpoint and the model name it is asked for.

    The local weights' content hash cannot be the key: nothing proves the server holds those
    weights, and rows stored under it would be reused by a later local evaluation of them.
    """
    name = served_model or target.path  # what OpenAIBackend.load puts in each request
    identity = f"openai-endpoint {base_url.rstrip('/')} {name}"
    # Its own run name too: the store maps (run, step) to one model, and the local run keeps its own.
    run = f"openai:{served_model or target.run}@{urlparse(base_url).netloc}"
    return replace(target, run=run, model_hash=hashlib.sha256(identity.encode()).hexdigest())
