"""The results store: one embedded DuckDB file holding every scored sample of a sweep.

Tables (the contract in docs/architecture.md):

- `samples`: one row per (model_hash, task, sampling_hash, seed, prompt_id, sample_idx). The key holds
  the checkpoint's *content hash*, not its run or step, so identical weights (a base shared by many
  runs, a checkpoint copied elsewhere) are evaluated once. `sampling_hash` is the task's `spec_hash`:
  the hash of everything that decides a row's content besides the model and the prompt (prompt
  template, sampling, scorer), so editing a task never mixes old and new rows.
- `models`: (run, step) -> model_hash, path, epoch, tokens_seen. Step 0 is the base model.
- `tasks`: task -> domain, scorer, spec_hash, higher_is_better; the spec_hash is the task's current one.
- `sweep_plan`: (run, step) -> round, reason: which checkpoints an adaptive sweep chose and why.

Rows are inserted with INSERT OR IGNORE and each call of `add_samples` is its own transaction, so a
sweep killed at any instant keeps every batch it committed and a resumed sweep cannot duplicate one.
DuckDB admits one writing process per file: parallel jobs write separate stores, merged afterwards.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from sftscope.errors import DiskFullError, InputError, is_disk_full

KEY = ("model_hash", "task", "sampling_hash", "seed", "prompt_id", "sample_idx")
STORE_FILE = "results.duckdb"  # a run's or a study's store, beside its manifest
STATUSES = ("ok", "wrong", "truncated", "unparsable", "error", "timeout")
SCORED = ("ok", "wrong")  # the others are rows whose score says nothing about the answer

SAMPLE_COLUMNS: dict[str, pa.DataType] = {
    "model_hash": pa.string(),
    "task": pa.string(),
    "sampling_hash": pa.string(),
    "seed": pa.int64(),
    "prompt_id": pa.string(),
    "sample_idx": pa.int32(),
    "output": pa.string(),
    "extracted": pa.string(),
    "score": pa.float64(),
    "status": pa.string(),
    "error": pa.string(),
    "prompt_tokens": pa.int32(),
    "output_tokens": pa.int32(),
    "finish_reason": pa.string(),
    "backend": pa.string(),
    "batch_size": pa.int32(),
    "created_at": pa.timestamp("us", tz="UTC"),
}

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS samples (
    model_hash VARCHAR NOT NULL, task VARCHAR NOT NULL, sampling_hash VARCHAR NOT NULL,
    seed BIGINT NOT NULL, prompt_id VARCHAR NOT NULL, sample_idx INTEGER NOT NULL,
    output VARCHAR, extracted VARCHAR, score DOUBLE,
    status VARCHAR NOT NULL CHECK (status IN {STATUSES!r}), error VARCHAR,
    prompt_tokens INTEGER, output_tokens INTEGER, finish_reason VARCHAR,
    backend VARCHAR, batch_size INTEGER, created_at TIMESTAMPTZ,
    PRIMARY KEY ({", ".join(KEY)})
);
CREATE TABLE IF NOT EXISTS models (
    run VARCHAR NOT NULL, step INTEGER NOT NULL, model_hash VARCHAR NOT NULL, path VARCHAR,
    PRIMARY KEY (run, step)
);
ALTER TABLE models ADD COLUMN IF NOT EXISTS epoch DOUBLE;
ALTER TABLE models ADD COLUMN IF NOT EXISTS tokens_seen BIGINT;
CREATE TABLE IF NOT EXISTS tasks (
    task VARCHAR PRIMARY KEY, domain VARCHAR NOT NULL, scorer VARCHAR NOT NULL,
    spec_hash VARCHAR NOT NULL, higher_is_better BOOLEAN NOT NULL
);
"""

