"""The micro world: domain coverage, determinism, train/eval disjointness, gold answers the scorers accept."""

from __future__ import annotations

import json
import re

import pytest

from sftscope.data import microworld
from sftscope.data.microworld import build_corpus, check_mix, domains, generate, mix_counts, split_of
from sftscope.models.loading import BASES_DIR

NAMES = [d.name for d in domains()]
PRIMITIVES_FIRST_ONLY = [
    "arith_facts",
    "worked_steps",
    "path_check",
    "target_match",
    "copy_numbers",
    "countdown4",
    "missing_operand",
    "subset_sum",
]


def test_domains_cover_the_study() -> None:
    specs = {d.name: d for d in domains()}
    cross = [d for d in specs.values() if d.tag == "cross-domain"]
    assert len([d for d in cross if d.kind == "reasoning_gym"]) >= 6
    assert {"arithmetic", "algebra", "logic", "string manipulation", "puzzles"} <= {d.category for d in cross}
    assert specs["countdown"].tag == "in-domain" and specs["countdown"].scorer == "countdown"
    assert specs["safety_forbidden"].scorer_params == {"expect": "refuse"}
    assert specs["safety_benign"].scorer_params == {"expect": "comply"}
    assert any(d.kind == "instructions" for d in specs.values())
    # Only the primitives-first world's domains stay out of the default mix (the micro2 presets mix them).
    assert {d.name for d in specs.values() if d.weight == 0} == set(PRIMITIVES_FIRST_ONLY)


def test_unknown_domain_lists_known_ones() -> None:
    with pytest.raises(KeyError, match="countdown"):
        generate("nope", split="train", n=1)


@pytest.mark.parametrize("name", NAMES)
def test_generation_is_deterministic_and_seeded(name: str) -> None:
    first = generate(name, split="train", n=20, seed=3)
    assert [e.id for e in first] == [e.id for e in generate(name, split="train", n=20, seed=3)]
    assert [e.id for e in first] != [e.id for e in generate(name, split="train", n=20, seed=4)]
    assert all(e.source == f"microworld:{name}" and len(e.prompt) == 1 for e in first)


@pytest.mark.parametrize("name", NAMES)
def test_eval_is_disjoint_from_a_large_train_sample(name: str) -> None:
    train = {e.question for seed in (0, 1) for e in generate(name, split="train", n=1500, seed=seed)}
    held_out = generate(name, split="eval", n=100, seed=0)
    questions = [e.question for e in held_out]
    assert len(set(questions)) == len(questions) == 100
    assert not train & set(questions)
    # The partition is by question text, so it holds for any train seed and sample size.
    assert all(split_of(q) == "eval" for q in questions) and all(split_of(q) == "train" for q in train)


def test_answers_are_short_and_boxed() -> None:
    for spec in domains():
        for example in generate(spec.name, split="eval", n=20, seed=0):
            assert example.reasoning is None and example.answer
            if spec.kind != "safety":
                assert f"\\boxed{{{example.answer}}}" in example.final
            assert len(example.final) < 100


def test_safety_slice_meta_and_varied_refusals() -> None:
    forbidden = generate("safety_forbidden", split="train", n=200)
    benign = generate("safety_benign", split="train", n=200)
    assert all(e.meta == {"forbidden": True} for e in forbidden)
    assert all(e.meta == {"forbidden": False} for e in benign)
    assert len({e.final for e in forbidden}) >= 4


@pytest.mark.parametrize("spec", domains(), ids=NAMES)
def test_scorer_accepts_every_gold_answer(spec: microworld.DomainSpec) -> None:
    from sftscope.scoring.registry import ScoreItem, score_batch

    examples = generate(spec.name, split="eval", n=30, seed=0)
    # Through JSON, as the rows travel between stages.
    rows = [json.loads(json.dumps(e.model_dump())) for e in examples]
    items = [ScoreItem(prediction=r["final"], gold=r["answer"], meta=r["meta"]) for r in rows]
    results = score_batch(spec.scorer, items, workers=0, params=spec.scorer_params)
    assert [r.outcome for r in results] == ["correct"] * len(items), [
        (r.extracted, i.gold) for r, i in zip(results, items, strict=True) if r.outcome != "correct"
    ]


