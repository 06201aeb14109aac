"""The registry: names, params, and the small scorers (exact, countdown, reasoning-gym)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from sftscope.errors import InputError, SftscopeError
from sftscope.evaluate.spec import load_task
from sftscope.scoring.registry import SCORERS, ScorerParamError, UnknownScorerError, score_batch
from sftscope.scoring.result import ScoreItem


def test_unknown_scorer_lists_known_names() -> None:
    with pytest.raises(UnknownScorerError, match=r"known scorers: .*math"):
        score_batch("maths", [ScoreItem("1", "1")])
    assert issubclass(UnknownScorerError, SftscopeError)


def test_unknown_param_is_a_spec_error() -> None:
    with pytest.raises(SftscopeError, match="unknown params"):
        score_batch("choice", [ScoreItem("A", "A")], params={"letter": "AB"}, workers=0)


BAD_PARAMS = [
    ("countdown", {"rule": "each_once"}, "rule"),
    ("ifeval", {"mode": "lenient"}, "mode"),
    ("ifeval", {"semantics": "lm_eval"}, "semantics"),
    ("code", {"memory_mb": True}, "memory_mb"),
    ("code", {"allow_unsandboxed": "yes"}, "allow_unsandboxed"),
    ("refusal", {"expect": "maybe"}, "expect"),
    ("choice", {"letters": "AB", "rule": "x"}, "rule"),
]


@pytest.mark.parametrize(("scorer", "params", "param"), BAD_PARAMS)
def test_a_bad_param_value_names_the_param(scorer: str, params: dict, param: str) -> None:
    with pytest.raises(ScorerParamError, match=f"param {param}") as caught:
        score_batch(scorer, [], params=params)
    assert caught.value.param == param


def test_a_bad_param_in_a_task_spec_is_located(tmp_path: Path) -> None:
    spec = tmp_path / "task.yaml"
    spec.write_text(
        "name: cd\ndomain: in-domain\nsource: {kind: microworld, domains: [countdown], n: 4, seed: 0}\n"
        "scorer:\n  kind: countdown\n  params:\n    rule: each_once\n"
    )
    with pytest.raises(InputError, match="must be one of at_most_once, exactly_once") as caught:
        load_task(spec)
    assert (caught.value.line, caught.value.field) == (7, "scorer.params.rule")


def test_math_through_the_pool() -> None:
    items = [
        ScoreItem("\\boxed{4}", "4"),
        ScoreItem("\\boxed{5}", "4"),
        ScoreItem("", "4"),
        ScoreItem("1", None),
    ]
    results = score_batch("math", items, workers=1, timeout_s=20.0)
    assert [r.outcome for r in results] == ["correct", "wrong", "unparsable", "error"]
    assert "gold" in (results[3].error or "")


def test_a_hanging_math_check_times_out_and_the_batch_goes_on() -> None:
    # sympy never finishes comparing 1 with this tower; the pool kills the worker after 1 s.
    items = [ScoreItem("\\boxed{9^{9^{9^{9}}}}", "1"), ScoreItem("\\boxed{2}", "2")]
    results = score_batch("math", items, workers=1, timeout_s=1.0)
    assert [r.outcome for r in results] == ["timeout", "correct"]
    assert results[0].error == "check exceeded 1 s"


def test_math_scores_off_the_main_thread() -> None:
    # math-verify's own SIGALRM timeout fails outside the main thread (Math-Verify#55); ours is off.
    results: list = []
    items = [ScoreItem("1/2", "0.5")]
    thread = threading.Thread(target=lambda: results.extend(score_batch("math", items, workers=0)))
    thread.start()
    thread.join()
    assert [r.outcome for r in results] == ["correct"]


def test_exact() -> None:
    items = [
        ScoreItem("Reasoning.\n**Blue**.", "blue"),
        ScoreItem("\\boxed{\\text{Red  Car}}", "red car"),
        ScoreItem("The answer is green.", "blue"),
        ScoreItem("", "blue"),
    ]
    outcomes = [r.outcome for r in score_batch("exact", items, workers=0)]
    assert outcomes == ["correct", "correct", "wrong", "unparsable"]


def test_countdown() -> None:
    pytest.importorskip("sftscope.scoring.countdown")
    meta = {"numbers": [3, 5, 3], "target": 24}
    items = [
        ScoreItem("\\boxed{(5 + 3) \\times 3}", None, meta),
        ScoreItem("\\boxed{(5 + 3) * 3 = 24}", None, meta),
        ScoreItem("\\boxed{5 * 5 - 1}", None, meta),  # 5 used twice, 1 not given
        ScoreItem("\\boxed{5 + 3}", None, meta),
        ScoreItem("\\boxed{banana}", None, meta),
        ScoreItem("24", None, meta),
    ]
    results = score_batch("countdown", items, workers=0)
    assert [r.outcome for r in results] == [
        "correct",
        "correct",
        "wrong",
        "wrong",
        "unparsable",
        "unparsable",
    ]
    assert results[1].extracted == "(5 + 3) * 3"
    # 5 + 3 + 3 leaves nothing out; (5 + 3) * 3 = 24 is exact under both rules, 5 * 3 + 3 ... is not 24.
    exactly = score_batch("countdown", items[:2], workers=0, params={"rule": "exactly_once"})
    assert [r.outcome for r in exactly] == ["correct", "correct"]
    left_out = ScoreItem("\\boxed{8 * 3}", None, {"numbers": [8, 3, 1], "target": 24})
    rules = [
        score_batch("countdown", [left_out], workers=0, params={"rule": r})[0].outcome
        for r in ("at_most_once", "exactly_once")
    ]
    assert rules == ["correct", "wrong"]
    assert score_batch("countdown", [ScoreItem("\\boxed{1}", None)], workers=0)[0].outcome == "error"


def test_reasoning_gym_uses_the_generators_verifier() -> None:
    import reasoning_gym

    entry = reasoning_gym.create_dataset("basic_arithmetic", size=1, seed=3)[0]
    meta = {"rg_dataset": "basic_arithmetic", "rg_entry": entry}
    items = [
        ScoreItem(f"So \\boxed{{{entry['answer']}}}", None, meta),
        ScoreItem(f"work\n{entry['answer']}", None, meta),
        ScoreItem("\\boxed{123456789}", None, meta),
        ScoreItem("", None, meta),
        ScoreItem("1", None, {"rg_dataset": "basic_arithmetic"}),
    ]
    results = score_batch("reasoning_gym", items, workers=0)
    assert [r.outcome for r in results] == ["correct", "correct", "wrong", "unparsable", "error"]
    assert results[0].score == 1.0


def test_every_scorer_is_registered_under_its_name() -> None:
    assert {"math", "countdown", "choice", "exact", "reasoning_gym"} <= set(SCORERS)
    assert all(name == scorer.name for name, scorer in SCORERS.items())
