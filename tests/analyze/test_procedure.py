"""Effective backtracking versus surface markers, on hand-made traces."""

from __future__ import annotations

import pytest

from sftscope.analyze.procedure import ProcedureCounts, count_procedure, parse_attempts, procedure_index


def test_parse_attempts_reads_plain_typeset_and_latex_operators() -> None:
    attempts = parse_attempts("25 × 3 = 75, then 75 \\div 5 = 15 and (2 + 3) * 4 = 20.")
    assert [(a.operands, a.operators, a.result) for a in attempts] == [
        (("25", "3"), ("*",), "75"),
        (("5", "75"), ("/",), "15"),
        (("2", "3", "4"), ("*", "+"), "20"),
    ]


def test_parse_attempts_ignores_equations_without_an_operator() -> None:
    assert parse_attempts("Target = 72, x = 4, and 12 = 12.") == []


@pytest.mark.parametrize(
    ("trace", "expected"),
    [
        # Different operands after the marker: a real backtrack.
        ("25 * 3 = 75, 75 - 8 = 67. Wait, that's not 72. Let me try 50 + 25 = 75, 75 - 3 = 72.", (1, 0)),
        # Same operands, different operation: still a different attempt.
        ("50 * 2 = 100. Hmm, that's too big. 50 + 2 = 52.", (1, 0)),
        # Back to an earlier intermediate result with a new step: a real backtrack.
        ("25 * 3 = 75, 75 - 8 = 67. That's not 72. 75 - 3 = 72.", (1, 0)),
        # The same equation again, operands swapped: no change, only the word.
        ("25 * 3 = 75. Wait, let me recompute: 3 * 25 = 75. So 75 - 3 = 72.", (0, 1)),
        # Continuing from the last result extends the attempt; it is not a backtrack.
        ("25 * 3 = 75, 75 - 8 = 67. Wait, 67 + 5 = 72.", (0, 1)),
        # A marker followed by no attempt at all.
        ("50 + 25 - 3 = 72. Wait, hmm. The answer is 72.", (0, 1)),
        # No marker, nothing to count.
        ("50 + 25 = 75, 75 - 3 = 72.", (0, 0)),
    ],
)
def test_count_procedure(trace: str, expected: tuple[int, int]) -> None:
    counts = count_procedure(trace)
    assert (counts.effective, counts.surface) == expected


def test_several_markers_in_one_trace_are_judged_separately() -> None:
    trace = (
        "Numbers: 3, 8, 25, 50. Target: 72.\n"
        "25 + 8 = 33, 33 * 3 = 99. That's too big.\n"  # effective: next line changes operands
        "50 - 8 = 42, 42 + 25 = 67. Not quite.\n"  # surface: next attempt repeats 50 - 8
        "Wait, 50 - 8 = 42 again, so 42 + 3 = 45. No, that doesn't work.\n"  # effective
        "50 + 25 = 75, 75 - 3 = 72. That matches the target."
    )
    assert count_procedure(trace) == ProcedureCounts(effective=2, surface=1)


def test_procedure_index_is_the_share_of_effective_markers() -> None:
    counts = [ProcedureCounts(effective=3, surface=1), ProcedureCounts(effective=0, surface=4)]
    assert procedure_index(counts) == pytest.approx(3 / 8)
    assert procedure_index([ProcedureCounts()]) is None
