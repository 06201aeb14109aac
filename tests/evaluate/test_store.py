"""The results store: idempotent inserts, resume keys, the joined read and the Parquet export."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from sftscope.errors import InputError
from sftscope.evaluate.store import ResultsStore, TaskEntry


def _row(prompt_id: str, sample_idx: int = 0, **extra: object) -> dict[str, object]:
    return {
        "model_hash": "h1",
        "task": "t",
        "sampling_hash": "s1",
        "seed": 0,
        "prompt_id": prompt_id,
        "sample_idx": sample_idx,
        "output": "x",
        "score": 1.0,
        "status": "ok",
        **extra,
    }


def test_insert_is_idempotent_and_resume_keys(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.duckdb") as store:
        assert store.add_samples([_row("a"), _row("b")]) == 2
        assert store.add_samples([_row("a"), _row("c")]) == 1  # 'a' exists: ignored, not duplicated
        assert store.existing_keys("h1", "t", "s1", 0) == {("a", 0), ("b", 0), ("c", 0)}
        assert store.missing("h1", "t", "s1", 0, [("a", 0), ("d", 0), ("a", 1)]) == [("d", 0), ("a", 1)]
        assert store.missing("h1", "t", "other", 0, [("a", 0)]) == [("a", 0)]


def test_joined_read_follows_models_and_current_spec(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.duckdb") as store:
        store.register_tasks([TaskEntry("t", "in-domain", "exact", "s1", True)])
        # The same weights under two runs: stored once, read once per (run, step).
        store.register_model("run-a", 0, "h1", "/base")
        store.register_model("run-b", 0, "h1", "/base")
        store.add_samples([_row("a", output_tokens=3, backend="transformers", batch_size=8)])
        store.add_samples([_row("a", sampling_hash="s0")])  # an old spec of the task: hidden
        table = store.samples()
        assert table.num_rows == 2
        assert set(table["run"].to_pylist()) == {"run-a", "run-b"}
        for column in ("step", "domain", "higher_is_better", "prompt_id", "score", "status", "output_tokens"):
            assert column in table.column_names
        assert store.samples(run="run-b").num_rows == 1
        written = store.export_parquet(tmp_path / "export")
    assert [p.name for p in written] == ["samples.parquet", "models.parquet", "tasks.parquet"]
    assert pq.read_table(tmp_path / "export" / "samples.parquet").num_rows == 2


def test_bad_status_is_rejected(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.duckdb") as store, pytest.raises(Exception, match=r"(?i)check"):
        store.add_samples([_row("a", status="fine")])


def test_a_store_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        ResultsStore(tmp_path / "none.duckdb", read_only=True)
    (tmp_path / "text.duckdb").write_text("not a database\n")
    with pytest.raises(InputError, match="not a results store"):
        ResultsStore(tmp_path / "text.duckdb")
    duckdb.connect(str(tmp_path / "other.duckdb")).close()  # a DuckDB file, but not ours
    with pytest.raises(InputError, match="without samples, models, tasks"):
        ResultsStore(tmp_path / "other.duckdb", read_only=True)
    # A second process while one writes: DuckDB's lock, said plainly.
    path = tmp_path / "busy.duckdb"
    with ResultsStore(path):
        code = (
            f"from sftscope.evaluate.store import ResultsStore; ResultsStore({str(path)!r}, read_only=True)"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode != 0 and "open in another process" in done.stderr


def test_error_rows_can_be_rerun_and_replaced(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.duckdb") as store:
        store.add_samples([_row("a"), _row("b", status="error", score=0.0, error="boom")])
        assert store.missing("h1", "t", "s1", 0, [("a", 0), ("b", 0)], ignore_status=("error",)) == [("b", 0)]
        store.add_samples([_row("b", status="ok")], replace=True)
        store.register_tasks([TaskEntry("t", "general", "exact", "s1", True)])
        store.register_model("r", 0, "h1", None)
        assert sorted(store.samples()["status"].to_pylist()) == ["ok", "ok"]


def test_tasks_are_registered_together_and_an_edited_spec_replaces_its_entry(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.duckdb") as store:
        store.register_tasks([])
        store.register_tasks(
            [
                TaskEntry("a", "in-domain", "exact", "s1", True),
                TaskEntry("b", "safety", "refusal", "s1", False),
            ]
        )
        store.register_tasks([TaskEntry("a", "in-domain", "exact", "s2", True)])
        assert store.tasks().to_pylist() == [
            {
                "task": "a",
                "domain": "in-domain",
                "scorer": "exact",
                "spec_hash": "s2",
                "higher_is_better": True,
            },
            {
                "task": "b",
                "domain": "safety",
                "scorer": "refusal",
                "spec_hash": "s1",
                "higher_is_better": False,
            },
        ]


def test_text_with_lone_surrogates_is_stored_repaired_with_a_note(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.duckdb") as store:
        store.add_samples([_row("a", output="ok \ud800", extracted="\udfff", error="scorer said no")])
        (stored,) = store.con.execute("SELECT output, extracted, error FROM samples").fetchall()
    assert stored[:2] == ("ok \ufffd", "\ufffd")
    assert stored[2] == (
        "scorer said no; 1 lone surrogate(s) in output replaced by U+FFFD; "
        "1 lone surrogate(s) in extracted replaced by U+FFFD"
    )


def test_status_counts_per_run_step_task_and_status(tmp_path: Path) -> None:
    with ResultsStore(tmp_path / "r.duckdb") as store:
        store.register_tasks([TaskEntry("t", "general", "exact", "s1", True)])
        store.register_model("run", 0, "h1", None)
        store.register_model("twin", 0, "h1", None)
        store.add_samples([_row("a"), _row("b", status="error"), _row("c", status="error")])
        store.add_samples([_row("d", status="timeout", sampling_hash="old-spec")])  # not the current spec
        counts = store.status_counts(run="run")
        assert [tuple(c) for c in counts] == [("run", 0, "t", "error", 2), ("run", 0, "t", "ok", 1)]
        assert {c.run for c in store.status_counts()} == {"run", "twin"}


def test_a_full_disk_is_one_clear_error_and_keeps_every_earlier_commit(tmp_path: Path) -> None:
    from sftscope.errors import DiskFullError

    with ResultsStore(tmp_path / "r.duckdb") as store:
        store.add_samples([_row("a")])
        real = store.con

        class Full:
            """DuckDB's connection, as on a disk that filled up: every write fails, reads work."""

            def __getattr__(self, name: str) -> object:
                return getattr(real, name)

            def execute(self, sql: str, *args: object) -> object:
                if sql.startswith("INSERT"):
                    raise duckdb.TransactionException(
                        'TransactionContext Error: Failed to commit: Could not write file "r.duckdb.wal": '
                        "No space left on device"
                    )
                return real.execute(sql, *args)

        store.con = Full()  # type: ignore[assignment]
        with pytest.raises(
            DiskFullError, match=r"not enough space on the device \(2 rows not stored, 1 kept\)"
        ):
            store.add_samples([_row("b"), _row("c")])
        with pytest.raises(DiskFullError, match="the store is unchanged"):
            store.register_model("run", 0, "h1", None)
        store.con = real
        assert store.existing_keys("h1", "t", "s1", 0) == {("a", 0)}
