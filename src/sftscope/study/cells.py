"""Cells: one training run each, with a stable, readable, hash-suffixed id.

The id's hash covers what decides the run's weights (base, data spec content, recipe, seed) and not
the labels, so editing a recipe makes a new cell while renaming nothing changes an existing one's
results; the readable part makes directories and tables legible.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sftscope.errors import InputError
from sftscope.hashing import file_sha256, json_sha256
from sftscope.study.spec import BaseSpec, ConditionSpec, PresetSpec, StudySpec, resolve_path


@dataclass(frozen=True)
class DataBuild:
    """One data spec to build; cells with the same spec content share it."""

    key: str
    """Directory name under STUDY/data: the spec's stem and content hash."""
    spec_path: Path
    """The data spec file."""
    spec_hash: str
    """sha256 of the data spec file."""


@dataclass(frozen=True)
class Cell:
    """One training run of the grid."""

    id: str
    """'{base}__{condition}__{preset}__s{seed}-{hash8}'."""
    base: BaseSpec
    condition: ConditionSpec
    preset: PresetSpec
    seed: int
    data: DataBuild | None
    """None for a condition of `checkpoints` (trained elsewhere)."""
    config_path: Path | None
    """The preset's train config file, resolved."""
    config_hash: str
    """sha256 of everything that decides the run's weights."""
    blocks: tuple[str, ...]
    """The grid blocks (questions) this cell belongs to."""
    checkpoints: Path | None = None
    """The run its condition names to sweep instead of training (resolved)."""


def data_build(spec: StudySpec, spec_path: Path, condition: ConditionSpec) -> DataBuild | None:
    if condition.data is None:
        return None
    path = resolve_path(spec, spec_path, condition.data)
    digest = file_sha256(path)
    return DataBuild(key=f"{path.stem}-{digest[:10]}", spec_path=path, spec_hash=digest)


def _config_hash(
    base: BaseSpec, data: DataBuild | None, preset: PresetSpec, config: Path | None, seed: int
) -> str:
    identity = {
        "model": base.model,
        "data": data.spec_hash if data else None,
        "preset": preset.preset,
        "config": file_sha256(config) if config else None,
        "overrides": preset.overrides,
        "seed": seed,
    }
    return json_sha256(identity)


def expand_cells(spec: StudySpec, spec_path: str | Path) -> list[Cell]:
    """The union of the grid blocks (the full product without blocks), in spec order, deduplicated."""
    spec_path = Path(spec_path)
    bases = {b.name: b for b in spec.bases}
    conditions = {c.name: c for c in spec.conditions}
    presets = {p.name: p for p in spec.presets}
    blocks = spec.grids or []
    plan = [
        (
            block.name,
            block.bases or list(bases),
            block.conditions or list(conditions),
            block.presets or list(presets),
            block.seeds or spec.seeds,
        )
        for block in blocks
    ] or [("all", list(bases), list(conditions), list(presets), spec.seeds)]
    builds = {name: data_build(spec, spec_path, c) for name, c in conditions.items()}
    cells: dict[str, Cell] = {}
    for block, base_names, condition_names, preset_names, seeds in plan:
        for b in base_names:
            for c in condition_names:
                for p in preset_names:
                    for seed in seeds:
                        preset = presets[p]
                        config = resolve_path(spec, spec_path, preset.config) if preset.config else None
                        checkpoints = conditions[c].checkpoints
                        if checkpoints is None:
                            digest = _config_hash(bases[b], builds[c], preset, config, seed)
                        else:  # what decides the sweep: the run's folder and the base as step 0
                            external = resolve_path(spec, spec_path, checkpoints)
                            digest = json_sha256([bases[b].model, str(external)])
                        cell_id = f"{b}__{c}__{p}__s{seed}-{digest[:8]}"
                        if cell_id in cells:
                            old = cells[cell_id]
                            cells[cell_id] = Cell(**{**old.__dict__, "blocks": (*old.blocks, block)})
                            continue
                        cells[cell_id] = Cell(
                            id=cell_id,
                            base=bases[b],
                            condition=conditions[c],
                            preset=preset,
                            seed=seed,
                            data=builds[c],
                            config_path=config,
                            config_hash=digest,
                            blocks=(block,),
                            checkpoints=None if checkpoints is None else external,
                        )
    _check_one_cell_per_run(list(cells.values()), spec_path)
    return list(cells.values())


def _check_one_cell_per_run(cells: list[Cell], spec_path: Path) -> None:
    """A `checkpoints` condition is one finished run: one base, preset and seed made it."""
    seen: dict[str, str] = {}
    for cell in cells:
        if cell.checkpoints is None:
            continue
        other = seen.setdefault(cell.condition.name, cell.id)
        if other != cell.id:
            message = (
                f"condition '{cell.condition.name}' names one finished run (checkpoints) but the grid "
                f"gives it several cells ({other}, {cell.id}): give it one base, preset and seed in a grid"
            )
            raise InputError(str(spec_path), message, field="grids")


def data_builds(cells: list[Cell]) -> list[DataBuild]:
    """The distinct data builds of these cells, in first-use order."""
    return list({cell.data.key: cell.data for cell in cells if cell.data}.values())
