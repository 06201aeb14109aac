"""Which checkpoints a folder (or hub repo) holds, whichever trainer wrote it.

Known layouts of a local folder, tried in this order:
- an sftscope run: `manifest.json` + `checkpoints/step-XXXXXX/`;
- an HF Trainer / TRL / LLaMA-Factory output: `checkpoint-N/` folders (full weights or PEFT adapters),
  `trainer_state.json` in each for epoch and tokens seen;
- a verl checkpoint root: `global_step_N/` with an HF export (`actor/huggingface/`, `huggingface/`,
  or the folder itself) or a LoRA adapter (`actor/lora_adapter/`);
- a folder of hub snapshots: subfolders named after step revisions (`step1000/`), or a hub cache
  folder (`models--ORG--NAME/` with `refs/` and `snapshots/`);
- one model (or one PEFT adapter).
A hub repo with `--revisions` lists its step branches through huggingface_hub and downloads each.

This module only finds the checkpoints; `targets` hashes them and checks them against each other.
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import huggingface_hub
import yaml
from huggingface_hub.utils import HfHubHTTPError

from sftscope.errors import InputError
from sftscope.models.loading import WEIGHT_FILES
from sftscope.rundir import is_run_dir, list_checkpoints, load_manifest, run_name

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")
TRAINER_STATE = "trainer_state.json"
LOOKED_FOR = (
    "an sftscope run (manifest.json + checkpoints/)",
    "an HF Trainer/TRL/LLaMA-Factory output (checkpoint-N/ folders)",
    "a verl checkpoint root (global_step_N/ folders)",
    "a folder of step snapshots (stepN/ folders, or a hub cache folder with refs/ and snapshots/)",
    "a model folder (config.json + weights) or a PEFT adapter (adapter_config.json + adapter weights)",
)
VERL_EXPORTS = ("actor/huggingface", "huggingface", ".")
VERL_ADAPTER = "actor/lora_adapter"
_CHECKPOINT = re.compile(r"checkpoint-(\d+)")
_GLOBAL_STEP = re.compile(r"global_step_(\d+)")
_STEP = re.compile(r"(?:^|[^a-z])step[-_]?(\d+)", re.IGNORECASE)
_TOKENS = re.compile(r"tokens[-_]?(\d+(?:\.\d+)?)([KMBT]?)", re.IGNORECASE)
_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "T": 10**12}


@dataclass(frozen=True)
class Found:
    """One checkpoint a layout holds."""

    step: int
    path: Path
    """A model folder, or a PEFT adapter folder (`adapter`)."""
    adapter: bool = False
    epoch: float | None = None
    tokens_seen: int | None = None


@dataclass(frozen=True)
class Layout:
    """What a folder or repo holds: its checkpoints and, where it says, their base model."""

    kind: str
    run: str
    """The run's name in the store."""
    checkpoints: list[Found]
    base: str | None
    """The base model's name or path as the checkpoints record it (None: they do not say)."""
    where_base: str
    """Where `base` was read (for errors)."""


def has_weights(folder: Path) -> bool:
    return any((folder / name).is_file() for name in WEIGHT_FILES) or any(folder.glob("model-*.safetensors"))


def is_adapter(folder: Path) -> bool:
    return (folder / ADAPTER_CONFIG).is_file()


def is_model(folder: Path) -> bool:
    return (folder / "config.json").is_file() and has_weights(folder)


