"""SIGKILL at seeded random points of a sweep (while it generates, scores in its worker process on the
sweep's background thread, or commits), re-run after each: no row lost or stored twice, committed rows
never recomputed, and the outputs those of a sweep never killed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from fake_run import make_run
from faults_support import kill_when, rng
from test_sweep import CHILD

from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.spec import load_task
from sftscope.evaluate.store import KEY, ResultsStore
from sftscope.evaluate.sweep import Task, run_sweep
from sftscope.evaluate.targets import resolve_targets

KILLS = 3
ROWS = 36  # CHILD: 3 models x 12 prompts, committed 3 at a time
POOLED = ["scorer.workers=1"]  # scored in a worker process: the background thread's path


def test_a_sweep_survives_kills_at_random_points(tiny_model_dir: Path, tmp_path: Path) -> None:
    points = rng("eval")
    run = make_run(tiny_model_dir, tmp_path / "runs")
    store_path = tmp_path / "killed.duckdb"
    kept: dict[tuple, object] = {}
    for _ in range(KILLS):
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(run), str(store_path), *POOLED],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdout is not None
        commits = points.randint(1, 3)  # the next kill comes after this many more commits
        seen = 0

        def ready(child: subprocess.Popen = child, commits: int = commits) -> bool:
            nonlocal seen
            line = child.stdout.readline() if child.stdout else ""
            seen += line.startswith("committed")
            return seen >= commits

        kill_when(child, ready, points.uniform(0.0, 0.05))
        with ResultsStore(store_path, read_only=True) as store:
            rows = store.samples().to_pylist()
        keys = [tuple(r[k] for k in KEY) for r in rows]
        assert len(keys) == len(set(keys)) < ROWS
        for key, row in zip(keys, rows, strict=True):  # what was committed stays as it was
            assert kept.setdefault(key, row["created_at"]) == row["created_at"]

    tasks = [Task.load(load_task("safety_benign", ["source.n=12", "sampling.max_new_tokens=12", *POOLED]))]
    backend = make_backend("transformers", batch_size=4)
    with ResultsStore(store_path) as store:
        stats = run_sweep(resolve_targets(run), tasks, store, backend, commit_every=3, show_progress=False)
        after = store.samples().to_pylist()
    assert stats.computed == ROWS - len(kept)
    keys = [tuple(r[k] for k in KEY) for r in after]
    assert len(keys) == len(set(keys)) == ROWS
    assert all(kept.get(k, r["created_at"]) == r["created_at"] for k, r in zip(keys, after, strict=True))
    with ResultsStore(tmp_path / "clean.duckdb") as clean:  # greedy: equal to a sweep never killed
        run_sweep(resolve_targets(run), tasks, clean, backend, show_progress=False)
        reference = {tuple(r[k] for k in KEY): r["output"] for r in clean.samples().to_pylist()}
    assert {k: r["output"] for k, r in zip(keys, after, strict=True)} == reference
