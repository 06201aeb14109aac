"""Benchmark: the adaptive sweep against the dense sweep of every saved checkpoint.

Synthetic runs from `sftscope.analyze.planted` (dip-and-recovery, dip-no-recovery, monotone gain and
loss, flat) at the demo's noise (one greedy sample per prompt, 40 / 100 / 280 prompts), with dense
saved checkpoints (every 2 steps to 128, or every 5 to 100). Each run's rows are precomputed; the
"sweep" the adaptive loop calls writes the requested checkpoints' rows into a results store, and the
loop reads its curves back through the store's API, exactly as `sftscope eval --adaptive` does.

Both sweeps are then judged by the analysis's own rule (`analyze_curve`, the task's seed). A run
agrees when the labels match and the dip's bottom and recovery steps are within one saved interval of
the dense sweep's. The peer is the dense sweep, measured on the same rows.

    python benchmarks/adaptive_sweep.py [--runs 40] [--budget-share 0.5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sftscope.analyze.dips import DipResult, analyze_curve
from sftscope.analyze.planted import SHAPES, PlantedCurve, planted_curve
from sftscope.evaluate.adaptive import adaptive_sweep
from sftscope.evaluate.store import ResultsStore, TaskEntry
from sftscope.evaluate.sweep import SweepStats
from sftscope.evaluate.targets import Target
from sftscope.stats import task_seed

SPACINGS = {"every 2 to 128": list(range(0, 129, 2)), "every 5 to 100": list(range(0, 101, 5))}
PROMPTS = (40, 100, 280)
SIZES = (0.5, 3.0)
TASK = "arith"


def draw(rng: np.random.Generator, index: int) -> tuple[PlantedCurve, str]:
    shape = SHAPES[index % len(SHAPES)]
    spacing = list(SPACINGS)[index // len(SHAPES) % len(SPACINGS)]
    n_prompts = int(rng.choice(PROMPTS))
    while True:
        try:
            size = float(rng.uniform(*SIZES))
            return planted_curve(shape, SPACINGS[spacing], n_prompts, size, rng), spacing  # type: ignore[arg-type]
        except ValueError:  # no base leaves room for this size over so few prompts
            continue


def writer(store: ResultsStore, curve: PlantedCurve) -> Callable[[list[Target]], SweepStats]:
    """The stand-in for `run_sweep`: store the precomputed rows of the requested checkpoints."""
    store.register_tasks([TaskEntry(TASK, "cross-domain", "exact", "spec", True)])

    def sweep(targets: list[Target]) -> SweepStats:
        rows = []
        for target in targets:
            store.register_model(target.run, target.step, target.model_hash, None)
            i = curve.steps.index(target.step)
            for p, score in enumerate(curve.scores[i]):
                status = "ok" if score == 1.0 else "wrong"
                rows.append(
                    dict(
                        model_hash=target.model_hash,
                        task=TASK,
                        sampling_hash="spec",
                        seed=0,
                        prompt_id=f"p{p:03d}",
                        sample_idx=0,
                        score=float(score),
                        status=status,
                    )
                )
        return SweepStats(computed=store.add_samples(rows), loaded=len(targets))

    return sweep


def judge(curve: PlantedCurve, steps: list[int]) -> DipResult:
    index = [curve.steps.index(s) for s in steps]
    result = analyze_curve(
        "run", TASK, "cross-domain", True, steps, curve.scores[index], seed=task_seed(TASK)
    )
    assert result is not None
    return result


DIPS = ("dip-and-recovery", "dip-no-recovery")


def within_one(saved: list[int], a: int | None, b: int | None) -> bool:
    if a is None or b is None:
        return a is b
    return abs(saved.index(a) - saved.index(b)) <= 1


def agrees(saved: list[int], dense: DipResult, adaptive: DipResult) -> bool:
    """Same label; a dip's bottom and recovery within one saved interval of the dense sweep's."""
    if dense.label != adaptive.label:
        return False
    if dense.label not in DIPS:  # a monotone loss's lowest point is not a dip's bottom
        return True
    return within_one(saved, dense.bottom_step, adaptive.bottom_step) and within_one(
        saved, dense.recovery_step, adaptive.recovery_step
    )


@dataclass
class Outcome:
    """One synthetic run, swept densely and adaptively."""

    curve: PlantedCurve
    spacing: str
    dense: DipResult
    adaptive: DipResult
    agrees: bool
    evaluated: int
    reasons: Counter[str]

    @property
    def saved(self) -> int:
        return len(self.curve.steps)


def share(outcomes: list[Outcome]) -> float:
    """Checkpoints the adaptive sweeps evaluated, as a share of the dense sweeps'."""
    return sum(o.evaluated for o in outcomes) / sum(o.saved for o in outcomes)