def read_json_file(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(str(path), f"malformed JSON: {exc.msg}", line=exc.lineno) from exc


def parse_revisions(text: str | None) -> list[str] | None:
    """`--revisions`: comma-separated names or glob patterns (`step*`)."""
    if text is None:
        return None
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise InputError("--revisions", f"expected comma-separated revision names or patterns, got '{text}'")
    return names


def step_of_name(name: str) -> int | None:
    """The step a revision or folder name states (`step1000`, `stage1-step1000-tokens4B`)."""
    match = _STEP.search(name)
    return int(match.group(1)) if match else None


def tokens_of_name(name: str) -> int | None:
    """Tokens seen, where a revision name states them (OLMo's `...-tokens4B`)."""
    match = _TOKENS.search(name)
    if not match:
        return None
    return int(float(match.group(1)) * _SCALE[match.group(2).upper()])


def select_revisions(available: Iterable[str], wanted: list[str], where: str) -> list[str]:
    """The available revisions named or matched by `wanted`, in the order first matched."""
    available = list(available)
    chosen: list[str] = []
    for pattern in wanted:
        if any(char in pattern for char in "*?["):
            matched = sorted(fnmatch.filter(available, pattern), key=lambda n: (step_of_name(n) or 0, n))
            if not matched:
                message = f"no revision matches '{pattern}'; revisions: {_some(available)}"
                raise InputError(where, message, field="--revisions")
        elif pattern in available:
            matched = [pattern]
        else:
            message = f"revision '{pattern}' does not exist; revisions: {_some(available)}"
            raise InputError(where, message, field="--revisions")
        chosen += [name for name in matched if name not in chosen]
    return chosen


def _some(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(sorted(names)[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "") if names else "none"


def detect_layout(folder: Path, revisions: list[str] | None = None) -> Layout:
    """The layout of a local folder that is not an sftscope run (those go through `sftscope.rundir`)."""
    if not folder.is_dir():
        raise InputError(str(folder), "no such folder")
    if revisions is not None:
        detectors: list[Callable[[Path, list[str] | None], Layout | None]] = [_snapshots]
    else:
        detectors = [_trainer_output, _verl_root, _snapshots, _single]
    for detect in detectors:
        layout = detect(folder, revisions)
        if layout is not None:
            return layout
    if revisions is not None:
        message = "--revisions selects from a folder of step snapshots or a hub repo; this folder is neither"
        raise InputError(str(folder), message)
    looked = "; ".join(LOOKED_FOR)
    raise InputError(str(folder), f"matches no known checkpoint layout; looked for {looked}")


def holds_numbered_checkpoints(folder: Path) -> bool:
    """An HF Trainer or verl output folder (checkpoint-N/ or global_step_N/ inside)."""
    return folder.is_dir() and bool(_numbered(folder, _CHECKPOINT) or _numbered(folder, _GLOBAL_STEP))


def _numbered(folder: Path, pattern: re.Pattern[str]) -> list[tuple[int, Path]]:
    found = []
    for child in folder.iterdir():
        match = pattern.fullmatch(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def _trainer_output(folder: Path, _: list[str] | None) -> Layout | None:
    numbered = _numbered(folder, _CHECKPOINT)
    if not numbered:
        return None
    found = [_trainer_checkpoint(step, path) for step, path in numbered]
    final = _final_model(folder, {f.step for f in found})
    base, where = _recorded_base([f.path for f in found] + [folder])
    return Layout("HF Trainer output", run_name(folder), found + final, base, where)


def _trainer_checkpoint(step: int, path: Path) -> Found:
    adapter = is_adapter(path)
    if not (adapter and any((path / n).is_file() for n in ADAPTER_WEIGHTS)) and not has_weights(path):
        looked = ", ".join((*WEIGHT_FILES, *ADAPTER_WEIGHTS))
        message = (
            f"holds no model weights (looked for {looked}); a DeepSpeed/FSDP run may have saved only "
            "sharded state: save with save_only_model=True, or consolidate the weights into the folder"
        )
        raise InputError(str(path), message)
    epoch, tokens = _trainer_state(path / TRAINER_STATE, step)
    return Found(step, path, adapter, epoch, tokens)


def _final_model(folder: Path, saved: set[int]) -> list[Found]:
    """The model `trainer.save_model()` wrote beside the checkpoints, when its step was not saved as one."""
    state = folder / TRAINER_STATE
    if not (is_model(folder) or is_adapter(folder)) or not state.is_file():
        return []
    step = read_json_file(state).get("global_step")
    if not isinstance(step, int) or step in saved:
        return []
    epoch, tokens = _trainer_state(state, step)
    return [Found(step, folder, is_adapter(folder), epoch, tokens)]


def _trainer_state(path: Path, step: int) -> tuple[float | None, int | None]:
    """(epoch, tokens seen) at `step` from trainer_state.json, where recorded."""
    if not path.is_file():
        return None, None
    state = read_json_file(path)
    if not isinstance(state, dict):
        raise InputError(str(path), "expected an object {global_step, epoch, log_history, ...}", line=1)
    logged = [e for e in state.get("log_history") or [] if isinstance(e, dict) and e.get("step") == step]
    epoch = state.get("epoch") if state.get("global_step") == step else None
    tokens = state.get("num_input_tokens_seen") if state.get("global_step") == step else None
    for entry in logged:
        epoch = entry.get("epoch", epoch)
        tokens = entry.get("num_input_tokens_seen", tokens)
    return (
        float(epoch) if isinstance(epoch, int | float) else None,
        tokens if isinstance(tokens, int) else None,
    )


def _verl_root(folder: Path, _: list[str] | None) -> Layout | None:
    numbered = _numbered(folder, _GLOBAL_STEP)
    if not numbered:
        return None
    found = [_verl_checkpoint(step, path) for step, path in numbered]
    base, where = _recorded_base([f.path for f in found])
    return Layout("verl checkpoints", run_name(folder), found, base, where)


def _verl_checkpoint(step: int, path: Path) -> Found:
    if is_adapter(path / VERL_ADAPTER):
        return Found(step, path / VERL_ADAPTER, adapter=True)
    for export in VERL_EXPORTS:
        if is_model(path / export):
            return Found(step, (path / export).resolve())
    exports = [path / e for e in VERL_EXPORTS[:2] if (path / e / "config.json").is_file()]
    if exports:
        message = (
            "holds a config but no weights: verl saved FSDP shards only. Add hf_model to "
            "checkpoint.save_contents, or merge them: python -m verl.model_merger merge --backend fsdp "
            f"--local_dir {exports[0].parent} --target_dir {exports[0]}"
        )
        raise InputError(str(exports[0]), message)
    looked = ", ".join(f"{e}/" for e in (*VERL_EXPORTS[:2], VERL_ADAPTER))
    raise InputError(str(path), f"holds no HF export (looked for {looked} with config.json and weights)")


def _snapshots(folder: Path, revisions: list[str] | None) -> Layout | None:
    """Step-named model folders, or a hub cache folder whose refs name step revisions."""
    named = _cached_refs(folder) or {c.name: c for c in folder.iterdir() if c.is_dir()}
    named = {name: path for name, path in named.items() if step_of_name(name) is not None}
    if not any(is_model(path) or is_adapter(path) for path in named.values()):
        return None
    chosen = select_revisions(named, revisions, str(folder)) if revisions is not None else list(named)
    run = run_name(folder).removeprefix("models--").replace("--", "/")
    return Layout("step snapshots", run, snapshot_checkpoints({n: named[n] for n in chosen}), None, "")


def _cached_refs(folder: Path) -> dict[str, Path]:
    """A hub cache folder's branches and tags, each the snapshot folder it points to."""
    refs = folder / "refs"
    if not refs.is_dir() or not (folder / "snapshots").is_dir():
        return {}
    found = {}
    for ref in refs.rglob("*"):
        snapshot = folder / "snapshots" / ref.read_text().strip() if ref.is_file() else None
        if snapshot is not None and snapshot.is_dir():
            found[str(ref.relative_to(refs))] = snapshot
    return found


def snapshot_checkpoints(named: dict[str, Path]) -> list[Found]:
    """One checkpoint per revision, its step (and tokens) read from the revision's name."""
    found = []
    for name, path in named.items():
        step = step_of_name(name)
        if step is None:
            raise InputError(name, "cannot tell this revision's step: expected a name such as step1000")
        if not (has_weights(path) or any((path / n).is_file() for n in ADAPTER_WEIGHTS)):
            looked = ", ".join((*WEIGHT_FILES, *ADAPTER_WEIGHTS))
            raise InputError(str(path), f"holds no model weights (looked for {looked})")
        found.append(Found(step, path, is_adapter(path), tokens_seen=tokens_of_name(name)))
    steps = [f.step for f in found]
    duplicated = sorted({s for s in steps if steps.count(s) > 1})
    if duplicated:
        names = [n for n in named if step_of_name(n) in duplicated]
        raise InputError(", ".join(names), f"several revisions name step {duplicated[0]}: select one")
    return sorted(found, key=lambda f: f.step)


def _single(folder: Path, _: list[str] | None) -> Layout | None:
    if not (is_model(folder) or is_adapter(folder)):
        return None
    base, where = _recorded_base([folder]) if is_adapter(folder) else (None, "")
    return Layout("model", run_name(folder), [Found(0, folder, is_adapter(folder))], base, where)


def _recorded_base(folders: list[Path]) -> tuple[str | None, str]:
    """The base model the checkpoints name, and the file that names it: an adapter's
    base_model_name_or_path, a config's _name_or_path (transformers 4), or a model card's base_model."""
    for folder in folders:
        adapter = folder / ADAPTER_CONFIG
        if adapter.is_file():
            name = read_json_file(adapter).get("base_model_name_or_path")
            if name:
                return str(name), str(adapter)
        config = folder / "config.json"
        if config.is_file():
            name = read_json_file(config).get("_name_or_path")
            if name and Path(name).resolve() != folder.resolve():
                return str(name), str(config)
        card = _card_base(folder / "README.md")
        if card:
            return card, str(folder / "README.md")
    return None, ""


def _card_base(path: Path) -> str | None:
    """`base_model:` of a model card's YAML front matter (TRL and PEFT write one)."""
    if not path.is_file():
        return None
    text = path.read_text(encoding="utf-8", errors="replace")
    if not text.startswith("---"):
        return None
    try:
        front = yaml.safe_load(text.split("---", 2)[1])
    except (yaml.YAMLError, IndexError):
        return None
    base = front.get("base_model") if isinstance(front, dict) else None
    if isinstance(base, list):
        base = base[0] if base else None
    return str(base) if base and base != "None" else None


def hub_layout(repo: str, revisions: list[str]) -> Layout:
    """A hub repo's selected revisions (branches or tags), each downloaded to the HF cache."""
    try:
        refs = huggingface_hub.list_repo_refs(repo)
    except (HfHubHTTPError, OSError, ValueError) as exc:
        message = f"not a local folder, and its hub revisions cannot be listed ({type(exc).__name__}: {exc})"
        raise InputError(repo, message) from exc
    available = [ref.name for ref in (*refs.branches, *refs.tags)]
    chosen = select_revisions(available, revisions, repo)
    named = {}
    for name in chosen:
        try:
            named[name] = Path(huggingface_hub.snapshot_download(repo, revision=name))
        except (HfHubHTTPError, OSError, ValueError) as exc:
            raise InputError(f"{repo}@{name}", f"cannot download this revision ({exc})") from exc
    return Layout("hub revisions", repo, snapshot_checkpoints(named), None, "")


def looks_like_local(target: str) -> bool:
    """A path the user meant as a folder (it exists, or is written as a path)."""
    return Path(target).exists() or target.startswith((".", "/", "~")) or target.count("/") != 1


def saved_steps(target: str | Path) -> list[int]:
    """The checkpoint steps of a run of any layout, ascending ([] when it has none yet)."""
    path = Path(target)
    if is_run_dir(path):
        return [entry.step for entry in list_checkpoints(load_manifest(path))]
    if not path.is_dir():
        return []
    return sorted(found.step for found in detect_layout(path).checkpoints)


def run_dir_or_layout(target: str, revisions: list[str] | None) -> Path | Layout:
    """An sftscope run directory, or any other trainer's layout."""
    path = Path(target)
    if is_run_dir(path):
        if revisions is not None:
            raise InputError(
                target, "--revisions selects hub revisions or step snapshots, not sftscope steps"
            )
        return path
    if revisions is not None and not looks_like_local(target):
        return hub_layout(target, revisions)
    return detect_layout(path, revisions)
