"""The study spec: valid specs load, bad ones name file, line and field; cells are stable and shared."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftscope.errors import InputError
from sftscope.study.cells import data_builds, expand_cells
from sftscope.study.runner import with_executor_options
from sftscope.study.spec import LocalExecutorSpec, RayExecutorSpec, SlurmExecutorSpec, load_study_spec

SPEC = """\
name: tiny
root: .
bases:
  - {name: weak, model: micro-weak, capability: weak}
  - {name: strong, model: micro-strong, capability: strong}
conditions:
  - {name: long, data: long.yaml}
  - {name: short, data: short.yaml}
  - {name: long-again, data: long.yaml}
presets:
  - {name: micro, preset: micro, overrides: {steps: 8, schedule: {every: 4}}}
seeds: [1, 2]
eval: {suite: micro-quick}
"""


def write_spec(folder: Path, text: str = SPEC) -> Path:
    (folder / "long.yaml").write_text("name: long\n")
    (folder / "short.yaml").write_text("name: short\n")
    path = folder / "study.yaml"
    path.write_text(text)
    return path


def test_full_product_and_shared_data(tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    cells = expand_cells(load_study_spec(path), path)
    assert len(cells) == 2 * 3 * 1 * 2
    # Two conditions point at the same spec content: built once.
    assert len(data_builds(cells)) == 2
    first = cells[0]
    assert first.id.startswith("weak__long__micro__s1-") and len(first.id.rsplit("-", 1)[1]) == 8


def test_ids_are_stable_and_follow_the_recipe(tmp_path: Path) -> None:
    path = write_spec(tmp_path)
    ids = [c.id for c in expand_cells(load_study_spec(path), path)]
    assert ids == [c.id for c in expand_cells(load_study_spec(path), path)]
    path.write_text(SPEC.replace("steps: 8", "steps: 9"))
    changed = [c.id for c in expand_cells(load_study_spec(path), path)]
    assert set(ids).isdisjoint(changed)


def test_grid_blocks_are_a_deduplicated_union(tmp_path: Path) -> None:
    text = SPEC + (
        "grids:\n"
        "  - {name: data, bases: [strong], seeds: [1]}\n"
        "  - {name: capability, conditions: [long], seeds: [1]}\n"
    )
    path = write_spec(tmp_path, text)
    cells = expand_cells(load_study_spec(path), path)
    names = [(c.base.name, c.condition.name) for c in cells]
    assert names == [("strong", "long"), ("strong", "short"), ("strong", "long-again"), ("weak", "long")]
    assert cells[0].blocks == ("data", "capability")


@pytest.mark.parametrize(
    ("bad", "line", "field"),
    [
        (SPEC.replace("seeds: [1, 2]", "seeds: [1, 2]\nlr: 3"), 13, "lr"),
        (SPEC.replace("capability: weak}", "capability: weak, size: 3}"), 4, "bases[0].size"),
        (SPEC.replace("name: strong,", "name: weak,"), 5, "bases[1].name"),
        (SPEC.replace("data: short.yaml", "data: missing.yaml"), 8, "conditions[1].data"),
        (SPEC.replace("name: tiny", "name: a/b"), 1, "name"),
        (SPEC + "grids:\n  - {name: g, bases: [medium]}\n", 15, "grids[0].bases[0]"),
        (SPEC.replace("preset: micro, ", ""), 11, "presets[0]"),
        # A recipe must make a valid train config, checked here and not when its first cell trains.
        (SPEC.replace("steps: 8", "stepz: 8"), 11, "presets[0].overrides.stepz"),
        (SPEC.replace("every: 4", "every: often"), 11, "presets[0].overrides.schedule.every"),
        (SPEC.replace("preset: micro,", "preset: micr,"), 11, "presets[0].preset"),
        # Executors are told apart by kind; each kind takes only its own options.
        (SPEC + "executor:\n  kind: k8s\n", 15, "executor.kind"),
        (SPEC + "executor: {kind: local, partition: gpu}\n", 14, "executor.partition"),
    ],
)
def test_bad_specs_name_file_line_and_field(tmp_path: Path, bad: str, line: int, field: str) -> None:
    path = write_spec(tmp_path, bad)
    with pytest.raises(InputError) as info:
        load_study_spec(path)
    assert info.value.file == str(path)
    assert (info.value.line, info.value.field) == (line, field)


def test_missing_file_and_bad_yaml(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_study_spec(tmp_path / "nope.yaml")
    path = write_spec(tmp_path, "name: [unclosed\n")
    with pytest.raises(InputError, match="invalid YAML"):
        load_study_spec(path)


def test_a_checkpoints_condition_is_checked(tmp_path: Path) -> None:
    (tmp_path / "trl-out").mkdir()
    both = SPEC.replace(
        "{name: short, data: short.yaml}", "{name: short, data: short.yaml, checkpoints: trl-out}"
    )
    neither = SPEC.replace("{name: short, data: short.yaml}", "{name: short}")
    missing = SPEC.replace("{name: short, data: short.yaml}", "{name: short, checkpoints: gone}")
    for text, words in (
        (both, "set either `data`"),
        (neither, "set either `data`"),
        (missing, "folder not found"),
    ):
        with pytest.raises(InputError, match=words) as caught:
            load_study_spec(write_spec(tmp_path, text))
        assert (
            caught.value.line == 8 and caught.value.field and caught.value.field.startswith("conditions[1]")
        )
    several = SPEC.replace("{name: short, data: short.yaml}", "{name: short, checkpoints: trl-out}")
    path = write_spec(tmp_path, several)
    with pytest.raises(InputError, match="condition 'short' names one finished run"):
        expand_cells(load_study_spec(path), path)  # 2 bases x 2 seeds
    path = write_spec(
        tmp_path, several + "grids:\n  - {name: q, bases: [strong], conditions: [short], seeds: [1]}\n"
    )
    (cell,) = expand_cells(load_study_spec(path), path)
    assert cell.data is None and cell.checkpoints == tmp_path / "trl-out"


def test_unknown_executor_kind_lists_the_known_ones(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown kind 'k8s'; known: local, ray, slurm"):
        load_study_spec(write_spec(tmp_path, SPEC + "executor: {kind: k8s}\n"))


def test_command_line_executor_options_switch_kind_and_keep_the_shared_options(tmp_path: Path) -> None:
    spec = load_study_spec(
        write_spec(tmp_path, SPEC + "executor: {kind: slurm, partition: gpu, workers: 4}\n")
    )
    assert isinstance(spec.executor, SlurmExecutorSpec) and spec.executor.partition == "gpu"
    ray = with_executor_options(spec, "ray", None, "10.0.0.1:6379").executor
    assert isinstance(ray, RayExecutorSpec) and (ray.address, ray.workers) == ("10.0.0.1:6379", 4)
    assert isinstance(with_executor_options(spec, "local", 2, None).executor, LocalExecutorSpec)
    assert with_executor_options(spec, None, 8, None).executor.partition == "gpu"  # type: ignore[union-attr]
    with pytest.raises(InputError, match="unknown field") as error:
        with_executor_options(spec, "local", None, "10.0.0.1:6379")
    assert (error.value.file, error.value.field) == ("command line", "address")
