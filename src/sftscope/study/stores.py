"""Results stores of a study: one DuckDB file per evaluation job, merged by the study driver.

DuckDB allows one writing process per file, so parallel eval jobs (local workers, Ray tasks, SLURM
jobs) each write their own store, and only the driver writes the study store: it merges a cell's
store as soon as its sweep ends. Rows are keyed by the checkpoint's content hash, so a merge is
idempotent and a row computed twice (the same base swept by two cells at once) is kept once. The
store merged last wins a key: it holds a run's current models, a task's current spec hash and a
re-run error row's new result.

A base model is swept once per study into its own store; each cell's store is seeded with those rows
before its sweep, so the sweep's "compute only what is missing" skips the base.
"""

from __future__ import annotations

from pathlib import Path

import duckdb


def _tables(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, str]:
    rows = con.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main'",
        [database],
    ).fetchall()
    return {name: sql for name, sql in rows}


def _has_key(con: duckdb.DuckDBPyConnection, database: str, table: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_constraints() WHERE database_name = ? AND table_name = ? "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE')",
            [database, table],
        ).fetchone()[0]
    )


def copy_rows(source: Path, target: Path, exclude: tuple[str, ...] = ()) -> int:
    """Add the source store's rows to the target, in every table but the excluded ones.

    Tables missing in the target are created with the source's own DDL, keys included. Returns the
    number of new keys.
    """
    if not source.is_file():
        return 0
    target.parent.mkdir(parents=True, exist_ok=True)
    added = 0
    with duckdb.connect(str(target)) as con:
        con.execute("ATTACH ? AS src (READ_ONLY)", [str(source)])  # bound: a path may hold a quote
        try:
            ours = _tables(con, con.execute("SELECT current_database()").fetchone()[0])
            for table, ddl in _tables(con, "src").items():
                if table in exclude:
                    continue
                if table not in ours:
                    con.execute(ddl)
                before = con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0]
                # Columns by name, those both stores have: a store written by another version may
                # order them differently or lack newer ones (those stay NULL).
                theirs = {c[0] for c in con.execute(f'DESCRIBE src."{table}"').fetchall()}
                names = [c[0] for c in con.execute(f'DESCRIBE "{table}"').fetchall() if c[0] in theirs]
                columns = ", ".join(f'"{name}"' for name in names)
                if _has_key(con, "src", table):
                    con.execute(
                        f'INSERT OR REPLACE INTO "{table}" ({columns}) SELECT {columns} FROM src."{table}"'
                    )
                else:
                    con.execute(
                        f'INSERT INTO "{table}" ({columns}) SELECT {columns} FROM src."{table}" '
                        f'EXCEPT SELECT {columns} FROM "{table}"'
                    )
                added += con.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0] - before
        finally:
            con.execute("DETACH src")
    return added


def keep_runs(store: Path, runs: set[str]) -> int:
    """Forget runs the study no longer has (a recipe edit makes new cells): their `models` rows go, so
    analysis, which joins samples to models, no longer sees them. Returns the number of rows removed."""
    if not store.is_file():
        return 0
    with duckdb.connect(str(store)) as con:
        if "models" not in _tables(con, con.execute("SELECT current_database()").fetchone()[0]):
            return 0
        stale = con.execute("SELECT DISTINCT run FROM models").fetchall()
        gone = [run for (run,) in stale if run not in runs]
        for run in gone:
            con.execute("DELETE FROM models WHERE run = ?", [run])
    return len(gone)