_PLAN_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweep_plan (
    run VARCHAR NOT NULL, step INTEGER NOT NULL, round INTEGER NOT NULL, reason VARCHAR NOT NULL,
    PRIMARY KEY (run, step)
);
"""
PLAN_COLUMNS: dict[str, pa.DataType] = {
    "run": pa.string(),
    "step": pa.int32(),
    "round": pa.int32(),
    "reason": pa.string(),
}

# What analysis reads: samples of the tasks' current spec, one row per (run, step) that has the weights.
_JOINED = """
SELECT m.run, m.step, s.model_hash, s.task, t.domain, t.scorer, t.higher_is_better, s.sampling_hash,
       s.seed, s.prompt_id, s.sample_idx, s.output, s.extracted, s.score, s.status, s.error,
       s.prompt_tokens, s.output_tokens, s.finish_reason, s.backend, s.batch_size, s.created_at
FROM samples s
JOIN models m ON m.model_hash = s.model_hash
JOIN tasks t ON t.task = s.task AND t.spec_hash = s.sampling_hash
"""
_ORDER = " ORDER BY m.run, m.step, s.task, s.prompt_id, s.sample_idx"
# UTF-8 cannot encode a lone surrogate (a JSON reply's "\ud800" decodes to one), so neither can the store.
_SURROGATE = re.compile("[\ud800-\udfff]")


def storable(text: str) -> tuple[str, int]:
    """`text` with every lone surrogate replaced by U+FFFD, and how many were replaced."""
    return _SURROGATE.subn("\ufffd", text)


def _storable_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row with storable text in every column; the row's `error` says which columns were changed."""
    clean = {c: row.get(c) for c in SAMPLE_COLUMNS}
    notes = []
    for column, value in clean.items():
        if isinstance(value, str):
            clean[column], replaced = storable(value)
            if replaced:
                notes.append(replacement_note(column, replaced))
    if notes:
        clean["error"] = "; ".join(filter(None, [clean["error"], *notes]))
    return clean


def replacement_note(column: str, count: int) -> str:
    """What a row's `error` says when its text had to be changed to be stored."""
    return f"{count} lone surrogate(s) in {column} replaced by U+FFFD"


def store_file(path: Path) -> Path:
    """The store of a run or study directory, or the store file itself."""
    path = Path(path)
    if not path.is_dir():
        if not path.is_file():
            raise InputError(path, "no such results store or directory")
        return path
    if not (path / STORE_FILE).is_file():
        message = f"no results store: expected {STORE_FILE} in this directory"
        others = sorted(p.name for p in path.glob("*.duckdb"))
        if others:  # `eval --store` may have named it otherwise
            message += f"; pass the store file itself, e.g. {path / others[0]}"
        raise InputError(path, message)
    return path / STORE_FILE


class TaskEntry(NamedTuple):
    """A row of the `tasks` table."""

    task: str
    domain: str
    scorer: str
    spec_hash: str
    higher_is_better: bool


class StatusCount(NamedTuple):
    """How many of a task's rows at one checkpoint of one run have a status."""

    run: str
    step: int
    task: str
    status: str
    count: int


