"""Benchmark: the dip-and-recovery label on synthetic runs with a planted, known shape.

Curves come from `sftscope.analyze.planted`: dip-and-recovery, dip-no-recovery, monotone gain,
monotone loss and flat, over the demo's prompt counts (40 per task, 100 for Countdown, 280 for the
pooled cross-domain average), one greedy sample per prompt (the demo's noise), and the checkpoint
schedules a user meets (the demo's swept and saved ones, doubling steps, even spacing, a dense 64).
Sizes are drawn uniformly in CI widths of the base's score (see `planted.py`). Each curve is judged
by `sftscope.analyze.dips.analyze_curve`, the analysis's own code path.

Reported: the dip-and-recovery label's precision and recall (overall, per planted-depth bin), and its
false-positive rate on flat and monotone runs. The peer, measured on the same curves, is the same
rule with per-checkpoint 95% intervals instead of the simultaneous band: the rule without
multiple-comparison control.

    python benchmarks/detector_validation.py [--runs 500] [--write]

`--write` stores the figures in `src/sftscope/analyze/data/detector_validation.json`, which the
analysis copies into analysis.json for the report's methods section.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter, defaultdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from sftscope.analysis_file import DetectorValidation
from sftscope.analyze.dips import analyze_curve
from sftscope.analyze.planted import SHAPES, PlantedCurve, planted_curve
from sftscope.analyze.validation import VALIDATION_FILE
from sftscope.stats import bootstrap_curve, pointwise

SPACINGS = {
    "demo swept": [0, 4, 16, 64, 100],
    "demo saved": [0, 1, 2, 4, 8, 16, 32, 50, 64, 100],
    "doubling": [0, 1, 2, 4, 8, 16, 32, 64, 128],
    "every 5": list(range(0, 101, 5)),
    "dense 64": list(range(0, 129, 2)),
}
PROMPTS = (40, 100, 280)
SIZES = (0.5, 3.0)
BINS = ((0.5, 1.0), (1.0, 2.0), (2.0, 3.0))
DIP = "dip-and-recovery"


def pointwise_label(curve: PlantedCurve, seed: int) -> bool:
    """The peer: dip-and-recovery by per-checkpoint intervals (no control over many checkpoints)."""
    boot = bootstrap_curve(curve.scores, seed=seed)
    delta = boot.point[1:] - boot.point[0]
    reps = boot.replicates[:, 1:] - boot.replicates[:, :1]
    bands = pointwise(type(boot)(delta, reps))
    below = [i for i, b in enumerate(bands) if b.hi is not None and b.hi < 0]
    if not below:
        return False
    bottom = min(below, key=lambda i: delta[i])
    return any(delta[i] >= 0 for i in range(bottom + 1, delta.size))


def draw(rng: np.random.Generator, index: int) -> tuple[PlantedCurve, str]:
    """One run: shapes in turn, schedule and prompt count at random, a size that fits the prompts."""
    shape = SHAPES[index % len(SHAPES)]
    spacing = list(SPACINGS)[int(rng.integers(len(SPACINGS)))]
    n_prompts = int(rng.choice(PROMPTS))
    while True:
        size = float(rng.uniform(*SIZES))
        try:
            return planted_curve(shape, SPACINGS[spacing], n_prompts, size, rng), spacing  # type: ignore[arg-type]
        except ValueError:  # no base leaves room for this size over so few prompts: draw another
            continue


def rate(hits: int, total: int) -> float:
    return hits / total if total else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=500, help="synthetic runs (>= 200)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-boot", type=int, default=1000)
    parser.add_argument("--write", action="store_true", help=f"write the figures to {VALIDATION_FILE}")
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    rows = []
    for i in range(args.runs):
        curve, spacing = draw(rng, i)
        result = analyze_curve(
            "run", "task", "cross-domain", True, curve.steps, curve.scores, n_boot=args.n_boot, seed=i
        )
        assert result is not None
        rows.append((curve, spacing, result.label, pointwise_label(curve, i)))
    seconds = time.perf_counter() - started

    confusion: dict[str, Counter[str]] = defaultdict(Counter)
    for curve, _, label, _ in rows:
        confusion[curve.shape][label] += 1
    planted = [r for r in rows if r[0].shape == DIP]
    called = [r for r in rows if r[2] == DIP]
    negatives = [r for r in rows if r[0].shape in ("flat", "monotone gain", "monotone loss")]
    big = [r for r in planted if r[0].size >= 2.0]
    by_size = {
        f"{lo:g}-{hi:g}": rate(
            sum(r[2] == DIP for r in planted if lo <= r[0].size < hi),
            sum(lo <= r[0].size < hi for r in planted),
        )
        for lo, hi in BINS
    }
    fp_by_shape = {
        shape: rate(sum(r[2] == DIP for r in of_shape), len(of_shape))
        for shape in SHAPES
        if shape != DIP
        for of_shape in [[r for r in rows if r[0].shape == shape]]
    }
    validation = DetectorValidation(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        command="python benchmarks/detector_validation.py " + " ".join(sys.argv[1:]),
        runs=len(rows),
        runs_per_shape={shape: sum(confusion[shape].values()) for shape in SHAPES},
        prompt_counts=list(PROMPTS),
        spacings=SPACINGS,
        size_range=SIZES,
        precision=rate(sum(r[0].shape == DIP for r in called), len(called)),
        recall=rate(sum(r[2] == DIP for r in planted), len(planted)),
        recall_at_2ci=rate(sum(r[2] == DIP for r in big), len(big)),
        recall_by_size=by_size,
        false_positive_rate=rate(sum(r[2] == DIP for r in negatives), len(negatives)),
        false_positive_by_shape=fp_by_shape,
        confusion={shape: dict(confusion[shape]) for shape in SHAPES},
    )
    peer_called = [r for r in rows if r[3]]
    peer = {
        "precision": rate(sum(r[0].shape == DIP for r in peer_called), len(peer_called)),
        "recall": rate(sum(r[3] for r in planted), len(planted)),
        "recall_at_2ci": rate(sum(r[3] for r in big), len(big)),
        "false_positive_rate": rate(sum(r[3] for r in negatives), len(negatives)),
    }

    print(f"{len(rows)} synthetic runs in {seconds:.1f} s (n_boot {args.n_boot}, seed {args.seed})")
    print(f"{'':28s}{'detector':>10s}{'pointwise peer':>16s}{'ratio':>8s}")
    for name in ("precision", "recall", "recall_at_2ci", "false_positive_rate"):
        ours, theirs = getattr(validation, name), peer[name]
        ratio = ours / theirs if theirs else float("nan")
        print(f"{name:28s}{ours:10.3f}{theirs:16.3f}{ratio:8.2f}")
    print("recall by planted depth (CI widths):", {k: round(v, 3) for k, v in by_size.items()})
    print("dip-and-recovery rate by planted shape:", {k: round(v, 3) for k, v in fp_by_shape.items()})
    labels = sorted({label for c in confusion.values() for label in c})
    print(f"{'planted / labelled':22s}" + "".join(f"{label:>19s}" for label in labels))
    for shape in SHAPES:
        print(f"{shape:22s}" + "".join(f"{confusion[shape][label]:19d}" for label in labels))
    if args.write:
        path = Path(__file__).resolve().parents[1] / "src" / "sftscope" / "analyze" / VALIDATION_FILE
        path.write_text(validation.model_dump_json(indent=1) + "\n", encoding="utf-8")
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
