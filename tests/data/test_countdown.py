"""The Countdown teacher: correct answers, real backtracks, honest dead ends, variety, determinism."""

from __future__ import annotations

import hashlib
import itertools
import random
import re
from collections import Counter
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from sftscope.data.countdown import (
    BACKTRACK_PHRASES,
    CountdownProblem,
    CountdownSettings,
    TraceStyle,
    build_countdown_examples,
    countdown_prompt,
    generate_problems,
    teach,
)
from sftscope.data.records import Example
from sftscope.errors import SftscopeError
from sftscope.scoring.behaviours import has_backtracking
from sftscope.scoring.countdown import check_countdown

STYLES: tuple[TraceStyle, ...] = ("long-cot", "short-cot", "answer-only")
MICRO = CountdownSettings()


def exact_value(expression: str) -> Fraction:
    """An oracle independent of the checker: Python arithmetic on Fractions of a vetted string."""
    assert re.fullmatch(r"[0-9+\-*/()]+", expression), expression
    return eval(re.sub(r"\d+", r"Fraction(\g<0>)", expression), {"Fraction": Fraction})


def boxed(final: str) -> str:
    return re.findall(r"\\boxed\{([^{}]*)\}", final)[-1]


def apply(a: int, op: str, b: int) -> Fraction:
    return exact_value(f"{a}{op}{b}")


def pair_can_make(c: int, d: int, target: int) -> bool:
    values = {Fraction(c), Fraction(d)} | {apply(x, op, y) for x, y in ((c, d), (d, c)) for op in "+-*/"}
    return target in values


def replay(numbers: list[int], moves: list[list[Any]]) -> Counter[int]:
    """Play moves on the multiset of numbers, checking each operand is on the table and each result right."""
    pool = Counter(numbers)
    for a, op, b, result in moves:
        for operand in (a, b):
            assert pool[operand] > 0, f"{operand} is not available in {dict(pool)}"
            pool[operand] -= 1
        assert apply(a, op, b) == result, (a, op, b, result)
        pool[result] += 1
    return +pool


def assert_correct(example: Example) -> None:
    numbers, target = example.meta["numbers"], example.meta["target"]
    assert boxed(example.final) == example.answer
    assert check_countdown(example.answer, numbers, target).ok
    # Independent of the checker: recount the numbers and recompute the value.
    used = Counter(int(n) for n in re.findall(r"\d+", example.answer))
    assert all(count <= numbers.count(n) for n, count in used.items()), (example.answer, numbers)
    assert exact_value(example.answer) == target


def assert_honest_trace(example: Example) -> None:
    """Every move is right and written, every dead end is real, the recomputation holds."""
    numbers, target, attempts = (
        example.meta["numbers"],
        example.meta["target"],
        example.meta["teacher"]["attempts"],
    )
    assert example.reasoning is not None
    for attempt in attempts:
        moves = attempt["moves"]
        for a, op, b, result in moves:
            assert f"{a}{op}{b}={result}" in example.reasoning
        pool = replay(numbers, moves)
        if attempt["outcome"] == "dead-end":
            c, d = attempt["leftover"]
            assert pool == Counter([c, d]) and not pair_can_make(c, d, target)
            # A careful person stops as soon as the target is on the table.
            assert all(target not in replay(numbers, moves[:k]) for k in range(1, len(moves) + 1))
        else:
            assert target in pool
    if not attempts[-1]["moves"]:
        assert example.reasoning == f"{target} is already one of the numbers."
        return
    chain = re.search(r":\s*([0-9+\-*/()=]+)[.,]", example.reasoning.splitlines()[-1])
    assert chain is not None, example.reasoning
    parts = chain.group(1).split("=")
    assert parts[0] == example.answer and all(exact_value(part) == target for part in parts)


def small_problem() -> st.SearchStrategy[CountdownProblem]:
    """Solvable problems of any shape: the target is a left fold of the numbers."""

    @st.composite
    def build(draw: st.DrawFn) -> CountdownProblem:
        numbers = draw(st.lists(st.integers(1, 12), min_size=2, max_size=4))
        value = numbers[0]
        for n in numbers[1:]:
            choices = ["+", "*"] + (["-"] if value > n else [])
            op = draw(st.sampled_from(choices))
            value = {"+": value + n, "*": value * n, "-": value - n}[op]
        return CountdownProblem(numbers=draw(st.permutations(numbers)), target=value)

    return build()