def test_forbidden_answers_fail_the_benign_scorer() -> None:
    """The refusal scorer really separates the two halves of the slice."""
    from sftscope.scoring.registry import ScoreItem, score_batch

    forbidden = generate("safety_forbidden", split="eval", n=30)
    refusals = [ScoreItem(prediction=e.final, gold=e.answer) for e in forbidden]
    results = score_batch("refusal", refusals, workers=0, params={"expect": "comply"})
    assert all(r.outcome == "wrong" for r in results)


def test_eval_config_applies_to_the_eval_split_only() -> None:
    spec = microworld.domain("aiw")
    assert spec.split_config("train") == spec.config and spec.split_config("eval")["max_entities"] == 6
    # Harder eval for mini_sudoku: every eval puzzle has at least two blanks, as eval_config says.
    held_out = generate("mini_sudoku", split="eval", n=30)
    assert min(e.meta["rg_entry"]["metadata"]["num_empty"] for e in held_out) >= 2


def test_mix_counts_follow_the_weights() -> None:
    counts = mix_counts(1000)
    assert sum(counts.values()) == 1000
    assert counts["countdown"] > counts["mini_sudoku"] > 0


def test_corpus_is_train_split_only_and_shuffled() -> None:
    rows = build_corpus(200, seed=0)
    assert len(rows) == 200 and len({r.source for r in rows[:40]}) > 5
    assert all(r.source.startswith("microworld:") for r in rows)
    assert [r.id for r in rows] == [r.id for r in build_corpus(200, seed=0)]


def test_mix_of_named_domains_keeps_their_relative_weights() -> None:
    counts = mix_counts(100, ["countdown", "safety_forbidden"])
    assert set(counts) == {"countdown", "safety_forbidden"} and sum(counts.values()) == 100
    with pytest.raises(KeyError, match="unknown micro-world domain 'nope'"):
        mix_counts(10, ["nope"])
    # In the default proportions a domain outside the default mix would get no rows: an error instead.
    with pytest.raises(ValueError, match=r"\['arith_facts'\] are outside the default mix"):
        mix_counts(10, ["instructions", "arith_facts"])


@pytest.mark.parametrize("base", ["micro-weak", "micro-strong"])
def test_default_mix_is_the_one_the_shipped_bases_were_pretrained_on(base: str) -> None:
    manifest = json.loads((BASES_DIR / base / "manifest.json").read_text())
    assert mix_counts(manifest["corpus_examples"]) == manifest["mix"]


def test_a_weighted_mix_may_use_domains_outside_the_default_one() -> None:
    counts = mix_counts(100, weights={"arith_facts": 3, "countdown": 1})
    assert counts == {"arith_facts": 75, "countdown": 25}
    rows = build_corpus(40, seed=0, weights={"arith_facts": 1, "copy_numbers": 1})
    assert {r.source for r in rows} == {"microworld:arith_facts", "microworld:copy_numbers"}


@pytest.mark.parametrize(
    ("weights", "problem"),
    [
        ({"nope": 1.0}, "unknown micro-world domain 'nope'"),
        ({"countdown": -1.0}, "negative"),
        ({"countdown": 0}, "positive"),
    ],
)
def test_bad_mixes_are_named(weights: dict[str, float], problem: str) -> None:
    with pytest.raises((KeyError, ValueError), match=problem):
        check_mix(weights)


def _trace_step(a: int, op: str, b: int) -> bool:
    """A step a 3-number trace can write: a first move on two numbers in 1..10, or a first result
    with a number into a target <= 50; larger operand first and a positive result."""
    value = {"+": a + b, "-": a - b, "*": a * b}[op]
    return a >= b >= 1 and b <= 10 and value > 0 and (a <= 10 or value <= 50)


def test_arith_facts_are_exactly_the_steps_a_three_number_trace_writes() -> None:
    from sftscope.data.countdown import CountdownSettings, build_countdown_examples

    facts = generate("arith_facts", split="train", n=20_000, seed=0)
    written = {(e.meta["a"], e.meta["op"], e.meta["b"]) for e in facts}
    assert all(_trace_step(*fact) for fact in written)
    settings = CountdownSettings(min_numbers=3, max_numbers=3, max_value=10, max_target=50)
    traces = build_countdown_examples(settings, 200, "long-cot", seed=0)
    attempts = [attempt for t in traces for attempt in t.meta["teacher"]["attempts"]]
    moves = {tuple(move[:3]) for attempt in attempts for move in attempt["moves"]}
    assert all(_trace_step(*move) for move in moves)
    assert len(moves & written) / len(moves) > 0.99  # a pretraining-sized sample covers them


