"""What a sweep evaluates: every checkpoint of a training run (any trainer's) plus its base as step 0, or
one model; each keyed by the content hash of its weights."""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from sftscope.endpoint import public_url
from sftscope.errors import InputError
from sftscope.evaluate.layouts import (
    ADAPTER_CONFIG,
    ADAPTER_WEIGHTS,
    Found,
    Layout,
    holds_numbered_checkpoints,
    read_json_file,
    run_dir_or_layout,
)
from sftscope.evaluate.merge import merged_model
from sftscope.hashing import file_sha256, json_sha256, text_sha256
from sftscope.models.loading import check_weights, resolve_model
from sftscope.rundir import (
    MANIFEST,
    base_model_dir,
    content_hash,
    files_hash,
    is_run_dir,
    list_checkpoints,
    load_manifest,
    run_name,
    weight_files,
    write_json_atomic,
)

# Weight hashes already computed, with the file stamps they were computed for: re-hashing every
# checkpoint of a finished sweep would read every weight file again just to skip it. Kept in the
# user's cache, not beside the weights: a model directory may be read-only, shared, or a package's.
HASH_CACHE_ENV = "SFTSCOPE_CACHE"
_NOT_A_RUN = "--steps/--every select checkpoints of a run directory; this is a model"


@dataclass(frozen=True)
class Target:
    """One model to evaluate, and where its rows belong."""

    run: str
    """Run name in the store (the run directory's name, or the model's name)."""
    step: int
    """Optimizer step; 0 is the base model."""
    path: str
    """Local model directory (or PEFT adapter directory, when `adapter_base` is set)."""
    model_hash: str
    """Content hash of the weights: the store's key."""
    epoch: float | None = None
    tokens_seen: int | None = None
    adapter_base: str | None = None
    """The base model directory a PEFT adapter at `path` is merged onto."""

    def model_dir(self) -> str:
        """The directory a backend loads: `path`, or the adapter merged onto its base (done once, cached)."""
        if self.adapter_base is None:
            return self.path
        return str(
            merged_model(Path(self.path), Path(self.adapter_base), cache_root() / "merged" / self.model_hash)
        )


def resolve_targets(
    target: str | Path,
    *,
    steps: list[int] | None = None,
    every: int | None = None,
    base: str | None = None,
    revisions: list[str] | None = None,
) -> list[Target]:
    """A run's base (step 0) and its checkpoints, selected by `steps` / `every`; or one model as step 0.

    `target` is an sftscope run, another trainer's output (`layouts`), a hub repo with `revisions`,
    or one model (a folder, a shipped name, or a hub id in the HF cache). `base` names the base model
    where the checkpoints do not. Every selected checkpoint is checked (weights, tokenizer, base)
    before anything runs.
    """
    if every is not None and every < 1:
        raise InputError(str(target), f"--every must be at least 1, got {every}")
    text = str(target)
    if not Path(text).exists() and revisions is None:  # a shipped name or a cached hub id
        if (steps and set(steps) - {0}) or every is not None:
            raise InputError(text, _NOT_A_RUN)
        path = _local_model(text)
        return [Target(Path(text.rstrip("/")).name, 0, path, weights_hash(Path(path)))]
    located = run_dir_or_layout(text, revisions)
    if isinstance(located, Path):
        if base is not None:
            raise InputError(
                text, "--base is for checkpoints that do not name their base; this run's manifest does"
            )
        return _run_targets(located, steps, every)
    return _layout_targets(located, steps, every, base, text)


def store_home(target: str | Path) -> Path | None:
    """The folder a target's results store defaults to: the run's own (an sftscope run or another
    trainer's output folder), or None for a single model, snapshots and hub repos."""
    path = Path(target)
    return path if is_run_dir(path) or holds_numbered_checkpoints(path) else None


