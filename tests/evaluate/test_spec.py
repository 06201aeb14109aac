"""Task specs and suites: built-ins load, bad specs are located errors, overrides and hashes behave."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftscope.config.overrides import check_scopes
from sftscope.data.microworld import domains
from sftscope.errors import InputError
from sftscope.evaluate.spec import builtin_names, load_suite, load_task
from sftscope.models.micro import PRIMITIVES_FIRST

GOOD = """\
name: demo
domain: general
source:
  kind: file
  path: rows.jsonl
  mapping: {question: q, answer: a}
sampling: {temperature: 0.6, n: 4}
scorer: exact
metrics: [avg@4, pass@2, maj@4]
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return path


def test_every_builtin_task_and_suite_loads() -> None:
    names = builtin_names()
    assert {"micro", "micro-quick", "paper"} <= set(names["suites"])
    for task in names["tasks"]:
        assert load_task(task).name == task
    micro_quick = load_suite("micro-quick")[1]
    assert all(t.source.n == 8 for t in micro_quick)
    # A quick slice shares the full suite's spec hashes, so its rows are reused by a `micro` sweep.
    full = {t.name: t.spec_hash for t in load_suite("micro")[1]}
    assert all(full[t.name] == t.spec_hash for t in micro_quick)


@pytest.mark.parametrize("suite", ["micro", "micro2"])
def test_micro_suites_cover_every_domain_of_their_world(suite: str) -> None:
    """micro evaluates the shipped bases' default mix; micro2 the primitives-first presets' mix."""
    tasks = {t.name: t for t in load_suite(suite)[1]}
    mix = [d.name for d in domains() if d.weight > 0] if suite == "micro" else list(PRIMITIVES_FIRST)
    for domain in (d for d in domains() if d.name in mix):
        task = tasks[domain.name]
        assert task.domain == domain.tag and task.scorer.kind == domain.scorer
        assert task.source.domains == [domain.name]
    crossing = [t for t in tasks.values() if t.domain == "cross-domain"]
    assert len(crossing) >= (6 if suite == "micro" else 4)
    expect = {
        tasks["safety_forbidden"].scorer.params["expect"],
        tasks["safety_benign"].scorer.params["expect"],
    }
    assert expect == {"refuse", "comply"}


def test_micro5_suite_is_micro2_plus_the_decision_its_bases_learned() -> None:
    micro2 = [t.name for t in load_suite("micro2")[1]]
    micro5 = [t.name for t in load_suite("micro5")[1]]
    assert set(micro5) == set(micro2) | {"target_match"}


def test_paper_specs_use_the_reference_sampling() -> None:
    tasks = {t.name: t for t in load_suite("paper")[1]}
    for task in tasks.values():
        assert (task.sampling.temperature, task.sampling.top_p, task.prompt.system) == (0.6, 0.95, None)
    assert {n: tasks[n].sampling.n for n in ("math500", "aime24", "gpqa_diamond", "livecodebench")} == {
        "math500": 3,
        "aime24": 10,
        "gpqa_diamond": 3,
        "livecodebench": 3,
    }
    assert tasks["mmlu_pro_1k"].source.n == 1000 and tasks["hexphi"].domain == "safety"


def test_unknown_field_is_located(tmp_path: Path) -> None:
    path = _write(
        tmp_path, GOOD.replace("sampling: {temperature: 0.6, n: 4}", "sampling: {temprature: 0.6, n: 4}")
    )
    with pytest.raises(InputError) as caught:
        load_task(path)
    error = caught.value
    assert (error.line, error.field, error.reason) == (7, "sampling.temprature", "unknown field")
    nested = _write(
        tmp_path, GOOD.replace("mapping: {question: q, answer: a}", "mapping: {question: q, gold: a}")
    )
    with pytest.raises(InputError) as caught:
        load_task(nested)
    assert (caught.value.line, caught.value.field) == (6, "source.mapping.gold")


def test_every_problem_of_a_spec_is_listed_with_its_line(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        GOOD.replace("sampling: {temperature: 0.6, n: 4}", "sampling: {temprature: 0.6, n: four}").replace(
            "domain: general", "domain: general\nowner: me"
        ),
    )
    with pytest.raises(InputError) as caught:
        load_task(path)
    error = caught.value
    # The first is the error's own place; each other problem follows on a line of its own.
    first, *also = error.reason.split("\n")
    assert (error.line, error.field, first) == (3, "owner", "unknown field")
    assert sorted(also) == [
        "  also line 8, field 'sampling.n': Input should be a valid integer, unable to parse string as an "
        "integer",
        "  also line 8, field 'sampling.temprature': unknown field",
    ]