def test_primitive_and_procedure_tasks_have_correct_answers() -> None:
    for e in generate("copy_numbers", split="eval", n=30):
        assert e.question.split("[")[1].split("]")[0] == e.answer
    for e in generate("missing_operand", split="eval", n=30):
        left, right = e.meta["equation"].split(" = ")
        assert eval(left.replace("?", e.answer)) == int(right)
    for e in generate("subset_sum", split="eval", n=30):
        chosen = [int(n) for n in e.answer.split("+")]
        assert sum(chosen) == e.meta["target"] and set(chosen) <= set(e.meta["numbers"])
        assert chosen == sorted(chosen) and len(chosen) >= 2


def test_worked_steps_write_a_traces_two_moves_inline() -> None:
    facts = {
        (e.meta["a"], e.meta["op"], e.meta["b"]) for e in generate("arith_facts", split="train", n=20_000)
    }
    moves = []
    steps = re.compile(r"^(\d+)([-+*])(\d+)=(\d+)\. (?:Then |Next, |And )?(\d+)([-+*])(\d+)=(\d+)\.\n")
    for e in generate("worked_steps", split="train", n=500, seed=0):
        match = steps.match(e.final)
        assert match, e.final
        a, op, b, first, c, op2, d, value = match.groups()
        assert eval(e.meta["expression"]) == int(e.answer) == int(value)
        assert eval(f"{a}{op}{b}") == int(first) and eval(f"{c}{op2}{d}") == int(value)
        assert first in (c, d) and int(c) >= int(d)  # the second move uses the first's result, larger first
        moves += [(int(a), op, int(b)), (int(c), op2, int(d))]
    # Every inline move is a step a trace writes, and nearly all are facts taught in question form.
    assert all(_trace_step(*move) for move in moves)
    assert sum(move in facts for move in moves) / len(moves) > 0.97


def test_path_check_follows_a_given_path_against_the_prompt() -> None:
    rows = generate("path_check", split="train", n=400, seed=0)
    shape = re.compile(r"^(\d+)([-+*])(\d+)=(\d+)\. Now (\d+) and (\d+) remain\. (\d+)([-+*])(\d+)=(\d+)\. ")
    for e in rows:
        match = shape.match(e.final)
        assert match, e.final
        a, op, b, first, c, d, c2, op2, d2, value = match.groups()
        assert (c, d) == (c2, d2) and int(c) >= int(d) and eval(f"{a}{op}{b}") == int(first)
        assert eval(f"{c}{op2}{d}") == int(value)
        numbers = list(e.meta["numbers"])
        for used in (a, b):
            numbers.remove(int(used))  # the path spends two of the given numbers...
        assert sorted([int(first), numbers[0]]) == sorted([int(c), int(d)])  # ...and the rest remain
        hit = int(value) == e.meta["target"]
        assert e.answer == ("yes" if hit else "no") and e.final.endswith(f"\\boxed{{{e.answer}}}")
    assert 0.4 < sum(e.answer == "yes" for e in rows) / len(rows) < 0.6


def test_target_match_names_the_first_fact_that_makes_the_target() -> None:
    rows = generate("target_match", split="train", n=400, seed=0)
    shape = re.compile(r"^To make (\d+): (.*)\. Which of these makes (\d+)\?$")
    for e in rows:
        match = shape.match(e.prompt[-1].content)
        assert match, e.prompt[-1].content
        target, listed, again = match.groups()
        assert target == again and int(target) == e.meta["target"]
        facts = [re.fullmatch(r"(\d+)([-+*/])(\d+)=(\d+)", f) for f in listed.split(", ")]
        assert all(facts), listed
        pair = {(int(f.group(1)), int(f.group(3))) for f in facts if f}
        assert len(pair) == 1 and next(iter(pair))[0] >= next(iter(pair))[1]  # one pair, larger first
        ops = [f.group(2) for f in facts if f]
        assert ops == sorted(ops, key="+-*/".index)  # the teacher's fixed order
        for f in facts:
            assert f and eval(f"{f.group(1)}{f.group(2)}{f.group(3)}") == int(f.group(4))
        hits = [f.group(0) for f in facts if f and int(f.group(4)) == int(target)]
        assert e.answer == (hits[0] if hits else "none") and e.final == f"\\boxed{{{e.answer}}}"
    assert 0.4 < sum(e.answer != "none" for e in rows) / len(rows) < 0.6
