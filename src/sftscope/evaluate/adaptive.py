"""The adaptive sweep: evaluate the checkpoints where the curve moves, not every saved one.

1. **Coarse**: the base, the last checkpoint, and the saved checkpoints nearest a log-spaced grid
   between the first and the last (about one per doubling of the step).
2. **Refine**, round after round, on every task's score curve and every domain's average of two or
   more tasks (safety excepted: its tasks expect refusal or compliance, so their average cancels
   what it measures), bisecting the interval between two evaluated checkpoints when:
   - `pin dip bottom`: the curve dips (`sftscope.stats.dip_shape`, the analysis's own rule) and the
     interval borders its bottom, or any below-base checkpoint not significantly above the bottom
     (a broad bottom is pinned once all of it is);
   - `pin recovery`: it ends at the recovery step, or at any checkpoint between the bottom and the
     recovery that is not significantly below base (the first crossing may lie there);
   - `test rebound`: the dip has no significant rebound yet and the interval borders a checkpoint
     above the bottom by its own interval (its neighbours tell staying down from coming back);
   - `bisect: change > CI`: its two checkpoints differ beyond their paired bootstrap band
     (simultaneous over the curve's intervals);
   - `densify: dip borderline` (or `gain`, `rebound`): one of the tests the label rests on (some
     checkpoint below base; some above base, without a clear dip; a rebound) has its deciding band
     bound within `MARGIN` standard errors of zero. Every interval of the curve is bisected: a
     sweep of every saved checkpoint judges with a wider band (the critical value grows with the
     checkpoints it covers) and may hold a more extreme one, so only a denser curve settles it.
   A bisection evaluates the saved checkpoint nearest the interval's log-midpoint; an interval
   without saved checkpoints inside is pinned.
3. **Stop** when nothing is left to refine or the budget (checkpoints evaluated, the base included)
   is spent. Under a budget the bottom's and the recovery step's own intervals go first, then the
   rest of a broad bottom and the rebound tests, then change-bisection, then densification; a
   domain average before a single task.

Each round's checkpoints are recorded in the store's `sweep_plan` table with the reason, after they
are evaluated. The curves are read back through the store's read API: a resumed sweep re-derives the
same plan from the rows it kept, and reuses them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from sftscope.errors import InputError
from sftscope.evaluate.store import ResultsStore
from sftscope.evaluate.sweep import SweepStats
from sftscope.evaluate.targets import Target
from sftscope.stats import (
    DEFAULT_BOOT,
    Bootstrap,
    DipShape,
    bootstrap_curve,
    dip_shape,
    mean_bootstrap,
    percentile,
    significant_changes,
    task_seed,
)

COARSE = "coarse"
PIN_BOTTOM = "pin dip bottom"
PIN_RECOVERY = "pin recovery"
TEST_REBOUND = "test rebound"
CHANGE = "bisect: change > CI"
DENSIFY = "densify: {test} borderline"
MARGIN = 0.5
"""How near zero (in standard errors) a test's deciding bound is borderline: about what the band's
critical value grows by from the coarse set to every saved checkpoint of a run."""
UNAVERAGED_DOMAINS = ("safety",)


@dataclass(frozen=True)
class PlanEntry:
    """A checkpoint the sweep evaluated and why."""

    run: str
    step: int
    round: int
    reason: str


@dataclass(frozen=True)
class _Candidate:
    step: int
    reason: str
    priority: tuple[int, int]


def coarse_steps(saved: list[int]) -> list[int]:
    """The base, the last checkpoint and the saved ones nearest a grid of one point per doubling."""
    later = [s for s in saved if s > 0]
    if len(later) <= 2:
        return sorted(saved)
    first, last = later[0], later[-1]
    points = max(2, math.ceil(math.log2(last / first)) + 1)
    grid = np.geomspace(first, last, points)
    logs = np.log(np.array(later, dtype=float))
    chosen = {later[int(np.argmin(np.abs(logs - math.log(g))))] for g in grid}
    return sorted({0} & set(saved) | chosen | {last})


def bisect(saved: list[int], a: int, b: int) -> int | None:
    """The saved checkpoint strictly between a and b nearest their log-midpoint; None if adjacent."""
    between = [s for s in saved if a < s < b]
    if not between:
        return None
    middle = (math.log1p(a) + math.log1p(b)) / 2
    return min(between, key=lambda s: abs(math.log1p(s) - middle))


def read_curves(
    store: ResultsStore, run: str, n_boot: int = DEFAULT_BOOT
) -> dict[str, tuple[list[int], Bootstrap]]:
    """A run's goodness curves (lower-is-better scores flipped) from the store: one per task, keyed
    by task, and one per domain average, keyed `all <domain>`, over the steps all its tasks have."""
    table = store.prompt_scores(run).to_pylist()
    by_task: dict[str, list[dict]] = {}
    for row in table:
        by_task.setdefault(row["task"], []).append(row)
    curves: dict[str, tuple[list[int], Bootstrap]] = {}
    domains: dict[str, list[str]] = {}
    for task, rows in by_task.items():
        steps = sorted({r["step"] for r in rows})
        prompts = {p: i for i, p in enumerate(sorted({r["prompt_id"] for r in rows}))}
        matrix = np.full((len(steps), len(prompts)), np.nan)
        for r in rows:
            matrix[steps.index(r["step"]), prompts[r["prompt_id"]]] = r["score"]
        direction = 1.0 if rows[0]["higher_is_better"] else -1.0
        curves[task] = (steps, bootstrap_curve(direction * matrix, n_boot=n_boot, seed=task_seed(task)))
        domains.setdefault(rows[0]["domain"], []).append(task)
    for domain, tasks in domains.items():
        if domain in UNAVERAGED_DOMAINS or len(tasks) < 2:  # one task's average is that task's curve
            continue
        common = sorted(set.intersection(*(set(curves[t][0]) for t in tasks)))
        boots = [_at_steps(*curves[t], common) for t in tasks]
        curves[f"all {domain}"] = (common, mean_bootstrap(boots))
    return curves


def _at_steps(steps: list[int], boot: Bootstrap, keep: list[int]) -> Bootstrap:
    index = [steps.index(s) for s in keep]
    return Bootstrap(boot.point[index], boot.replicates[:, index])


def _above_bottom(shape: DipShape, i: int) -> bool:
    """Is checkpoint i above the bottom by its own paired interval?"""
    assert shape.bottom is not None
    reps, bottom = shape.delta_replicates, shape.bottom
    lo = percentile(reps[:, i] - reps[:, bottom], shape.delta[i] - shape.delta[bottom]).lo
    return lo is not None and lo > 0


def _around(shape: DipShape) -> list[tuple[str, int, int]]:
    """(reason, checkpoint, tier) of checkpoints whose neighbouring intervals the dip rule still
    needs refined; tier 0 (the bottom itself, the recovery step itself) goes before tier 1.

    - the bottom, and with a rebound every below-base checkpoint not above it by its own interval
      (a broad bottom is pinned only once all of it is); without a rebound the lowest point is no
      dip's bottom, so only it is pinned;
    - with a rebound, every checkpoint after the bottom up to the recovery step that is not
      significantly below base: the first crossing back to base may lie just before it;
    - without a rebound, the checkpoints after the bottom above it by their own interval though not
      by the joint band: their neighbours decide between staying down and coming back part way.
    """
    bottom = shape.bottom
    if bottom is None:
        return []
    if not shape.rebound:
        later = range(bottom + 1, shape.delta.size)
        return [(PIN_BOTTOM, bottom, 0)] + [(TEST_REBOUND, i, 1) for i in later if _above_bottom(shape, i)]
    low = [i for i in range(shape.delta.size) if shape.hi[i] < 0 and not _above_bottom(shape, i)]
    end = shape.delta.size if shape.recovery is None else shape.recovery + 1
    back = [i for i in range(bottom + 1, end) if shape.hi[i] >= 0]
    return [(PIN_BOTTOM, i, int(i != bottom)) for i in low] + [
        (PIN_RECOVERY, i, int(i != shape.recovery)) for i in back
    ]


def _borderline(shape: DipShape) -> str | None:
    """The first of the label's tests whose deciding bound is within `MARGIN` standard errors of 0.

    Either verdict may flip on the way to every saved checkpoint: their band is wider (its critical
    value grows with the checkpoints it covers) and they may hold a more extreme checkpoint than the
    ones evaluated. The gain test decides the label only without a clear dip.
    """
    if abs(shape.below_margin) <= MARGIN:
        return "dip"
    if shape.below_margin >= -MARGIN and abs(shape.above_margin) <= MARGIN:
        return "gain"
    if shape.rebound_margin is not None and abs(shape.rebound_margin) <= MARGIN:
        return "rebound"
    return None


def _curve_refinements(name: str, steps: list[int], boot: Bootstrap, saved: list[int]) -> list[_Candidate]:
    rank = 0 if name.startswith("all ") else 1  # a domain average before a single task
    intervals: list[tuple[int, int, str, int]] = []
    if steps[0] == 0:
        shape = dip_shape(boot)
        for reason, i, tier in _around(shape):  # checkpoint i is steps[i + 1] (base first)
            intervals.append((i, i + 1, reason, tier))
            if reason != PIN_RECOVERY and i + 2 < len(steps):
                intervals.append((i + 1, i + 2, reason, tier))
        test = _borderline(shape)
        if test is not None:
            reason = DENSIFY.format(test=test)
            intervals += [(i, i + 1, reason, 3) for i in range(len(steps) - 1)]
    intervals += [(int(i), int(i) + 1, CHANGE, 2) for i in np.flatnonzero(significant_changes(boot))]
    out = []
    for left, right, reason, tier in intervals:
        a, b = steps[left], steps[right]
        step = bisect(saved, a, b)
        if step is not None:
            out.append(_Candidate(step, f"{reason} between {a} and {b} ({name})", (tier, rank)))
    return out


def refinements(curves: dict[str, tuple[list[int], Bootstrap]], saved: list[int]) -> list[_Candidate]:
    """What each curve still asks for, as (step, reason) candidates, highest priority first."""
    out = [
        candidate
        for name, (steps, boot) in sorted(curves.items())
        if len(steps) >= 2
        for candidate in _curve_refinements(name, steps, boot, saved)
    ]
    return sorted(out, key=lambda c: c.priority)


def _add(total: SweepStats, part: SweepStats) -> None:
    for f in fields(SweepStats):
        if f.name == "statuses":
            for status, n in part.statuses.items():
                total.statuses[status] = total.statuses.get(status, 0) + n
        else:
            setattr(total, f.name, getattr(total, f.name) + getattr(part, f.name))


def check_adaptive(targets: list[Target], budget: int | None) -> None:
    """Bad input for an adaptive sweep, found before anything is written."""
    if len({t.run for t in targets}) != 1 or len(targets) < 3 or 0 not in {t.step for t in targets}:
        message = "refines the checkpoints of one training run (its base and at least two checkpoints)"
        raise InputError("--adaptive", f"{message}; give a run directory")
    if budget is not None and budget < 2:
        raise InputError("--budget", f"at least 2 checkpoints (the base and the last), got {budget}")


def adaptive_sweep(
    targets: list[Target],
    store: ResultsStore,
    sweep: Callable[[list[Target]], SweepStats],
    *,
    budget: int | None = None,
    n_boot: int = DEFAULT_BOOT,
    log: Callable[[str], None] = lambda message: None,
) -> tuple[list[PlanEntry], SweepStats]:
    """Evaluate a run's checkpoints adaptively; `sweep(targets)` evaluates some into `store`.

    Returns the plan (every checkpoint evaluated, with its round and reason) and the summed stats.
    """
    check_adaptive(targets, budget)
    run = targets[0].run
    by_step = {t.step: t for t in targets}
    saved = sorted(by_step)
    plan = {  # a resumed sweep: what it evaluated before counts as evaluated
        row["step"]: PlanEntry(run, row["step"], row["round"], row["reason"])
        for row in store.sweep_plan().to_pylist()
        if row["run"] == run and row["step"] in by_step
    }
    total = SweepStats()
    round_ = 1 + max((e.round for e in plan.values()), default=-1)

    def select(candidates: list[_Candidate]) -> dict[int, str]:
        room = len(saved) if budget is None else budget - len(plan)
        chosen: dict[int, str] = {}
        for candidate in candidates:
            if candidate.step not in plan and candidate.step not in chosen and len(chosen) < room:
                chosen[candidate.step] = candidate.reason
        return chosen

    chosen = select([_Candidate(s, COARSE, (0, 0)) for s in coarse_steps(saved)])
    while True:
        if chosen:
            log(f"{run}: round {round_}, evaluating steps {sorted(chosen)}")
            _add(total, sweep([by_step[s] for s in sorted(chosen)]))
            entries = [PlanEntry(run, s, round_, reason) for s, reason in sorted(chosen.items())]
            store.record_plan([(e.run, e.step, e.round, e.reason) for e in entries])
            plan.update({e.step: e for e in entries})
            round_ += 1
        wanted = refinements(read_curves(store, run, n_boot), saved)
        chosen = select(wanted)
        if not chosen:
            break
    if any(c.step not in plan for c in wanted):
        log(f"{run}: budget of {budget} checkpoints spent with refinements left")
    return sorted(plan.values(), key=lambda e: e.step), total