def agreement(outcomes: list[Outcome]) -> str:
    return f"{sum(o.agrees for o in outcomes)}/{len(outcomes)}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=40, help="synthetic runs (>= 30)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--budget-share", type=float, default=None, help="budget, a share of the saved checkpoints"
    )
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    outcomes = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.runs):
            curve, spacing = draw(rng, i)
            targets = [Target("run", s, "-", f"hash-{s}") for s in curve.steps]
            budget = None if args.budget_share is None else max(2, int(args.budget_share * len(curve.steps)))
            with ResultsStore(Path(tmp) / f"run{i}.duckdb") as store:
                plan, _ = adaptive_sweep(targets, store, writer(store, curve), budget=budget)
            steps = [e.step for e in plan]
            dense, adaptive = judge(curve, curve.steps), judge(curve, steps)
            reasons = Counter(e.reason.split(" between")[0] for e in plan)
            outcomes.append(
                Outcome(
                    curve, spacing, dense, adaptive, agrees(curve.steps, dense, adaptive), len(steps), reasons
                )
            )
    seconds = time.perf_counter() - started

    n, evaluated, dense_total = (
        len(outcomes),
        sum(o.evaluated for o in outcomes),
        sum(o.saved for o in outcomes),
    )
    print(f"{n} synthetic runs in {seconds:.1f} s; budget share {args.budget_share}; seed {args.seed}")
    print(
        "agreement with the dense sweep (label; a dip's bottom and recovery within one saved interval): "
        f"{agreement(outcomes)} = {sum(o.agrees for o in outcomes) / n:.1%}"
    )
    print(f"labels equal: {sum(o.dense.label == o.adaptive.label for o in outcomes)}/{n}")
    right = [
        sum(getattr(o, sweep).label == _truth(o.curve.shape) for o in outcomes)
        for sweep in ("dense", "adaptive")
    ]
    print(f"labels equal to the planted shape: dense {right[0]}/{n}, adaptive {right[1]}/{n}")
    print(
        f"checkpoints evaluated: adaptive {evaluated}, dense {dense_total}: {evaluated / dense_total:.1%} "
        f"of the dense sweep's ({dense_total / evaluated:.2f}x fewer)"
    )
    for spacing in SPACINGS:
        sub = [o for o in outcomes if o.spacing == spacing]
        if sub:
            worst = max(o.evaluated / o.saved for o in sub)
            print(
                f"  {spacing}: {len(sub)} runs, agreement {agreement(sub)}, {share(sub):.1%}, max {worst:.1%}"
            )
    for shape in SHAPES:
        sub = [o for o in outcomes if o.curve.shape == shape]
        truth = _truth(shape)
        right = [sum(o.dense.label == truth for o in sub), sum(o.adaptive.label == truth for o in sub)]
        print(
            f"  planted {shape}: agreement {agreement(sub)}, {share(sub):.1%} of the dense evaluations; "
            f"label right: dense {right[0]}, adaptive {right[1]}"
        )
    print("checkpoints by reason:", dict(sum((o.reasons for o in outcomes), Counter())))
    for o in outcomes:
        if not o.agrees:
            d, a = o.dense, o.adaptive
            print(
                f"  disagreement: planted {o.curve.shape}, {o.curve.size:.2f} CI widths, "
                f"{o.curve.scores.shape[1]} prompts, {o.spacing}: dense {d.label} (bottom {d.bottom_step}, "
                f"recovery {d.recovery_step}), adaptive {a.label} (bottom {a.bottom_step}, "
                f"recovery {a.recovery_step}) on {o.evaluated} checkpoints"
            )


def _truth(shape: str) -> str:
    return {"flat": "flat within noise"}.get(shape, shape)


if __name__ == "__main__":
    main()
