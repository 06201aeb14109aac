"""Old spec forms still load for one release: each warns once, naming the new form, and gives the
same spec (and the same rows) as its new form; an error in an old spec still names its line."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.config.legacy import SpecFormWarning
from sftscope.data.build import run_spec
from sftscope.data.spec import dump_spec, load_spec
from sftscope.errors import InputError
from sftscope.evaluate.sources import load_examples
from sftscope.evaluate.spec import load_task
from sftscope.study.spec import SlurmExecutorSpec, load_study_spec

FIXTURES = Path(__file__).parents[1] / "fixtures"
SPECS = FIXTURES / "specs"


def test_an_old_data_spec_loads_warns_once_and_builds_the_same_rows() -> None:
    with pytest.warns(SpecFormWarning) as caught:
        old = load_spec(SPECS / "data-old-form.yaml")
    (warning,) = caught  # one notice per file, however many old forms it holds
    text = str(warning.message)
    assert "\n" not in text and "data-old-form.yaml" in text
    for new_form in ("{kind: file, path: PATH}", "{kind: mix, ...}", "{kind: verify, scorer: SCORER}"):
        assert new_form in text
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the new form warns of nothing
        new = load_spec(SPECS / "data-new-form.yaml")
    assert old == new and dump_spec(old) == dump_spec(new)
    old_rows, _, _ = run_spec(old, SPECS / "data-old-form.yaml")
    new_rows, _, _ = run_spec(new, SPECS / "data-new-form.yaml")
    assert [r.model_dump() for r in old_rows] == [r.model_dump() for r in new_rows] and len(new_rows) == 3


def test_an_old_task_spec_loads_warns_and_gives_the_same_task() -> None:
    with pytest.warns(SpecFormWarning, match=r"source: \{kind: G\}.*scorer: \{kind: S\}"):
        old = load_task(SPECS / "task-old-form.yaml")
    new = load_task(SPECS / "task-new-form.yaml")
    assert old == new and old.spec_hash == new.spec_hash
    assert load_examples(old.source, old.scorer.kind) == load_examples(new.source, new.scorer.kind)


def test_an_old_task_path_keeps_meaning_the_working_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(FIXTURES / "eval")
    with pytest.warns(SpecFormWarning, match=r"adapter: \{kind: A\}"):
        old = load_task(SPECS / "task-old-form-hf.yaml")
    new = load_task(SPECS / "task-new-form-hf.yaml")
    assert old == new and old.source.path == str(FIXTURES / "eval" / "mmlu_pro.parquet")
    rows = load_examples(old.source, old.scorer.kind)
    assert rows == load_examples(new.source, new.scorer.kind) and len(rows) == 2


def test_an_error_in_an_old_spec_names_its_line(tmp_path: Path) -> None:
    path = tmp_path / "old.yaml"
    path.write_text("sources:\n  - countdown:\n      n: 4\n      style: long\n")
    with pytest.warns(SpecFormWarning), pytest.raises(InputError) as error:
        load_spec(path)
    assert (error.value.line, error.value.field) == (4, "sources[0].style")


def test_an_old_study_executor_loads_with_its_slurm_options(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text("name: d\n")
    path = tmp_path / "study.yaml"
    path.write_text(
        "name: s\nroot: .\nbases: [{name: b, model: micro-weak, capability: weak}]\n"
        "conditions: [{name: c, data: d.yaml}]\npresets: [{name: p, preset: micro}]\n"
        "eval: {suite: micro-quick}\n"
        "executor: {kind: slurm, workers: 3, slurm: {partition: gpu, timeout_min: 30}}\n"
    )
    with pytest.warns(SpecFormWarning, match=r"executor: \{kind: slurm, partition: \.\.\., \.\.\.\}"):
        spec = load_study_spec(path)
    assert spec.executor == SlurmExecutorSpec(workers=3, partition="gpu", timeout_min=30)


def test_the_cli_shows_the_notice_as_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "old.yaml"
    spec.write_text("sources:\n  - file: rows.jsonl\n")
    result = CliRunner().invoke(app, ["data", "build", str(spec), "--out", str(tmp_path / "out")])
    notice = [line for line in result.output.splitlines() if line.startswith("warning:")]
    assert notice == [
        f"warning: {spec}: old spec form, read for one more release; write {{file: PATH}} -> "
        "{kind: file, path: PATH}"
    ]
    assert result.exit_code == 2 and "rows.jsonl" in result.output  # then the missing file, as before
