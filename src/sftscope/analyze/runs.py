"""Which data condition and base model each run is: from the run directory, or from the caller."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from sftscope.analysis_file import RunInfo, RunMeta
from sftscope.config.specfile import validation_error
from sftscope.errors import InputError
from sftscope.rundir import MANIFEST, read_manifest

RUNS_FILE = "runs.json"
"""Run metadata a study writes next to its store: {run: {condition, base, capability, preset, seed}}."""


def _run_dir(store_dir: Path, run: str, only_run: bool) -> Path | None:
    """A run's directory: a child named after it, or the store's own directory when it holds one run."""
    candidates = [store_dir / run, store_dir / "runs" / run] + ([store_dir] if only_run else [])
    for candidate in candidates:
        if (candidate / "config.yaml").is_file() or (candidate / MANIFEST).is_file():
            return candidate
    return None


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        line = err.problem_mark.line + 1 if getattr(err, "problem_mark", None) else None
        raise InputError(path, f"invalid YAML: {err}", line=line) from err
    if not isinstance(data, dict):
        raise InputError(path, "expected a mapping at the top level")
    return data


def _from_run_dir(run: str, directory: Path) -> RunInfo:
    config = _read_yaml(directory / "config.yaml") if (directory / "config.yaml").is_file() else {}
    manifest = read_manifest(directory) if (directory / MANIFEST).is_file() else {}
    base = config.get("model") or manifest.get("base_model")
    data = config.get("data")
    return RunInfo(
        run=run,
        condition=Path(str(data).rstrip("/")).name if data else "unknown",
        base=Path(str(base).rstrip("/")).name if base else "unknown",
        preset=config.get("preset"),
        seed=config.get("seed"),
    )


def read_runs_file(path: Path) -> dict[str, RunMeta]:
    """A runs.json file, {run: {condition, base, capability, preset, seed, ...}}, by run; bad content
    is an InputError at its line and field (an unknown key too: a misspelt one would silently leave
    its run's condition or base unknown)."""
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text)
    except FileNotFoundError as err:
        raise InputError(path, "file not found") from err
    except json.JSONDecodeError as err:
        raise InputError(path, f"malformed JSON: {err.msg}", line=err.lineno) from err
    if not isinstance(data, dict):
        raise InputError(path, "expected an object {run: {condition, base, ...}}", line=1)
    try:
        return TypeAdapter(dict[str, RunMeta]).validate_python(data)
    except ValidationError as exc:
        try:  # JSON is YAML: its nodes give the lines
            root = yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.YAMLError:
            root = None
        raise validation_error(str(path), root, exc) from exc


def resolve_runs(
    runs: Iterable[str],
    store_dir: Path,
    runs_meta: Mapping[str, RunMeta | Mapping[str, Any]] | None = None,
) -> tuple[list[RunInfo], list[str]]:
    """RunInfo for every run (caller's metadata first, then the run directory), plus notes on gaps."""
    infos, notes = [], []
    runs_meta = runs_meta or {}
    runs = sorted(runs)
    for run in runs:
        given = runs_meta.get(run)
        if given is not None:
            fields = given.model_dump() if isinstance(given, RunMeta) else dict(given)
            fields["run"] = run
            infos.append(RunInfo.model_validate(fields))
            continue
        directory = _run_dir(Path(store_dir), run, only_run=len(runs) == 1)
        if directory is None:
            infos.append(RunInfo(run=run))
            notes.append(f"run {run}: no metadata given and no run directory found; condition/base unknown")
        else:
            infos.append(_from_run_dir(run, directory))
    return infos, notes
