"""The examples of docs/specs.md are valid specs of their kinds (so the docs cannot drift)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sftscope.data.spec import load_spec
from sftscope.evaluate.spec import load_suite, load_task
from sftscope.study.spec import load_study_spec
from sftscope.train.config import load_config

REPO = Path(__file__).parents[2]


def example(heading: str) -> str:
    """The first YAML block under a `## heading` of docs/specs.md."""
    text = (REPO / "docs" / "specs.md").read_text(encoding="utf-8")
    section = text.split(f"\n## {heading}", 1)[1]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match is not None, heading
    return match.group(1)


@pytest.mark.parametrize(
    ("heading", "load"),
    [
        ("Data spec", load_spec),
        ("Task spec", load_task),
        ("Suite", lambda path: load_suite(path)[0]),
        ("Train config", load_config),
    ],
)
def test_each_example_loads(tmp_path: Path, heading: str, load: object) -> None:
    path = tmp_path / "spec.yaml"
    path.write_text(example(heading), encoding="utf-8")
    assert load(path)  # type: ignore[operator]


def test_the_study_example_loads(tmp_path: Path) -> None:
    path = tmp_path / "study.yaml"
    path.write_text(example("Study").replace("root: ..", f"root: {REPO}"), encoding="utf-8")
    assert load_study_spec(path).executor.kind == "local"
