"""A disk that fills up, for real: a small tmpfs (skipped where none can be mounted). `eval` stops with
one clear line and exit code 2, keeps every committed row, and once space is freed the same command
computes exactly the rest; `data build` leaves no half-written folder."""

from __future__ import annotations

import json
from pathlib import Path

from fake_run import make_run
from faults_support import one_error_line, tmpfs
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.evaluate.store import KEY, ResultsStore


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def test_eval_on_a_full_disk_stops_clearly_and_resumes_once_space_is_freed(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    run = make_run(tiny_model_dir, tmp_path / "runs")
    with tmpfs(tmp_path / "disk", "256k") as disk:
        filler = disk / "filler"
        filler.write_bytes(bytes(200_000))  # room for the store and about half of its 300 rows
        store = disk / "results.duckdb"
        args = ["eval", str(run), "--task", "countdown", "--set", "source.n=100", "--store", str(store)]
        args += ["--set", "sampling.max_new_tokens=30", "--batch-size", "32", "--quiet"]
        code, output = invoke(*args)
        assert code == 2, output
        line = one_error_line(output)
        assert f"{store}: not enough space on the device (" in line and "run the same command again" in line
        with ResultsStore(store, read_only=True) as results:
            kept = results.samples().num_rows
        assert 0 < kept < 300

        filler.unlink()  # the user frees space
        code, output = invoke(*args)
        assert code == 0, output
        assert f"{300 - kept} rows computed" in " ".join(output.split()) and f"{kept} reused" in output
        with ResultsStore(store, read_only=True) as results:
            keys = [tuple(r[k] for k in KEY) for r in results.samples().to_pylist()]
        assert len(keys) == len(set(keys)) == 300


SPEC = """\
name: full-disk
sources:
  - {kind: countdown, n: 300, style: long-cot, settings: {max_numbers: 4}}
"""


def test_data_build_on_a_full_disk_leaves_no_half_written_folder(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    room = tmp_path / "room"  # first on a normal disk: how big the build is
    code, output = invoke("data", "build", str(tmp_path / "spec.yaml"), "--out", str(room))
    assert code == 0, output
    size = sum(p.stat().st_size for p in room.iterdir())
    rows = [json.loads(line) for line in (room / "train.jsonl").open()]
    text = sum(
        len(r["reasoning"]) + len(r["final"]) + sum(len(m["content"]) for m in r["prompt"]) for r in rows
    )
    assert text < size // 2  # so a disk of half the build's size passes the pre-flight check
    with tmpfs(tmp_path / "disk", f"{size // 2 // 4096 * 4096}") as disk:
        code, output = invoke("data", "build", str(tmp_path / "spec.yaml"), "--out", str(disk / "data"))
        assert code == 2, output
        line = one_error_line(output)
        assert "not enough space on the device" in line and "run the same command again" in line
        assert list(disk.iterdir()) == []  # no folder, no temporary sibling


def test_data_build_refuses_up_front_when_the_rows_cannot_fit(tmp_path: Path) -> None:
    (tmp_path / "spec.yaml").write_text(SPEC)
    with tmpfs(tmp_path / "disk", "64k") as disk:
        code, output = invoke("data", "build", str(tmp_path / "spec.yaml"), "--out", str(disk / "data"))
        assert code == 2, output
        assert "train.jsonl needs at least" in one_error_line(output)
        assert list(disk.iterdir()) == []