def test_unknown_scorer_and_bad_params_are_located(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown kind 'nope'; known: math, countdown, ") as caught:
        load_task(_write(tmp_path, GOOD.replace("scorer: exact", "scorer: nope")))
    assert (caught.value.line, caught.value.field) == (8, "scorer")
    with pytest.raises(InputError, match="unknown kind 'nope'") as caught:
        load_task(_write(tmp_path, GOOD.replace("scorer: exact", "scorer:\n  kind: nope")))
    assert (caught.value.line, caught.value.field) == (9, "scorer.kind")
    with pytest.raises(InputError, match="expect") as caught:
        load_task(
            _write(tmp_path, GOOD.replace("scorer: exact", "scorer: {kind: refusal, params: {expect: x}}"))
        )
    assert caught.value.line == 8


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (("metrics: [avg@4, pass@2, maj@4]", "metrics: [avg@5]"), "k <= sampling.n"),
        (("metrics: [avg@4, pass@2, maj@4]", "metrics: [best@2]"), "not avg@k"),
        (("sampling: {temperature: 0.6, n: 4}", "sampling: {temperature: 0, n: 4}"), "identical samples"),
        (("domain: general", "domain: maths"), "domain"),
        (
            ("  kind: file\n", "  kind: url\n"),
            "unknown kind 'url'; known: microworld, reasoning_gym, file, hf",
        ),
        (("  kind: file\n", ""), "missing kind; known: microworld, reasoning_gym, file, hf"),
    ],
)
def test_bad_values(tmp_path: Path, change: tuple[str, str], message: str) -> None:
    with pytest.raises(InputError, match=message):
        load_task(_write(tmp_path, GOOD.replace(*change)))


def test_overrides_scoped_and_unscoped(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    assert load_task(path, ["sampling.max_new_tokens=7"]).sampling.max_new_tokens == 7
    assert load_task(path, ["demo:sampling.max_new_tokens=7"]).sampling.max_new_tokens == 7
    assert load_task(path, ["other:sampling.max_new_tokens=7"]).sampling.max_new_tokens == 256
    check_scopes(["demo:a=1", "b=2"], ["demo"])
    with pytest.raises(InputError, match="names task 'other'"):
        check_scopes(["other:a=1"], ["demo"])
    with pytest.raises(InputError, match="no built-in task 'nope'"):
        load_task("nope")


def test_a_bad_override_is_named_without_the_files_line(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD)
    with pytest.raises(InputError) as caught:
        load_task(path, ["sampling.temperature=hot", "sampling.topk=3"])
    error = caught.value
    # The file holds a temperature (line 6), but the bad one came from the override.
    assert (error.file, error.line, error.field) == (f"{path} + overrides", None, "sampling.topk")
    assert error.reason.split("\n")[1].startswith("  also field 'sampling.temperature': Input should be")


def test_spec_hash_tracks_what_changes_a_row() -> None:
    base = load_task("math500")
    assert load_task("math500", ["sampling.n=5"]).spec_hash == base.spec_hash  # more samples reuse rows
    assert load_task("math500", ["source.path=x"]).spec_hash == base.spec_hash
    assert load_task("math500", ["scorer.workers=0"]).spec_hash == base.spec_hash
    assert load_task("math500", ["sampling.top_p=0.9"]).spec_hash != base.spec_hash
    assert load_task("math500", ["prompt.suffix=null"]).spec_hash != base.spec_hash
    assert load_task("math500", ["scorer.kind=exact"]).spec_hash != base.spec_hash
    judge = load_task("hexphi")
    moved = load_task("hexphi", ["scorer.params.base_url=http://127.0.0.1:9/v1"])
    assert moved.spec_hash == judge.spec_hash  # where the judge lives is not how it judges
    assert load_task("hexphi", ["scorer.params.model=other"]).spec_hash != judge.spec_hash


def test_suite_errors(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("name: s\ntasks: [countdown, countdown]\n")
    with pytest.raises(InputError, match="more than once"):
        load_suite(suite)
    suite.write_text("name: s\ntasks:\n  - countdown\n  - no_such_task\n")
    with pytest.raises(InputError, match="no built-in task 'no_such_task'") as caught:
        load_suite(suite)
    assert (caught.value.file, caught.value.line, caught.value.field) == (str(suite), 4, "tasks[1]")
    suite.write_text("name: s\ntasks: [countdown]\nextra: 1\n")
    with pytest.raises(InputError) as caught:
        load_suite(suite)
    assert (caught.value.line, caught.value.field) == (3, "extra")
