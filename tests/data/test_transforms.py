"""Every transform: what it keeps, what it changes, and what its log reports."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sftscope.data.corrupt import Corrupt, broken_step, plausible_wrong, truncate, wrong_answer
from sftscope.data.decontaminate import Decontaminate
from sftscope.data.io import FieldMapping
from sftscope.data.records import Example, Message, user_example
from sftscope.data.sources import BuildContext, FileSource, MixPart, MixSource, load_source
from sftscope.data.transforms import OUTCOMES, Dedupe, Mix, StripReasoning, Subsample, Verify
from sftscope.errors import InputError
from sftscope.scoring.countdown import check_countdown

FIXTURES = Path(__file__).parent.parent / "fixtures" / "data"


@pytest.fixture
def ctx(tmp_path: Path) -> BuildContext:
    return BuildContext(spec_file=tmp_path / "spec.yaml", seed=0)


def countdown_row(index: int, final: str = "So the answer is \\boxed{(7-2)*3+8}.") -> Example:
    return user_example(
        f"Numbers: [3, 7, 2, 8]\nTarget: 23\nProblem {index}.",
        reasoning="First, 7-2=5. Then 5*3=15. Then 15+8=23. Got 23.",
        final=final,
        answer="(7-2)*3+8",
        meta={"numbers": [3, 7, 2, 8], "target": 23},
    )


def math_rows(n: int) -> list[Example]:
    return [
        user_example(
            f"Question {i}: what is {i} + {i} when you add the two numbers together carefully?",
            reasoning=f"We add: {i} + {i} = {2 * i}. Wait, let me check: {i} * 2 = {2 * i}. Yes.",
            final=f"The sum is \\boxed{{{2 * i}}}.",
            answer=str(2 * i),
        )
        for i in range(1, n + 1)
    ]


# verify ---------------------------------------------------------------------------------------


def test_verify_countdown_keeps_only_correct_rows_and_counts_every_outcome(ctx: BuildContext) -> None:
    rows = [countdown_row(0), countdown_row(1, "\\boxed{7*3+8}"), countdown_row(2, "I give up.")]
    kept, log = Verify(scorer="countdown", workers=1).apply(rows, ctx)
    assert [r.id for r in kept] == [rows[0].id]
    assert log.counts == {"correct": 1, "wrong": 1, "unparsable": 1, "timeout": 0, "error": 0}
    assert list(log.counts) == list(OUTCOMES)
    assert log.details["pass_rate"] == pytest.approx(1 / 3)
    assert log.details["failed"]["wrong"][0]["id"] == rows[1].id


def test_verify_math_uses_math_verify_on_the_final_part(ctx: BuildContext) -> None:
    rows = math_rows(3)
    rows[1] = rows[1].model_copy(update={"final": "The sum is \\boxed{5}."})
    rows[2] = rows[2].model_copy(update={"final": "", "reasoning": "cut off before the answer \\boxed{6}"})
    kept, log = Verify(scorer="math", workers=1, timeout_s=30).apply(rows, ctx)
    assert [r.id for r in kept] == [rows[0].id]
    assert (log.counts["correct"], log.counts["wrong"], log.counts["unparsable"]) == (1, 1, 1)


def test_verify_refuses_a_row_without_gold_unless_skip_bad(tmp_path: Path) -> None:
    rows = math_rows(2)
    rows[1] = rows[1].model_copy(update={"answer": None})
    strict = BuildContext(spec_file=tmp_path / "spec.yaml", where="transforms[0].verify")
    with pytest.raises(InputError, match=f"row '{rows[1].id}'.*no gold answer.*--skip-bad") as caught:
        Verify(scorer="math", workers=1, timeout_s=30).apply(rows, strict)
    assert caught.value.field == "transforms[0].verify"
    lenient = BuildContext(spec_file=tmp_path / "spec.yaml", skip_bad=True)
    kept, log = Verify(scorer="math", workers=1, timeout_s=30).apply(rows, lenient)
    assert [r.id for r in kept] == [rows[0].id] and log.counts["correct"] == 1
    assert [str(rows[1].id) in str(bad) for bad in lenient.bad] == [True]  # listed in the card, not lost


# strip_reasoning ------------------------------------------------------------------------------


def test_strip_reasoning_keeps_the_final_summary_and_drops_rows_with_nothing_left(ctx: BuildContext) -> None:
    rows = [*math_rows(2), user_example("Q?", reasoning="thinking, then cut off", final="")]
    out, log = StripReasoning().apply(rows, ctx)
    assert [r.final for r in out] == [rows[0].final, rows[1].final]
    assert all(r.reasoning is None for r in out)
    assert log.counts == {"stripped": 3, "had_no_reasoning": 0, "tags_removed": 0, "dropped_empty_final": 1}
    assert log.details["dropped_ids"] == [rows[2].id]


def test_strip_reasoning_removes_stray_think_tags_everywhere(ctx: BuildContext) -> None:
    row = Example(
        prompt=[Message(role="user", content="Explain <think> tags.")],
        reasoning=None,
        final="<think>leftover</think> The answer <think>is \\boxed{1}.",
        answer="1",
    )
    out, log = StripReasoning().apply([row], ctx)
    assert out[0].final == "The answer is \\boxed{1}."  # what followed the last </think>, tag-free
    assert out[0].prompt[0].content == "Explain  tags."
    assert log.counts["tags_removed"] == 2


@settings(max_examples=60, deadline=None)
@given(
    reasoning=st.one_of(st.none(), st.text(max_size=40)),
    pieces=st.lists(
        st.sampled_from(["<think>", "</think>", "a", " ", "\\boxed{2}", "<", "think>"]), max_size=12
    ),
    question=st.lists(st.sampled_from(["<think>", "</think>", "q", "<"]), max_size=6),
)
def test_strip_reasoning_leaves_no_think_tag(
    reasoning: str | None, pieces: list[str], question: list[str]
) -> None:
    row = Example(
        prompt=[Message(role="user", content="".join(question))], reasoning=reasoning, final="".join(pieces)
    )
    out, _ = StripReasoning().apply([row], BuildContext(spec_file=Path("spec.yaml")))
    for kept in out:
        text = kept.response_text() + "".join(m.content for m in kept.prompt)
        assert "<think>" not in text and "</think>" not in text and kept.reasoning is None


# corrupt --------------------------------------------------------------------------------------


def test_wrong_answer_on_countdown_swaps_an_operator_so_the_expression_misses() -> None:
    changed = wrong_answer(countdown_row(0), random.Random(1))
    assert changed is not None
    row, detail = changed
    assert detail["from"] == "(7-2)*3+8" and row.final.count("\\boxed{") == 1
    assert not check_countdown(detail["to"], [3, 7, 2, 8], 23).ok
    assert row.answer == "(7-2)*3+8"  # the gold stays, so verify would catch the change


@pytest.mark.parametrize("answer", ["55", "3.25", "\\frac{1}{2}", "B", "-4"])
def test_plausible_wrong_changes_the_answer_but_keeps_its_shape(answer: str) -> None:
    for seed in range(5):
        wrong = plausible_wrong(answer, random.Random(seed))
        assert wrong is not None and wrong != answer
        assert len(wrong) <= len(answer) + 2
    assert plausible_wrong("\\text{blue}", random.Random(0)) is None


def test_broken_step_makes_exactly_one_correct_step_wrong() -> None:
    row = countdown_row(0)
    changed, detail = broken_step(row, random.Random(3))  # type: ignore[misc]
    assert detail["step"] in row.reasoning and detail["to"] not in row.reasoning  # type: ignore[operator]
    before, after = row.reasoning.split(), changed.reasoning.split()  # type: ignore[union-attr]
    assert sum(a != b for a, b in zip(before, after, strict=True)) == 1
    assert (
        broken_step(user_example("Q", reasoning="No arithmetic here.", final="x"), random.Random(0)) is None
    )


def test_broken_step_reads_latex_operators_and_skips_steps_that_were_already_wrong() -> None:
    row = user_example("Q", reasoning="First 3 \\times 4 = 13, then 6 \\div 3 = 2.", final="\\boxed{2}")
    _, detail = broken_step(row, random.Random(0))  # type: ignore[misc]
    assert detail["step"] == "6 \\div 3 = 2"


def test_truncate_cuts_the_trace_and_drops_the_final() -> None:
    row = math_rows(1)[0]
    changed, detail = truncate(row, random.Random(0))  # type: ignore[misc]
    assert changed.final == "" and row.reasoning.startswith(changed.reasoning)  # type: ignore[union-attr]
    assert 0.2 * len(row.reasoning) <= detail["kept_chars"] <= 0.8 * len(row.reasoning)  # type: ignore[arg-type]


def test_corrupt_hits_the_rate_records_each_change_and_is_seeded(ctx: BuildContext) -> None:
    rows = [countdown_row(i) for i in range(40)]
    out, log = Corrupt(rate=0.5).apply(rows, ctx)
    corrupted = [r for r in out if "corruption" in r.meta]
    assert len(corrupted) == 20 == log.details["corrupted"]
    assert {r.meta["corruption"]["kind"] for r in corrupted} <= {"wrong_answer", "broken_step", "truncate"}
    assert sum(log.counts[k] for k in ("wrong_answer", "broken_step", "truncate")) == 20
    assert all("corruption" not in r.meta for r in rows)  # inputs are not mutated
    unchanged = [(a, b) for a, b in zip(rows, out, strict=True) if "corruption" not in b.meta]
    assert all(a == b for a, b in unchanged)
    again, _ = Corrupt(rate=0.5).apply(rows, ctx)
    other, _ = Corrupt(rate=0.5, seed=7).apply(rows, ctx)
    assert again == out and other != out


def test_corrupt_passes_over_rows_no_kind_applies_to_and_says_so(ctx: BuildContext) -> None:
    rows = [*(user_example(f"Q{i}", final="no boxed answer") for i in range(4)), countdown_row(0)]
    out, log = Corrupt(rate=0.4, kinds=["wrong_answer"]).apply(rows, ctx)
    assert log.details["target"] == 2 and log.details["corrupted"] == 1
    assert log.counts["not_applicable"] == 4 and log.counts["wrong_answer"] == 1
    assert "corruption" in out[4].meta


# subsample, dedupe ----------------------------------------------------------------------------


def test_subsample_is_seeded_keeps_order_and_refuses_to_grow(ctx: BuildContext) -> None:
    rows = math_rows(10)
    out, log = Subsample(n=4).apply(rows, ctx)
    assert len(out) == 4 and log.counts == {"kept": 4, "dropped": 6}
    assert [rows.index(r) for r in out] == sorted(rows.index(r) for r in out)
    assert Subsample(n=4).apply(rows, ctx)[0] == out
    assert len(Subsample(fraction=0.25).apply(rows, ctx)[0]) == 2
    ctx.where = "transforms[0]"
    with pytest.raises(InputError, match="asks for 11 rows but only 10") as error:
        Subsample(n=11).apply(rows, ctx)
    assert error.value.field == "transforms[0].n"
    with pytest.raises(ValueError, match="exactly one of n or fraction"):
        Subsample(n=1, fraction=0.5)


def test_dedupe_by_prompt_ignores_whitespace_and_by_id_uses_the_content_hash(ctx: BuildContext) -> None:
    a = user_example("What  is 1+1?", final="2", answer="2")
    b = user_example("What is 1+1?\n", final="two", answer="2")
    c = user_example("What is 1+1?", final="2", answer="3")
    out, log = Dedupe().apply([a, b, c], ctx)
    assert out == [a] and log.counts == {"kept": 1, "duplicates": 2}
    by_id, _ = Dedupe(by="id").apply([a, b, c, c], ctx)
    assert by_id == [a, b, c]


# mix ------------------------------------------------------------------------------------------


def write_rows(path: Path, rows: list[Example]) -> Path:
    from sftscope.data.io import write_records

    return write_records(rows, path)


def test_mix_source_takes_weighted_shares_of_the_total(ctx: BuildContext, tmp_path: Path) -> None:
    left = write_rows(tmp_path / "left.jsonl", math_rows(30))
    right = write_rows(tmp_path / "right.jsonl", [countdown_row(i) for i in range(30)])
    parts = [
        MixPart(weight=3, source=FileSource(path=str(left))),
        MixPart(weight=1, source=FileSource(path=str(right))),
    ]
    rows = load_source(MixSource(total=20, parts=parts), ctx)
    assert len(rows) == 20 and sum(r.source == "left" for r in rows) == 15
    assert ctx.loads[-1]["taken"] == [
        {"source": str(left), "weight": 3.0, "rows": 15},
        {"source": str(right), "weight": 1.0, "rows": 5},
    ]
    too_big = MixSource(total=100, parts=parts)
    with pytest.raises(InputError, match="has 30 rows but its weight asks for 75"):
        load_source(too_big, ctx)


def test_mix_transform_blends_the_rows_so_far_with_other_sources(ctx: BuildContext, tmp_path: Path) -> None:
    other = write_rows(tmp_path / "other.jsonl", [countdown_row(i) for i in range(10)])
    out, log = Mix(weight=1, parts=[MixPart(weight=1, source=FileSource(path=str(other)))]).apply(
        math_rows(10), ctx
    )
    assert len(out) == 10 and log.counts == {"(previous steps)": 5, str(other): 5}


# decontaminate --------------------------------------------------------------------------------


def eval_source() -> FileSource:
    mapping = FieldMapping(question="problem", id="uid")
    return FileSource(path=str(FIXTURES / "eval-set.jsonl"), mapping=mapping, name="evalset")


def test_decontaminate_removes_overlapping_rows_and_reports_hits_with_ids(ctx: BuildContext) -> None:
    from sftscope.data.io import read_records

    mapping = FieldMapping(question="question", response="response", answer="answer")
    rows = read_records(FIXTURES / "math-foreign.jsonl", mapping=mapping).records
    out, log = Decontaminate(against=[eval_source()]).apply(rows, ctx)
    assert [r.id for r in out] == [rows[1].id, rows[2].id]
    assert log.counts == {"kept": 2, "removed": 1}
    hit = log.details["hits"][0]
    assert (hit["id"], hit["eval_set"], hit["eval_id"]) == (rows[0].id, "evalset", "eval-1")
    assert len(hit["ngram"].split()) == 13
    assert ctx.loads[-1]["role"] == "eval"


def test_decontaminate_normalises_text_and_n_is_configurable(ctx: BuildContext) -> None:
    reworded = user_example("FIND all real X, with x^3 = 8 -- and explain!", final="2")
    kept, _ = Decontaminate(against=[eval_source()]).apply([reworded], ctx)
    assert kept == [reworded]  # 8 shared words: under the 13-gram default
    removed, log = Decontaminate(against=[eval_source()], n=8).apply([reworded], ctx)
    assert removed == [] and log.details["hits"][0]["eval_id"] == "eval-2"


def test_decontaminate_can_check_responses_too(ctx: BuildContext) -> None:
    leaked = user_example(
        "Unrelated?", final="What is the sum of the first ten positive integers? Give the value."
    )
    assert Decontaminate(against=[eval_source()]).apply([leaked], ctx)[0] == [leaked]
    assert (
        Decontaminate(against=[eval_source()], fields=["question", "response"]).apply([leaked], ctx)[0] == []
    )
