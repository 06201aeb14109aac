"""`analyze(store)`: read the results store, compute every table and curve, return the Analysis."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa

from sftscope.analysis_file import (
    Analysis,
    CalibrationRow,
    Curve,
    DipResult,
    MethodNote,
    RunMeta,
    SweepPlanEntry,
)
from sftscope.analyze import calibration, dips, findings
from sftscope.analyze.behaviour_judge import judge_classifier, judge_detector
from sftscope.analyze.calibration import Classifier
from sftscope.analyze.curves import (
    Cell,
    build_cells,
    cell_bootstrap,
    is_log_spaced,
    to_curve,
    uneven_prompts,
)
from sftscope.analyze.dips import analyze_curve, judge_curve
from sftscope.analyze.effects import budget_comparisons, domain_curves, effect_rows, gain_costs
from sftscope.analyze.features import METRICS
from sftscope.analyze.runs import RUNS_FILE, read_runs_file, resolve_runs
from sftscope.analyze.validation import detector_validation, validation_note
from sftscope.evaluate.store import ResultsStore, store_file
from sftscope.scoring.behaviours import detect
from sftscope.stats import DEFAULT_BOOT, METHOD, task_seed

CURVE_METRICS = (
    *(m for m in METRICS if m not in ("effective_backtracks", "surface_markers")),
    "procedure_index",
)
METRIC_LABELS = {**METRICS, "procedure_index": "procedure share of backtracks"}


def methods() -> list[MethodNote]:
    """The methods text the report quotes: how curves, intervals and dip labels were computed, and
    how well the dip rule did on planted curves (when the benchmark's figures are shipped)."""
    figures = detector_validation()
    return [
        MethodNote(key="bootstrap", title="Intervals", text=METHOD),
        MethodNote(key="dips", title="Dip decision rule", text=dips.DECISION_RULE),
        *([validation_note(figures)] if figures else []),
    ]


def read_store(path: Path) -> tuple[pa.Table, list[SweepPlanEntry]]:
    """The samples and the adaptive sweeps' plans of a store."""
    with ResultsStore(store_file(path), read_only=True) as store:  # never creates tables
        plan = [SweepPlanEntry.model_validate(row) for row in store.sweep_plan().to_pylist()]
        return store.samples(), plan


def _calibration(judge: Classifier | None) -> tuple[list[CalibrationRow], list[str]]:
    """Lexicon (and judge) precision/recall on the labelled traces; the lexicon's misclassified traces."""
    traces = calibration.load_traces()
    sizes = {split: sum(split in ("all", t.split) for t in traces) for split in (*calibration.SPLITS, "all")}
    classifiers = {"lexicon": calibration.lexicon_classifier, **({"judge": judge} if judge else {})}
    rows = [
        CalibrationRow(
            classifier=name,
            behaviour=s.behaviour,
            split=s.split,
            precision=s.precision,
            recall=s.recall,
            support=s.tp + s.fn,
            n=sizes[s.split],
        )
        for name, classify in classifiers.items()
        for s in calibration.evaluate_classifier(traces, classify)
    ]
    return rows, calibration.misclassified(traces)


def _curves_and_dips(cells: list[Cell], n_boot: int) -> tuple[list[Curve], list[DipResult]]:
    curves, dips = [], []
    for cell in cells:
        for metric in CURVE_METRICS:
            boot = cell_bootstrap(cell, metric, n_boot)
            curves.append(to_curve(cell.run, cell.task, cell.domain, metric, cell.steps, boot))
        result = analyze_curve(
            cell.run,
            cell.task,
            cell.domain,
            cell.higher_is_better,
            cell.steps,
            cell.values["score"],
            n_boot=n_boot,
            seed=task_seed(cell.task),
        )
        if result is not None:
            dips.append(result)
    return curves, dips


def analyze_samples(
    samples: pa.Table,
    runs_meta: Mapping[str, RunMeta | Mapping[str, Any]] | None = None,
    *,
    source: str = "<memory>",
    store_dir: Path | None = None,
    reference: str | None = None,
    n_boot: int = DEFAULT_BOOT,
    behaviour_judge: Mapping[str, Any] | None = None,
    sweep_plan: list[SweepPlanEntry] | None = None,
) -> Analysis:
    """The whole analysis from a samples table (the store's `samples()` contract).

    `behaviour_judge` (params of `sftscope.scoring.judge`: base_url, model, api_key_env) switches the
    behaviour counts from the lexicon to the LLM judge, and calibrates the judge too.
    """
    detector = judge_detector(behaviour_judge) if behaviour_judge else detect
    cells, tasks = build_cells(samples, detector)
    runs, notes = resolve_runs({c.run for c in cells}, store_dir or Path("."), runs_meta)
    curves, dips = _curves_and_dips(cells, n_boot)
    by_domain = domain_curves(cells)
    for (run, domain), (steps, boot) in sorted(by_domain.items()):
        task = f"all {domain}"
        curves.append(to_curve(run, task, domain, "score", steps, boot))
        n_prompts = sum(c.values["score"].shape[1] for c in cells if c.run == run and c.domain == domain)
        result = judge_curve(run, task, domain, True, steps, boot, n_prompts)
        if result is not None:
            dips.append(result)
    unsandboxed = {t.task: t.unsandboxed for t in tasks if t.unsandboxed}
    if unsandboxed:
        notes.append(
            "WARNING: model-written code ran WITHOUT the sandbox (allow_unsandboxed) in "
            + ", ".join(f"{n} rows of {task}" for task, n in sorted(unsandboxed.items()))
            + "; those programs could read and change this machine"
        )
    uneven = uneven_prompts(cells)
    if uneven:
        notes.append(
            "some steps have fewer prompts than others of the same run and task, so their points rest on "
            f"a subset (re-run `sftscope eval` to fill them in): {'; '.join(uneven)}"
        )
    skipped = sorted({f"{c.run}/{c.task}" for c in cells if 0 not in c.steps})
    if skipped:
        notes.append(f"no base (step 0) results, so no deltas for: {', '.join(skipped)}")
    seeds = defaultdict(set)
    for r in runs:
        seeds[(r.condition, r.base, r.preset)].add(r.seed)
    if any(len(s) > 1 for s in seeds.values()):
        notes.append(
            "cells with several seeds are averaged; intervals cover prompt sampling, not seed variation"
        )
    gains = gain_costs(by_domain, runs)
    budget = budget_comparisons(by_domain, runs, reference)
    rows, errors = _calibration(judge_classifier(behaviour_judge) if behaviour_judge else None)
    classifier = (
        f"judge {behaviour_judge['model']} at {behaviour_judge['base_url']}" if behaviour_judge else "lexicon"
    )
    return Analysis(
        source=source,
        runs=runs,
        tasks=tasks,
        log_spaced_steps=is_log_spaced(sorted({s for c in cells for s in c.steps})),
        metric_labels=METRIC_LABELS,
        curves=curves,
        dips=dips,
        effects=effect_rows(by_domain, runs),
        budget=budget,
        gain_cost=gains,
        behaviour_classifier=classifier,
        calibration=rows,
        calibration_errors=errors,
        findings=[
            findings.optimization(dips),
            findings.data(budget),
            findings.capability(runs, cells, by_domain, gains, reference),
            findings.cost(gains, reference),
        ],
        sweep_plan=[e for e in sweep_plan or [] if e.run in {c.run for c in cells}],
        detector_validation=detector_validation(),
        methods=methods(),
        notes=notes,
    )


def analyze(
    store_path: str | Path,
    runs_meta: Mapping[str, RunMeta | Mapping[str, Any]] | None = None,
    *,
    reference: str | None = None,
    n_boot: int = DEFAULT_BOOT,
    behaviour_judge: Mapping[str, Any] | None = None,
) -> Analysis:
    """Analyze a results store (a `results.duckdb` file or a directory holding one).

    Run metadata comes from `runs_meta`, else a `runs.json` next to the store, else each run's
    `config.yaml`/`manifest.json`. `reference` names the data condition the others are compared with.
    """
    path = store_file(Path(store_path))
    if runs_meta is None and (path.parent / RUNS_FILE).is_file():
        runs_meta = read_runs_file(path.parent / RUNS_FILE)
    samples, plan = read_store(path)
    return analyze_samples(
        samples,
        runs_meta,
        source=str(path),
        store_dir=path.parent,
        reference=reference,
        n_boot=n_boot,
        behaviour_judge=behaviour_judge,
        sweep_plan=plan,
    )