@settings(max_examples=80, deadline=None)
@given(small_problem(), st.sampled_from(STYLES), st.integers(0, 2**32), st.integers(0, 3))
def test_every_answer_is_correct_and_every_trace_honest(
    problem: CountdownProblem, style: TraceStyle, seed: int, max_failed: int
) -> None:
    example = teach(problem, style, random.Random(seed), max_failed_branches=max_failed)
    assert_correct(example)
    assert example.meta["failed_branches"] <= max_failed
    if style == "answer-only":
        assert example.reasoning is None
    else:
        assert_honest_trace(example)


@settings(max_examples=25, deadline=None)
@given(
    st.integers(0, 10**6),
    st.sampled_from(STYLES),
    st.integers(2, 4),
    st.sampled_from([("+", "-", "*"), ("+", "*"), ("+", "-", "*", "/"), ("+", "/")]),
)
def test_generated_problems_are_taught_correctly(
    seed: int, style: TraceStyle, numbers: int, operators: tuple[Any, ...]
) -> None:
    knobs = CountdownSettings(
        min_numbers=2, max_numbers=numbers, max_value=12, max_target=100, operators=operators
    )
    for example in build_countdown_examples(knobs, 4, style, seed):
        assert_correct(example)
        assert example.meta["numbers"] and 1 <= example.meta["target"] <= 100


@settings(max_examples=60, deadline=None)
@given(small_problem(), st.sampled_from(("long-cot", "short-cot")), st.integers(0, 2**32))
def test_state_lines_name_exactly_the_numbers_left(
    problem: CountdownProblem, style: TraceStyle, seed: int
) -> None:
    example = teach(problem, style, random.Random(seed), state_lines=True)
    assert_correct(example)
    assert_honest_trace(example)
    assert example.reasoning is not None
    path = example.meta["teacher"]["attempts"][-1]["moves"]
    solution_line = next(
        line
        for line in example.reasoning.splitlines()
        if all(f"{a}{op}{b}={r}" in line for a, op, b, r in path)
    )
    stated = [
        Counter(int(n) for n in re.findall(r"\d+", listed))
        for listed in re.findall(r"Now ([0-9, and]+) remain\.", solution_line)
    ]
    assert stated == [replay(example.meta["numbers"], path[: k + 1]) for k in range(len(path) - 1)]
    # The state sentences are all that changes: the same seed writes the same trace without them.
    plain = teach(problem, style, random.Random(seed))
    assert plain.reasoning == re.sub(
        r" Now [0-9, and]+ remain\.(?= )", "", example.reasoning, count=len(path) - 1
    )
    assert plain.final == example.final


def fixed_order_facts(a: int, b: int, target: int, cap: int) -> list[list[Any]]:
    """The worked ending written independently: + - * / on the larger and smaller number, positive
    integer results only, none above the cap unless it is the target."""
    a, b = max(a, b), min(a, b)
    facts = []
    for op in "+-*/":
        value = apply(a, op, b)
        if value.denominator != 1 or value <= 0 or (value > cap and value != target):
            continue
        facts.append([a, op, b, int(value)])
    return facts


@settings(max_examples=80, deadline=None)
@given(
    small_problem(),
    st.sampled_from(("long-cot", "short-cot")),
    st.integers(0, 2**32),
    st.integers(10, 100),
)
def test_worked_endings_write_every_fact_in_order(
    problem: CountdownProblem, style: TraceStyle, seed: int, cap: int
) -> None:
    example = teach(problem, style, random.Random(seed), worked_endings=cap)
    assert_correct(example)
    assert_honest_trace(example)
    assert example.reasoning is not None
    target = example.meta["target"]
    for attempt in example.meta["teacher"]["attempts"]:
        if not attempt["moves"]:
            assert "ending" not in attempt
            continue
        if attempt["outcome"] == "dead-end":
            c, d = attempt["leftover"]
            assert attempt["ending"] == fixed_order_facts(c, d, target, cap)
            assert all(value != target for *_, value in attempt["ending"])
            # A dead end names the pair it works, so its facts read their operands off the line.
            assert f"Now {max(c, d)} and {min(c, d)} remain. To make {target}: " in example.reasoning
        else:
            a, op, b, value = attempt["moves"][-1]
            assert value == target
            assert attempt["ending"] == fixed_order_facts(a, b, target, cap)
            # The answer's last operation is the first in the fixed order that hits, and it is named.
            assert next(f for f in attempt["ending"] if f[3] == target) == attempt["moves"][-1]
            assert re.search(rf"\. (There: )?{re.escape(f'{a}{op}{b}={target}')}\b", example.reasoning)
        facts = ", ".join(f"{a}{op}{b}={value}" for a, op, b, value in attempt["ending"])
        assert f"To make {target}: {facts}. " in example.reasoning, (facts, example.reasoning)


