"""From the store's sample rows to per-prompt matrices and bootstrapped curves.

A *cell* is one (run, task): for each metric a (steps x prompts) matrix of per-prompt means, with
the columns aligned on the task's sorted prompt ids across all runs. That alignment plus one
resample per task (seeded by the task name) makes every comparison between runs or conditions
paired on the same prompts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from sftscope.analysis_file import OVER_REFUSAL, Curve, CurvePoint, TaskInfo
from sftscope.analyze.features import METRICS, sample_features
from sftscope.errors import SftscopeError
from sftscope.scoring.behaviours import BehaviourCounts, detect
from sftscope.scoring.code import UNSANDBOXED_PREFIX
from sftscope.stats import DEFAULT_BOOT, Bootstrap, bootstrap_curve, mean_bootstrap, pointwise, task_seed

REQUIRED_COLUMNS = (
    "run",
    "step",
    "task",
    "domain",
    "higher_is_better",
    "prompt_id",
    "output",
    "score",
    "status",
)


@dataclass
class Cell:
    """One (run, task): per-metric (steps x prompts) matrices of per-prompt means."""

    run: str
    task: str
    domain: str
    higher_is_better: bool
    steps: list[int]
    values: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def direction(self) -> float:
        return 1.0 if self.higher_is_better else -1.0


def _over_refusal_tasks(con: duckdb.DuckDBPyConnection, columns: list[str]) -> set[str]:
    """Safety tasks scored by `refusal` with expect=comply, read from the rows themselves.

    The tasks table does not record the scorer's parameters, but every row does implicitly: the
    refusal scorer extracts "refusal" or "compliance" and scores 1 for the expected one. A task
    whose compliant answers score 1 expects compliance.
    """
    if "scorer" not in columns or "extracted" not in columns:
        return set()
    rows = con.execute(
        """SELECT task,
                  sum(CASE WHEN (extracted = 'compliance') = (score = 1) THEN 1 ELSE 0 END),
                  sum(CASE WHEN (extracted = 'refusal') = (score = 1) THEN 1 ELSE 0 END)
           FROM samples WHERE domain = 'safety' AND scorer = 'refusal'
                AND extracted IN ('refusal', 'compliance') AND score IN (0, 1)
           GROUP BY task"""
    ).fetchall()
    return {task for task, comply, refuse in rows if comply > refuse}


def build_cells(
    samples: pa.Table, detector: Callable[[str], BehaviourCounts] = detect
) -> tuple[list[Cell], list[TaskInfo]]:
    """Aggregate sample rows into cells; also describe each task (prompts, rows, statuses).

    Safety tasks that expect compliance get the derived domain `over-refusal` (see OVER_REFUSAL).
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in samples.column_names]
    if missing:
        raise SftscopeError(f"results store samples lack columns {missing}")
    finish = samples["finish_reason"].to_pylist() if "finish_reason" in samples.column_names else None
    features = sample_features(samples["output"].to_pylist(), samples["status"].to_pylist(), finish, detector)
    optional = ("output_tokens", "scorer", "extracted", "error")
    table = samples.select([c for c in (*REQUIRED_COLUMNS, *optional) if c in samples.column_names])
    for name, values in features.items():
        table = table.append_column(name, pa.array(values))
    if "output_tokens" not in table.column_names:
        table = table.append_column("output_tokens", pa.nulls(len(table), pa.float64()))
    metrics = list(METRICS)
    con = duckdb.connect()
    con.register("samples", table)
    benign = _over_refusal_tasks(con, table.column_names)
    if benign:
        domains = [
            OVER_REFUSAL if task in benign else domain
            for task, domain in zip(table["task"].to_pylist(), table["domain"].to_pylist(), strict=True)
        ]
        table = table.set_column(table.column_names.index("domain"), "domain", pa.array(domains))
        con.unregister("samples")
        con.register("samples", table)
    averages = ", ".join(f"avg(CAST({m} AS DOUBLE)) AS {m}" for m in metrics)
    grouped = con.execute(
        f"""SELECT run, task, any_value(domain) AS domain, bool_and(higher_is_better) AS hib, step,
                   CAST(prompt_id AS VARCHAR) AS prompt_id, {averages}
            FROM samples GROUP BY run, task, step, CAST(prompt_id AS VARCHAR)
            ORDER BY task, run, step, prompt_id"""
    ).fetchall()
    unsandboxed = (
        f"count(*) FILTER (WHERE starts_with(error, '{UNSANDBOXED_PREFIX}'))"
        if "error" in table.column_names
        else "0"
    )
    info_rows = con.execute(
        f"""SELECT task, any_value(domain), bool_and(higher_is_better),
                  count(DISTINCT CAST(prompt_id AS VARCHAR)), count(*), list(status), {unsandboxed}
           FROM samples GROUP BY task ORDER BY task"""
    ).fetchall()
    tasks = [
        TaskInfo(
            task=task,
            domain=domain,
            higher_is_better=bool(hib),
            n_prompts=n_prompts,
            n_samples=n_rows,
            statuses={s: statuses.count(s) for s in sorted(set(statuses))},
            unsandboxed=unsandboxed_rows,
        )
        for task, domain, hib, n_prompts, n_rows, statuses, unsandboxed_rows in info_rows
    ]
    prompts: dict[str, list[str]] = {}
    for row in grouped:
        prompts.setdefault(row[1], []).append(row[5])
    columns = {task: {p: i for i, p in enumerate(sorted(set(ids)))} for task, ids in prompts.items()}
    by_cell: dict[tuple[str, str], list[tuple]] = {}
    for row in grouped:
        by_cell.setdefault((row[0], row[1]), []).append(row)
    cells = []
    for (run, task), rows in by_cell.items():
        steps = sorted({r[4] for r in rows})
        step_index = {s: i for i, s in enumerate(steps)}
        cell = Cell(run, task, rows[0][2], bool(rows[0][3]), steps)
        for offset, metric in enumerate(metrics, start=6):
            matrix = np.full((len(steps), len(columns[task])), np.nan)
            for r in rows:
                if r[offset] is not None:
                    matrix[step_index[r[4]], columns[task][r[5]]] = r[offset]
            cell.values[metric] = matrix
        cells.append(cell)
    return cells, tasks


