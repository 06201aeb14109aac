"""SIGKILL of the study driver at seeded random points (mid-job, mid-merge, mid-state-write), resumed
after each: every cell ends done, and the study store holds exactly the rows of a study never killed.

The stages are the fake ones of test_study_runner.py (files written as the stage contracts say),
slowed down so kills land inside jobs; each real stage's own kill behaviour is tested with the stage.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
from faults_support import kill_when, rng
from test_study_runner import FakeStages, make_study, run

from sftscope.study.live import cell_statuses
from sftscope.study.state import StudyDir

KILLS = 3
DRIVER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    sys.path.insert(0, sys.argv[3])
    from test_study_runner import FakeStages
    from sftscope.study.executors import LocalExecutor
    from sftscope.study.runner import run_study

    stages = FakeStages()

    def slow(job):
        print("started", job.name, flush=True)
        time.sleep(0.1)
        return stages(job)

    run_study(Path(sys.argv[1]), Path(sys.argv[2]),
              executor_factory=lambda spec, _: LocalExecutor(spec.executor.workers, run=slow))
    print("finished", flush=True)
    """
)


def _contents(store: Path) -> tuple[list[tuple], list[tuple]]:
    with duckdb.connect(str(store), read_only=True) as con:
        samples = con.execute("SELECT * FROM samples ORDER BY ALL").fetchall()
        models = con.execute("SELECT * FROM models ORDER BY ALL").fetchall()
    return samples, models


def test_a_study_survives_kills_at_random_points(tmp_path: Path) -> None:
    points = rng("study")
    spec = make_study(tmp_path)
    out = tmp_path / "killed"
    for _ in range(KILLS):
        driver = subprocess.Popen(
            [sys.executable, "-c", DRIVER, str(spec), str(out), str(Path(__file__).parents[1] / "study")],
            stdout=subprocess.PIPE,
            text=True,
        )
        starts, seen = points.randint(1, 4), 0

        def ready(driver: subprocess.Popen = driver, starts: int = starts) -> bool:
            nonlocal seen
            line = driver.stdout.readline() if driver.stdout else ""
            assert not line.startswith("finished"), "the study finished before the kill"
            seen += line.startswith("started")
            return seen >= starts

        kill_when(driver, ready, points.uniform(0.0, 0.15))
    outcome = run(spec, out, FakeStages())
    assert outcome.failed == [] and set(cell_statuses(StudyDir(out)).values()) == {"done"}

    clean = run(spec, tmp_path / "clean", FakeStages())
    assert clean.failed == []
    assert _contents(StudyDir(out).store) == _contents(StudyDir(tmp_path / "clean").store)