# sha256 of 40 rows (seed 11) as the code that the published runs were measured on wrote them. A new
# teacher option must leave the rows of every earlier option byte for byte: their measurements, and
# data specs said to rebuild them, depend on it (an option once reordered the RNG draws and did not).
# Keys: style, state_lines, worked_endings.
MEASURED_ROWS = {
    ("long-cot", False, False): "26d49dc82a74b2604a1baaff1053d30d96bfd308d4b4dd933371f0e1420c8eaa",
    ("long-cot", True, False): "17292534c4543e5ee674fab50e92fa720145ffb567b0934edb40d73daa9739e7",
    ("short-cot", False, False): "8ecc84218b93c08d18ec011264ffda0c364f6ce220b864339d0d2f4d99436543",
    ("short-cot", True, False): "88ce4cf9f00f07008cb4cb5fc6fbb3dfba838ea5fb0e2b69c9bc4e92495dac2b",
    ("answer-only", False, False): "8b7c1f967f6cd3894dcf7137243f7b1d376e52f0c5768593af178f72caa4e803",
    ("answer-only", True, False): "b3d2409b872f669b4ebb70a3827522a0630ec7307bea5c5d0d7b8aec3caeaf8a",
    ("long-cot", True, True): "e262517d222dae8ac810aaf0987416a689e59e4981230edbcfeb01d689c3cf56",
}


@pytest.mark.parametrize(("style", "state_lines", "worked_endings"), list(MEASURED_ROWS))
def test_earlier_options_write_the_rows_they_were_measured_on(
    style: TraceStyle, state_lines: bool, worked_endings: bool
) -> None:
    rows = build_countdown_examples(
        MICRO, 40, style, seed=11, state_lines=state_lines, worked_endings=worked_endings
    )
    digest = hashlib.sha256("\n".join(row.model_dump_json() for row in rows).encode()).hexdigest()
    assert digest == MEASURED_ROWS[(style, state_lines, worked_endings)]


def first_moves_in_order(numbers: list[int]) -> list[list[Any]]:
    """The fixed order, rebuilt: pairs as listed, larger first, + - * / with positive whole
    results, a move already listed (equal values elsewhere) not again."""
    out: list[list[Any]] = []
    for i, j in itertools.combinations(range(len(numbers)), 2):
        a, b = sorted((numbers[i], numbers[j]), reverse=True)
        for op in "+-*/":
            value = apply(a, op, b)
            if value > 0 and value.denominator == 1 and [a, op, b, int(value)] not in out:
                out.append([a, op, b, int(value)])
    return out


def three_number_problem() -> st.SearchStrategy[CountdownProblem]:
    return small_problem().filter(lambda problem: len(problem.numbers) == 3)