class ResultsStore:
    """A results store file, created with its tables on first use. Use as a context manager."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.path = Path(path)
        if read_only and not self.path.is_file():
            raise InputError(str(self.path), "results store does not exist")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(str(self.path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" in str(exc):  # DuckDB admits one process per file while any of them writes
                message = "the store is open in another process (a sweep still writing?); wait or use another"
            else:
                message = f"not a results store: {exc}"
            raise InputError(str(self.path), message) from exc
        if not read_only:
            with self._writing("the store is unchanged"):
                self.con.execute(_SCHEMA + _PLAN_SCHEMA)
            return
        tables = {
            row[0] for row in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if not {"samples", "models", "tasks"} <= tables:
            self.con.close()
            raise InputError(
                str(self.path), "not a results store (a DuckDB file without samples, models, tasks)"
            )

    def __enter__(self) -> ResultsStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.con.close()

    # -- writing ---------------------------------------------------------------------------------------

    @contextmanager
    def _writing(self, kept: str) -> Iterator[None]:
        """A full disk is the user's to fix: one clear error. The failed transaction rolled back."""
        try:
            yield
        except duckdb.Error as exc:
            if is_disk_full(exc):
                raise DiskFullError(self.path, kept) from exc
            raise

    def register_model(
        self,
        run: str,
        step: int,
        model_hash: str,
        path: str | Path | None,
        epoch: float | None = None,
        tokens_seen: int | None = None,
    ) -> None:
        """Record that `run` at `step` has these weights (a re-trained run replaces its old entry), and
        the epoch and tokens seen there where the trainer recorded them."""
        with self._writing("the store is unchanged"):
            self.con.execute(
                "INSERT OR REPLACE INTO models (run, step, model_hash, path, epoch, tokens_seen) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                [run, step, model_hash, None if path is None else str(path), epoch, tokens_seen],
            )

    def register_tasks(self, entries: Sequence[TaskEntry]) -> None:
        """Record tasks in one statement (DuckDB's fixed cost is per statement, not per row: 12 single
        inserts took ~60 ms); an edited spec replaces its entry, which hides the old spec's rows."""
        if entries:
            values = ", ".join(["(?, ?, ?, ?, ?)"] * len(entries))
            with self._writing("the store is unchanged"):
                self.con.execute(
                    f"INSERT OR REPLACE INTO tasks VALUES {values}", [field for e in entries for field in e]
                )

    def add_samples(self, rows: Sequence[Mapping[str, Any]], *, replace: bool = False) -> int:
        """Insert scored samples in one transaction. Rows whose key exists are ignored, or replace the
        stored row with `replace` (re-running error rows). Returns the number of new keys."""
        if not rows:
            return 0
        now = datetime.now(timezone.utc)
        table = pa.Table.from_pylist(
            [{**_storable_row(row), "created_at": row.get("created_at") or now} for row in rows],
            schema=pa.schema(SAMPLE_COLUMNS),
        )
        before = self._count()
        self.con.register("_batch", table)
        try:
            columns = ", ".join(SAMPLE_COLUMNS)
            verb = "INSERT OR REPLACE" if replace else "INSERT OR IGNORE"
            with self._writing(f"{len(rows)} rows not stored, {before} kept"):
                self.con.execute(f"{verb} INTO samples ({columns}) SELECT {columns} FROM _batch")
        finally:
            self.con.unregister("_batch")
        return self._count() - before

    def _count(self) -> int:
        # fetchall, not fetchone: DuckDB 2 keeps a partly fetched result open and refuses the next call.
        return int(self.con.execute("SELECT count(*) FROM samples").fetchall()[0][0])

    # -- reading ---------------------------------------------------------------------------------------

    def existing_keys(
        self, model_hash: str, task: str, sampling_hash: str, seed: int, *, ignore_status: Sequence[str] = ()
    ) -> set[tuple[str, int]]:
        """(prompt_id, sample_idx) pairs stored for one model, task, sampling config and seed; rows with a
        status in `ignore_status` (e.g. error, timeout) count as absent, so they can be re-run."""
        rows = self.con.execute(
            "SELECT prompt_id, sample_idx FROM samples "
            "WHERE model_hash = ? AND task = ? AND sampling_hash = ? AND seed = ? "
            "AND NOT list_contains(?::VARCHAR[], status)",
            [model_hash, task, sampling_hash, seed, list(ignore_status)],
        ).fetchall()
        return {(str(p), int(i)) for p, i in rows}

    def missing(
        self,
        model_hash: str,
        task: str,
        sampling_hash: str,
        seed: int,
        wanted: Iterable[tuple[str, int]],
        *,
        ignore_status: Sequence[str] = (),
    ) -> list[tuple[str, int]]:
        """The wanted (prompt_id, sample_idx) pairs not stored yet, in the order given."""
        have = self.existing_keys(model_hash, task, sampling_hash, seed, ignore_status=ignore_status)
        return [key for key in wanted if key not in have]

    def samples(self, run: str | None = None) -> pa.Table:
        """Sample rows joined with models and tasks (run, step, task, domain, ...); all runs or one."""
        if run is None:
            return self.con.sql(_JOINED + _ORDER).to_arrow_table()
        return self.con.sql(_JOINED + " WHERE m.run = ?" + _ORDER, params=[run]).to_arrow_table()

    def status_counts(self, run: str | None = None) -> list[StatusCount]:
        """Rows per (run, step, task, status), of the tasks' current specs as `samples()` reads them;
        all runs or one. Statuses besides ok and wrong (truncated, unparsable, error, timeout) are rows
        whose score says nothing about the answer: summaries and reports show them per task."""
        query = (
            "SELECT m.run, m.step, s.task, s.status, count(*) FROM samples s "
            "JOIN models m ON m.model_hash = s.model_hash "
            "JOIN tasks t ON t.task = s.task AND t.spec_hash = s.sampling_hash"
            + ("" if run is None else " WHERE m.run = ?")
            + " GROUP BY ALL ORDER BY m.run, m.step, s.task, s.status"
        )
        rows = self.con.execute(query, [] if run is None else [run]).fetchall()
        return [StatusCount(str(r), int(st), str(t), str(status), int(n)) for r, st, t, status, n in rows]

    def models(self) -> pa.Table:
        return self.con.sql("SELECT * FROM models ORDER BY run, step").to_arrow_table()

    def tasks(self) -> pa.Table:
        return self.con.sql("SELECT * FROM tasks ORDER BY task").to_arrow_table()

    def export_parquet(self, directory: str | Path) -> list[Path]:
        """Write samples (joined, as `samples()` reads them), models and tasks as Parquet files."""
        import pyarrow.parquet as pq

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        written = []
        for name, table in (("samples", self.samples()), ("models", self.models()), ("tasks", self.tasks())):
            path = directory / f"{name}.parquet"
            pq.write_table(table, path)
            written.append(path)
        return written

    # -- the adaptive sweep's plan and curves ---------------------------------------------------------

    def record_plan(self, entries: Sequence[tuple[str, int, int, str]]) -> None:
        """Record (run, step, round, reason) of checkpoints an adaptive sweep evaluated; a step already
        recorded keeps its first reason (a resumed sweep re-chooses what it chose before)."""
        if entries:
            values = ", ".join(["(?, ?, ?, ?)"] * len(entries))
            with self._writing("the store is unchanged"):
                self.con.execute(
                    f"INSERT OR IGNORE INTO sweep_plan VALUES {values}",
                    [field for e in entries for field in e],
                )

    def sweep_plan(self) -> pa.Table:
        """The adaptive sweeps' plans, by run and step; empty for a store no adaptive sweep wrote."""
        tables = {
            row[0] for row in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()
        }
        if "sweep_plan" not in tables:
            return pa.table({c: pa.array([], t) for c, t in PLAN_COLUMNS.items()})
        return self.con.sql("SELECT * FROM sweep_plan ORDER BY run, step").to_arrow_table()

    def prompt_scores(self, run: str) -> pa.Table:
        """One run's mean score per (task, step, prompt), with each task's domain and direction: the
        curves an adaptive sweep refines, read as analysis reads samples (the tasks' current specs)."""
        query = f"""SELECT task, any_value(domain) AS domain, bool_and(higher_is_better) AS higher_is_better,
                           step, CAST(prompt_id AS VARCHAR) AS prompt_id, avg(score) AS score
                    FROM ({_JOINED} WHERE m.run = ?)
                    GROUP BY task, step, CAST(prompt_id AS VARCHAR) ORDER BY task, step, prompt_id"""
        return self.con.sql(query, params=[run]).to_arrow_table()
