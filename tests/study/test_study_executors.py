"""Executors and stores: real subprocess jobs, logs, death with the study process, idempotent merges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from sftscope.study.executors import Job, LocalExecutor, SlurmExecutor, run_job
from sftscope.study.stores import copy_rows


def test_a_job_logs_its_output_and_returns_its_exit_code(tmp_path: Path) -> None:
    job = Job(
        "x",
        [sys.executable, "-c", "import os; print(os.environ['MARK']); raise SystemExit(4)"],
        tmp_path / "logs" / "x.log",
        env={"MARK": "hello"},
    )
    executor = LocalExecutor(2)
    result = executor.submit(job).result()
    executor.shutdown()
    assert result.returncode == 4 and "hello" in result.tail
    assert job.log.read_text().startswith(f"\n$ {sys.executable}")


def test_a_missing_program_is_a_failed_job(tmp_path: Path) -> None:
    result = run_job(Job("x", [str(tmp_path / "nope")], tmp_path / "x.log"))
    assert result.returncode == 127


@pytest.mark.skipif(sys.platform != "linux", reason="parent-death signal is Linux-only")
def test_jobs_die_with_the_study_process(tmp_path: Path) -> None:
    """A killed `study run` must not leave a trainer writing into a run a resumed study will reuse."""
    pid_file = tmp_path / "child.pid"
    sleeper = tmp_path / "sleeper.py"
    sleeper.write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    driver = (
        "import sys; from pathlib import Path; from sftscope.study.executors import Job, run_job; "
        f"run_job(Job('sleep', [sys.executable, {str(sleeper)!r}], Path({str(tmp_path / 'j.log')!r})))"
    )
    parent = subprocess.Popen([sys.executable, "-c", driver])
    deadline = time.monotonic() + 30
    while not (pid_file.exists() and pid_file.read_text()) and parent.poll() is None:
        assert time.monotonic() < deadline, "the job did not start"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail("the job outlived the killed study process")


def test_slurm_executor_through_submitit_local_cluster(tmp_path: Path) -> None:
    pytest.importorskip("submitit")
    executor = SlurmExecutor(tmp_path / "slurm", partition=None, timeout_min=5, extra={}, cluster="local")
    job = Job("s:1", [sys.executable, "-c", "print('from submitit')"], tmp_path / "s.log")
    result = executor.submit(job).result(timeout=120)
    executor.shutdown()
    assert result.returncode == 0 and "from submitit" in result.tail


def make_store(path: Path, rows: list[tuple[str, int]]) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE IF NOT EXISTS samples (h VARCHAR, i INT, score DOUBLE, PRIMARY KEY (h, i))")
        con.execute("CREATE TABLE IF NOT EXISTS models (run VARCHAR, step INT, h VARCHAR)")
        for h, i in rows:
            con.execute("INSERT INTO samples VALUES (?, ?, 1.0)", [h, i])
            con.execute("INSERT INTO models VALUES ('r', ?, ?)", [i, h])


def test_store_merges_are_idempotent_and_keyed(tmp_path: Path) -> None:
    a, b, study = tmp_path / "a.duckdb", tmp_path / "b.duckdb", tmp_path / "study" / "s.duckdb"
    make_store(a, [("x", 0), ("y", 1)])
    make_store(b, [("x", 0), ("z", 2)])  # the same base row, swept by two cells
    assert copy_rows(a, study) == 4
    assert copy_rows(a, study) == 0
    assert copy_rows(b, study) == 2
    with duckdb.connect(str(study), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM samples").fetchone()[0] == 3
        assert con.execute("SELECT count(*) FROM models").fetchone()[0] == 3
    seeded = tmp_path / "seed.duckdb"
    copy_rows(a, seeded, exclude=("models",))
    with duckdb.connect(str(seeded), read_only=True) as con:
        assert [t for (t,) in con.execute("SHOW TABLES").fetchall()] == ["samples"]
    assert copy_rows(tmp_path / "missing.duckdb", seeded) == 0


def test_a_store_of_an_older_version_merges_into_a_newer_one(tmp_path: Path) -> None:
    from sftscope.evaluate.store import ResultsStore

    old, new = tmp_path / "old.duckdb", tmp_path / "new.duckdb"
    with duckdb.connect(str(old)) as con:  # models before it recorded epoch and tokens_seen
        con.execute("CREATE TABLE models (run VARCHAR, step INT, model_hash VARCHAR, path VARCHAR)")
        con.execute("INSERT INTO models VALUES ('r', 2, 'h2', NULL)")
    with ResultsStore(new) as store:
        store.register_model("r", 4, "h4", None, epoch=0.5, tokens_seen=128)
    assert copy_rows(old, new) == 1
    with ResultsStore(new, read_only=True) as store:
        assert store.models().select(["step", "epoch", "tokens_seen"]).to_pylist() == [
            {"step": 2, "epoch": None, "tokens_seen": None},
            {"step": 4, "epoch": 0.5, "tokens_seen": 128},
        ]


def test_a_store_path_with_a_quote_merges(tmp_path: Path) -> None:
    folder = tmp_path / "it's a study"
    folder.mkdir()
    source, target = folder / "cell's.duckdb", folder / "study.duckdb"
    make_store(source, [("x", 0)])
    assert copy_rows(source, target) == 2