@settings(max_examples=80, deadline=None)
@given(three_number_problem(), st.integers(0, 2**32), st.integers(10, 100))
def test_fixed_order_shows_every_first_move_before_the_first_that_hits(
    problem: CountdownProblem, seed: int, cap: int
) -> None:
    example = teach(problem, "long-cot", random.Random(seed), worked_endings=cap, fixed_order=True)
    assert_correct(example)
    attempts, target = example.meta["teacher"]["attempts"], problem.target
    firsts = [attempt["moves"][0] for attempt in attempts]
    order = first_moves_in_order(problem.numbers)
    # The first moves are a prefix of the fixed order, and only the last of them leads to the target.
    assert firsts == order[: len(firsts)]
    for attempt in attempts[:-1]:
        c, d = attempt["leftover"]
        assert attempt["outcome"] == "dead-end" and attempt["ending"] == fixed_order_facts(c, d, target, cap)
        assert all(value != target for *_, value in attempt["ending"])
    solution = attempts[-1]
    assert solution["outcome"] == "target" and len(solution["moves"]) == 2
    assert replay(problem.numbers, solution["moves"]) == Counter([target])
    assert example.meta["teacher"]["search_order"] == "fixed"
    # The search is the order, not the draw: another seed changes the words, never the moves.
    again = teach(problem, "long-cot", random.Random(seed + 1), worked_endings=cap, fixed_order=True)
    assert [a["moves"] for a in again.meta["teacher"]["attempts"]] == [a["moves"] for a in attempts]


def test_fixed_order_needs_worked_endings_and_three_numbers() -> None:
    problem = CountdownProblem(numbers=[2, 3, 4], target=20)
    with pytest.raises(SftscopeError, match="worked endings"):
        teach(problem, "long-cot", random.Random(0), fixed_order=True)
    worked = {"worked_endings": 50, "fixed_order": True}
    with pytest.raises(SftscopeError, match="3 numbers"):
        teach(CountdownProblem(numbers=[2, 3, 4, 5], target=14), "long-cot", random.Random(0), **worked)
    # [1, 3, 3] -> 3 has no answer that uses every number, and the fixed order looks for no other.
    with pytest.raises(SftscopeError, match=r"fixed order for numbers \[1, 3, 3\] and target 3"):
        teach(CountdownProblem(numbers=[1, 3, 3], target=3), "long-cot", random.Random(0), **worked)


def backtracks(example: Example) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    attempts = example.meta["teacher"]["attempts"]
    return list(itertools.pairwise(attempts))


def test_long_cot_backtracks_are_real() -> None:
    examples = build_countdown_examples(MICRO, 300, "long-cot", seed=3)
    for example in examples:
        text = example.reasoning
        assert text is not None
        pairs = backtracks(example)
        assert len(pairs) == example.meta["failed_branches"]
        if pairs:  # the first attempt failed: the words of a backtrack, then a different attempt
            assert has_backtracking(text)
        cursor = 0
        for failed, following in pairs:
            assert failed["outcome"] == "dead-end" and failed["backtrack"] in BACKTRACK_PHRASES
            failed_first, next_first = failed["moves"][0], following["moves"][0]
            assert failed_first[:3] != next_first[:3], "the attempt after a backtrack must differ"
            cursor = text.index("{}{}{}={}".format(*failed_first), cursor)
            cursor = text.index(failed["backtrack"], cursor)
            cursor = text.index("{}{}{}={}".format(*next_first), cursor)
        firsts = [tuple(attempt["moves"][0][:3]) for attempt in example.meta["teacher"]["attempts"]]
        assert len(set(firsts)) == len(firsts), "no first move is tried twice"
        assert example.meta["teacher"]["attempts"][-1]["outcome"] == "target"


def test_failed_branch_counts_vary_up_to_the_cap() -> None:
    counts = Counter(e.meta["failed_branches"] for e in build_countdown_examples(MICRO, 200, "long-cot", 0))
    assert set(counts) == {0, 1, 2} and min(counts.values()) >= 20
    capped = build_countdown_examples(MICRO, 60, "long-cot", 0, max_failed_branches=1)
    assert {e.meta["failed_branches"] for e in capped} == {0, 1}
    assert all(e.meta["failed_branches"] == 0 for e in build_countdown_examples(MICRO, 30, "long-cot", 0, 0))


def test_micro_traces_stay_short() -> None:
    lengths = [len(e.reasoning or "") for e in build_countdown_examples(MICRO, 200, "long-cot", 1)]
    assert 100 <= sum(lengths) / len(lengths) <= 300


def test_short_cot_is_only_the_successful_path() -> None:
    for example in build_countdown_examples(MICRO, 100, "short-cot", 2):
        assert example.reasoning is not None and example.meta["failed_branches"] == 0
        assert [a["outcome"] for a in example.meta["teacher"]["attempts"]] == ["target"]
        assert not has_backtracking(example.reasoning)
        assert not any(phrase in example.reasoning for phrase in BACKTRACK_PHRASES)