def _selected(available: list[int], steps: list[int] | None, every: int | None, where: str) -> set[int]:
    """The steps that `--steps` and `--every` keep (`every` always keeps the last)."""
    chosen = list(available)
    if steps is not None:
        unknown = sorted(set(steps) - set(available) - {0})
        if unknown:
            message = f"no checkpoint at steps {unknown}; checkpoints: {available}"
            raise InputError(where, message, field="checkpoints")
        chosen = [s for s in chosen if s in steps]
    if every is not None:
        last = chosen[-1] if chosen else None
        chosen = [s for s in chosen if s % every == 0 or s == last]
    return set(chosen)


def _layout_targets(
    layout: Layout, steps: list[int] | None, every: int | None, base: str | None, where: str
) -> list[Target]:
    if layout.kind == "model" and ((steps and set(steps) - {0}) or every is not None):
        raise InputError(where, _NOT_A_RUN)
    if layout.kind == "model" and base is not None and not layout.checkpoints[0].adapter:
        raise InputError(
            where, "--base names the base of a run's checkpoints or of an adapter; this is a model"
        )
    chosen = _selected([f.step for f in layout.checkpoints], steps, every, where)
    found = [f for f in layout.checkpoints if f.step in chosen]
    check_tokenizers(found)
    base_dir = _base_dir(layout, base, found)
    run = layout.run
    targets = []
    if base_dir is not None and layout.kind != "model" and 0 not in chosen:
        targets.append(Target(run, 0, str(base_dir), weights_hash(base_dir)))
    for entry in found:
        if entry.adapter:
            assert base_dir is not None  # _base_dir refuses adapters without one
            model_hash = adapter_hash(entry.path, weights_hash(base_dir))
            targets.append(
                Target(
                    run,
                    entry.step,
                    str(entry.path),
                    model_hash,
                    entry.epoch,
                    entry.tokens_seen,
                    str(base_dir),
                )
            )
            continue
        check_weights(entry.path)
        model_hash = weights_hash(entry.path)
        targets.append(Target(run, entry.step, str(entry.path), model_hash, entry.epoch, entry.tokens_seen))
    return targets


def _base_dir(layout: Layout, base: str | None, found: list[Found]) -> Path | None:
    """The base model's folder: from `--base`, else as the checkpoints record it.

    Fine-tuning checkpoints need it (step 0, and the model an adapter is merged onto); snapshots of a
    pretraining run and a lone model have none unless given.
    """
    adapters = [f for f in found if f.adapter]
    name = base or layout.base
    where = "--base" if base else layout.where_base
    if name is None:
        if adapters:
            message = "cannot tell which base this adapter belongs to (its config names none); pass --base"
            raise InputError(str(adapters[0].path), message)
        if layout.kind in ("HF Trainer output", "verl checkpoints"):
            message = (
                "cannot tell the base model (step 0): no config.json _name_or_path or model card base_model "
                "names it; pass --base NAME_OR_PATH"
            )
            raise InputError(str(found[0].path if found else layout.run), message)
        return None
    try:
        return Path(_local_model(name))
    except InputError as exc:
        what = "the adapters' base model" if adapters else "the base model (step 0)"
        message = f"{what} '{name}' cannot be found: {exc.reason}; pass --base with its local folder"
        raise InputError(where or name, message) from exc


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
    run = run_name(run_dir)
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
        targets.append(Target(run, entry.step, str(path), entry.content_hash, entry.epoch, entry.tokens_seen))
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


def cache_root() -> Path:
    """$SFTSCOPE_CACHE, else $XDG_CACHE_HOME/sftscope, else ~/.cache/sftscope."""
    root = os.environ.get(HASH_CACHE_ENV) or Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "sftscope"
    return Path(root).expanduser()


def hash_cache_dir() -> Path:
    return cache_root() / "weight-hashes"


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
    key = json_sha256(sorted(stamp))[:32]
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


# What decides a merged adapter's weights besides its tensors and its base; the rest of
# adapter_config.json (where the base was, library versions) does not.
_UNMERGED_KEYS = ("base_model_name_or_path", "revision", "peft_version", "inference_mode")


