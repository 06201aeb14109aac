"""Benchmark: the real-scale scorers, items/s, against calling the same checks without sftscope.

At real scale the scorers, not the micro ones that `eval_throughput.py` times, decide how long
scoring takes: a reference sweep scores 65 checkpoints x 500 MATH problems x 3 samples with
math-verify, and LiveCodeBench programs in the sandbox. Two comparisons, in one run:

- **math**: our `math` scorer (answer span, percent policy, math-verify with the gold first), called
  as the sweep calls it (one batch per commit of --commit rows), inline and in the 2-process pool
  with a per-item timeout, against math-verify called as its README shows
  (`verify(parse(gold), parse(prediction))`, one process). The golds are the real competition
  answers of CHAMP (the `champ-dataset` package, offline); the ones written as prose ("No integer
  solutions") need a model grader, so only the answers that are expressions are used, and the
  counts are printed. Each gold gets three written responses: the gold boxed after a paragraph of
  reasoning, another problem's answer boxed, and the gold in a closing sentence without a box. The
  pool's workers start in the first repeat and serve every later batch, as in a sweep; the cold
  first repeat is printed as well. The two
  scorers' verdicts are compared item by item, and the items they disagree on are printed.
- **code**: our `code` scorer (the program run against its tests in the sandbox: bubblewrap,
  seccomp, limits, audit hook, process-group kill), inline and with 2 threads, against the bare
  cost of the same work: `subprocess.run` of the program on each test, no sandbox. The ratio is
  the sandbox's price.

    pip install champ-dataset   # in the `bench` extra
    python benchmarks/scorer_throughput.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

# Words that may appear in an expression answer (functions, binomials); any other word is prose.
_MATH_WORDS = re.compile(r"\b(?:sqrt|floor|ceil|log|ln|sin|cos|tan|pi|sum|max|min)\b")
_WORD = re.compile(r"[A-Za-z]{2,}")

_REASONING = (
    "We look for a pattern in the small cases first, then check that it holds in general. "
    "Trying the first few values gives a consistent recurrence, and an induction step confirms it. "
    "Wait, let me verify the boundary case again: it agrees with the formula as well. "
)


def champ_answers() -> tuple[list[str], int]:
    """CHAMP's expression answers, and how many answers there were in all."""
    path = resources.files("champ_dataset") / "dataset_files" / "v0.json"
    problems = json.loads(path.read_text(encoding="utf-8"))["problems"].values()
    answers = [p["_answer"].strip() for p in problems]
    return [a for a in answers if not _WORD.search(_MATH_WORDS.sub("", a))], len(answers)


def math_items(golds: list[str]) -> list[tuple[str, str]]:
    """(gold, response) pairs: each gold boxed after reasoning, the next different gold boxed (a wrong
    answer, unless the two are equal in value), and the gold in a closing sentence without a box."""
    pairs = []
    for number, gold in enumerate(golds):
        other = next(g for g in golds[number + 1 :] + golds[:number] if g != gold)
        pairs.append((gold, f"{_REASONING}So the answer is $\\boxed{{{gold}}}$."))
        pairs.append((gold, f"{_REASONING}So the answer is $\\boxed{{{other}}}$."))
        pairs.append((gold, f"{_REASONING}Therefore the final answer is {gold}."))
    return pairs