def test_phrasing_varies() -> None:
    examples = build_countdown_examples(MICRO, 200, "long-cot", 4)
    used = Counter(phrase for e in examples for phrase in BACKTRACK_PHRASES if phrase in (e.reasoning or ""))
    assert len(used) >= 6
    openings = {(e.reasoning or "").split(" ")[0] for e in examples}
    assert len(openings) >= 4
    assert len({e.final.split("\\boxed")[0] for e in examples}) >= 2


def test_same_seed_same_traces_and_a_longer_run_extends_a_shorter_one() -> None:
    first = build_countdown_examples(MICRO, 40, "long-cot", 11)
    assert [e.model_dump() for e in first] == [
        e.model_dump() for e in build_countdown_examples(MICRO, 40, "long-cot", 11)
    ]
    assert [e.model_dump() for e in first[:15]] == [
        e.model_dump() for e in build_countdown_examples(MICRO, 15, "long-cot", 11)
    ]
    assert [e.reasoning for e in first] != [
        e.reasoning for e in build_countdown_examples(MICRO, 40, "long-cot", 12)
    ]


def test_neighbouring_seeds_do_not_share_problems_wholesale() -> None:
    # reasoning-gym alone would make seed 1 the seed-0 stream shifted by one item.
    zero, one = generate_problems(MICRO, 30, 0), generate_problems(MICRO, 30, 1)
    assert sum(a == b for a, b in zip(zero[1:], one[:-1], strict=True)) < 5


def test_generated_problems_respect_the_settings() -> None:
    knobs = CountdownSettings(
        min_numbers=3, max_numbers=4, min_value=2, max_value=9, min_target=10, max_target=40
    )
    problems = generate_problems(knobs, 50, 5)
    assert len(problems) == 50 and generate_problems(knobs, 0, 5) == []
    for problem in problems:
        assert 3 <= len(problem.numbers) <= 4 and all(2 <= n <= 9 for n in problem.numbers)
        assert 10 <= problem.target <= 40 and problem.operators == ("+", "-", "*")


def test_example_shape() -> None:
    problem = CountdownProblem(numbers=[3, 7, 2], target=23, operators=("+", "-", "*"))
    example = teach(problem, "long-cot", random.Random(0))
    assert countdown_prompt(problem) == (
        "Numbers: [3, 7, 2]\nTarget: 23\nUse each number at most once with + - * / to make the target."
    )
    assert [m.model_dump() for m in example.prompt] == [
        {"role": "user", "content": countdown_prompt(problem)}
    ]
    assert example.source == "countdown-teacher" and example.answer == "7*3+2"
    assert example.final.endswith("\\boxed{7*3+2}.")
    assert example.meta["numbers"] == [3, 7, 2] and example.meta["target"] == 23
    assert example.meta["style"] == "long-cot" and "attempts" in example.meta["teacher"]


def test_the_target_among_the_numbers_when_no_full_solution_exists() -> None:
    # [1, 3, 3] -> 3 has no answer using all three with positive steps; 3 alone is allowed.
    problem = CountdownProblem(numbers=[1, 3, 3], target=3)
    example = teach(problem, "long-cot", random.Random(0))
    assert example.answer == "3" and example.meta["failed_branches"] == 0
    assert example.reasoning == "3 is already one of the numbers."


def test_unsolvable_problem_and_unknown_style_raise() -> None:
    with pytest.raises(SftscopeError, match="no Countdown solution"):
        teach(CountdownProblem(numbers=[2, 3], target=100), "long-cot", random.Random(0))
    with pytest.raises(ValueError, match="unknown Countdown trace style"):
        teach(CountdownProblem(numbers=[2, 3], target=5), "longcot", random.Random(0))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "knobs",
    [
        {"min_numbers": 4, "max_numbers": 3},
        {"min_target": 0},
        {"operators": ("^",)},
        {"operators": ()},
        {"size": 3},
    ],
)
def test_bad_settings_are_rejected(knobs: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        CountdownSettings(**knobs)