def uneven_prompts(cells: list[Cell]) -> list[str]:
    """The (run, task)s with fewer prompts at some steps than at their fullest one, as `run/task
    (step 20: 30/64)`: a sweep killed mid-checkpoint, or a checkpoint swept with fewer prompts. Such
    a point rests on a subset (a killed sweep's is its shortest prompts), which the reader must know."""
    out = []
    for cell in cells:
        counts = (~np.isnan(cell.values["score"])).sum(axis=1)
        short = [
            f"step {s}: {n}/{counts.max()}"
            for s, n in zip(cell.steps, counts, strict=True)
            if n < counts.max()
        ]
        if short:
            out.append(f"{cell.run}/{cell.task} ({', '.join(short)})")
    return out


def cell_bootstrap(cell: Cell, metric: str, n_boot: int = DEFAULT_BOOT) -> Bootstrap:
    """Bootstrap one metric of one cell; `procedure_index` is effective / (effective + surface)."""
    seed = task_seed(cell.task)
    if metric == "procedure_index":
        effective = cell.values["effective_backtracks"]
        return bootstrap_curve(
            effective, effective + cell.values["surface_markers"], n_boot=n_boot, seed=seed
        )
    return bootstrap_curve(cell.values[metric], n_boot=n_boot, seed=seed)


def to_curve(run: str, task: str, domain: str, metric: str, steps: list[int], boot: Bootstrap) -> Curve:
    points = [
        CurvePoint(step=step, value=est.value, lo=est.lo, hi=est.hi)
        for step, est in zip(steps, pointwise(boot), strict=True)
    ]
    return Curve(run=run, task=task, domain=domain, metric=metric, points=points)


def domain_bootstrap(cells: list[Cell], n_boot: int = DEFAULT_BOOT) -> tuple[list[int], Bootstrap] | None:
    """Average goodness (lower-is-better scores flipped) over a run's tasks of one domain.

    Tasks are resampled independently (different seeds), so averaging their replicates gives the
    bootstrap of the average. Only the steps every task was evaluated at are kept.
    """
    if not cells:
        return None
    steps = sorted(set.intersection(*(set(c.steps) for c in cells)))
    if not steps:
        return None
    boots = [
        bootstrap_curve(
            cell.direction * cell.values["score"][[cell.steps.index(s) for s in steps]],
            n_boot=n_boot,
            seed=task_seed(cell.task),
        )
        for cell in cells
    ]
    return steps, mean_bootstrap(boots)


def is_log_spaced(steps: list[int]) -> bool:
    """Checkpoints that roughly double (1, 2, 4, 8, ...) read best on a log axis."""
    positive = sorted({s for s in steps if s > 0})
    if len(positive) < 4:
        return False
    ratios = np.array(positive[1:]) / np.array(positive[:-1])
    return bool(np.median(ratios) >= 1.5)