def best_rate(count: int, work: Callable[[], T], repeat: int) -> tuple[float, T]:
    """Items/s of the fastest of `repeat` runs (the cores are shared), and the last run's result."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        result = work()
        best = min(best, time.perf_counter() - started)
    return count / best, result


def correct(scorer: str, items: list, workers: int, commit: int | None = None) -> list[bool]:
    """Our verdicts (outcome correct), in calls of `commit` items as a sweep makes them (None: one)."""
    from sftscope.scoring.registry import score_batch

    size = commit or len(items) or 1
    batches = [items[i : i + size] for i in range(0, len(items), size)]
    results = [r for b in batches for r in score_batch(scorer, b, timeout_s=10.0, workers=workers)]
    return [r.outcome == "correct" for r in results]


def print_rates(rows: list[tuple[str, float]], digits: int) -> None:
    """Each row's items/s and its ratio to the first row's (the peer's)."""
    peer_rate = rows[0][1]
    for label, rate in rows:
        print(f"  {label:<40} {rate:>8.{digits}f} items/s  {rate / peer_rate:>5.2f}x the peer")


def bench_math(repeat: int, commit: int) -> None:
    from math_verify import parse, verify

    from sftscope.data.records import split_response
    from sftscope.scoring.registry import ScoreItem

    golds, total = champ_answers()
    pairs = math_items(golds)
    print(
        f"math: {len(golds)} of CHAMP's {total} answers are expressions ({total - len(golds)} prose "
        f"answers left out); {len(pairs)} responses (boxed right, another's answer boxed, unboxed right)"
    )
    items = [ScoreItem(split_response(response).final, gold, {}) for gold, response in pairs]

    def peer() -> list[bool]:
        return [bool(verify(parse(f"${gold}$"), parse(response))) for gold, response in pairs]

    peer_rate, peer_verdicts = best_rate(len(pairs), peer, repeat)
    rows = [("math-verify direct (peer), 1 process", peer_rate)]
    cold = best_rate(len(items), lambda: correct("math", items, 2, commit), 1)[0]  # workers start here
    verdicts: list[bool] = []
    for workers in (0, 2):
        rate, verdicts = best_rate(len(items), lambda w=workers: correct("math", items, w, commit), repeat)
        rows.append((f"sftscope math, {'inline' if workers == 0 else f'pool({workers})'}", rate))
    rows.append(("sftscope math, pool(2), workers starting", cold))
    print_rates(rows, 0)
    differ = [i for i, (a, b) in enumerate(zip(verdicts, peer_verdicts, strict=True)) if a != b]
    kinds = ("boxed right", "boxed other", "unboxed right")
    for k, kind in enumerate(kinds):
        counts = f"ours {sum(verdicts[k::3])}, peer {sum(peer_verdicts[k::3])}"
        print(f"  {kind:<14} correct: {counts} (of {len(golds)})")
    print(f"  {len(differ)} items differ, e.g.:")
    for i in differ[:6]:
        gold, response = pairs[i]
        verdict = f"ours {verdicts[i]}, peer {peer_verdicts[i]}"
        print(f"    {kinds[i % 3]}, gold {gold!r}: {verdict}; ...{response[-40:]!r}")


_PROGRAMS = {
    "right": "n = int(input())\nprint(2 * n)\n",
    "wrong": "n = int(input())\nprint(n + 2)\n",
}
_TESTS = [{"input": f"{n}\n", "output": f"{2 * n}\n", "testtype": "stdin"} for n in (3, 5, 11)]


def bench_code(repeat: int, per_kind: int) -> None:
    from sftscope.scoring.registry import ScoreItem

    programs = [p for p in _PROGRAMS.values() for _ in range(per_kind)]
    items = [ScoreItem(f"```python\n{p}```", None, {"tests": _TESTS}) for p in programs]
    print(f"code: {len(items)} programs (half right, half wrong), {len(_TESTS)} stdin tests each")
    with tempfile.TemporaryDirectory() as folder:

        def peer() -> list[bool]:
            verdicts = []
            for number, program in enumerate(programs):
                path = Path(folder) / f"p{number}.py"
                path.write_text(program)
                verdicts.append(
                    all(
                        subprocess.run(
                            [sys.executable, str(path)],
                            input=t["input"],
                            capture_output=True,
                            text=True,
                            timeout=10,
                        ).stdout
                        == t["output"]
                        for t in _TESTS
                    )
                )
            return verdicts

        peer_rate, peer_verdicts = best_rate(len(programs), peer, repeat)
    rows = [("bare subprocess.run (peer), no sandbox", peer_rate)]
    verdicts: list[bool] = []
    for workers in (0, 2):
        rate, verdicts = best_rate(len(items), lambda w=workers: correct("code", items, w), repeat)
        rows.append((f"sftscope code, {'inline' if workers == 0 else f'{workers} threads'}", rate))
    print_rates(rows, 1)
    print(f"  verdicts: ours {sum(verdicts)} correct, peer {sum(peer_verdicts)} (of {len(items)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=3, help="rates are the best of this many runs")
    parser.add_argument("--programs", type=int, default=20, help="code: programs of each kind")
    parser.add_argument(
        "--commit", type=int, default=64, help="math: items per scorer call (a sweep's commit)"
    )
    args = parser.parse_args()
    bench_math(args.repeat, args.commit)
    bench_code(args.repeat, args.programs)


if __name__ == "__main__":
    main()