def adapter_hash(adapter_dir: Path, base_hash: str) -> str:
    """The store's key for a PEFT adapter merged onto a base: the base's content hash, the adapter's
    weights and its merge settings. The same adapter on the same base is the same model, wherever
    it lies and whatever it is called."""
    weights = [adapter_dir / n for n in ADAPTER_WEIGHTS if (adapter_dir / n).is_file()]
    if not weights:
        raise InputError(
            str(adapter_dir), f"adapter without weights (expected {' or '.join(ADAPTER_WEIGHTS)})"
        )
    config = read_json_file(adapter_dir / ADAPTER_CONFIG)
    if not isinstance(config, dict):
        raise InputError(str(adapter_dir / ADAPTER_CONFIG), "expected an object", line=1)
    settings = json.dumps({k: v for k, v in config.items() if k not in _UNMERGED_KEYS}, sort_keys=True)
    identity = f"peft-merge\nbase {base_hash}\nadapter {cached_files_hash(weights)}\nconfig {settings}\n"
    return text_sha256(identity)


_TOKENIZER_FILES = ("tokenizer.json", "tokenizer.model", "vocab.json", "merges.txt", "vocab.txt")


def tokenizer_fingerprint(folder: Path) -> str | None:
    """What decides how a checkpoint's prompts are tokenized: vocabulary, added tokens and chat
    template (tokenizer.json's padding/truncation settings are left out). None: no tokenizer files."""
    parts = []
    for name in _TOKENIZER_FILES:
        path = folder / name
        if not path.is_file():
            continue
        if name == "tokenizer.json":
            data = read_json_file(path)
            parts.append(json.dumps([data.get("model"), data.get("added_tokens")], sort_keys=True))
        else:
            parts.append(file_sha256(path))
    if not parts:
        return None
    template = folder / "chat_template.jinja"
    config = folder / "tokenizer_config.json"
    if template.is_file():
        parts.append(template.read_text(encoding="utf-8"))
    elif config.is_file():
        parts.append(json.dumps(read_json_file(config).get("chat_template")))
    return text_sha256("\n".join(parts))


def check_tokenizers(found: list[Found]) -> None:
    """All checkpoints of one target tokenize alike; a full checkpoint has a tokenizer to load.

    An adapter without tokenizer files uses its base's (the merged folder gets a copy)."""
    seen: dict[str, Path] = {}
    for entry in found:
        fingerprint = tokenizer_fingerprint(entry.path)
        if fingerprint is None:
            if entry.adapter:
                continue
            looked = ", ".join(_TOKENIZER_FILES)
            message = f"no tokenizer in this checkpoint (looked for {looked}); save the tokenizer with it"
            raise InputError(str(entry.path), message)
        seen.setdefault(fingerprint, entry.path)
        if len(seen) > 1:
            first, other = seen.values()
            message = (
                f"mixed tokenizers: {first} and {other} tokenize differently (vocabulary, added tokens or "
                "chat template); evaluate them as separate targets"
            )
            raise InputError(str(other), message)


def served_target(target: Target, base_url: str, served_model: str | None) -> Target:
    """The target as an endpoint serves it: keyed by the endpoint and the model name it is asked for.

    The local weights' content hash cannot be the key: nothing proves the server holds those
    weights, and rows stored under it would be reused by a later local evaluation of them.
    """
    name = served_model or target.path  # what OpenAIBackend.load puts in each request
    # Without userinfo: credentials are no part of what is served, nor anything to store.
    identity = f"openai-endpoint {public_url(base_url).rstrip('/')} {name}"
    # Its own run name too: the store maps (run, step) to one model, and the local run keeps its own.
    run = f"openai:{served_model or target.run}@{public_url(base_url).split('/')[2]}"
    return replace(target, run=run, model_hash=text_sha256(identity))
