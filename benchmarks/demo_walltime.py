"""Wall time of `sftscope demo` (or `--quick`) from a fresh study directory, against its budget.

Not a test: it runs the real demo (minutes), then prints the wall time as a ratio to the budget
(15 min full, 3 min quick) and to the dry-run plan's estimate of the same spec, where the time went
per job kind, and the machine's load, since other processes on a shared machine slow every job.

    python benchmarks/demo_walltime.py [--quick] [--out DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from sftscope.cli.demo import shipped_study
from sftscope.study.plan import make_plan

BUDGET_S = {"demo": 15 * 60, "demo-quick": 3 * 60}


def job_seconds(study: Path) -> dict[str, float]:
    """Seconds per job kind, from the state files the study wrote."""
    totals: dict[str, float] = defaultdict(float)
    files = [study / "state.json", *sorted((study / "cells").glob("*/state.json"))]
    for file in files:
        # A cell's "data" record mirrors the shared build and carries no seconds: nothing is counted twice.
        for stage, record in json.loads(file.read_text())["stages"].items():
            totals[stage.split(":")[0]] += record.get("seconds", 0.0)
    return dict(totals)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="time `sftscope demo --quick`")
    parser.add_argument("--out", type=Path, help="study directory (default: a new temporary one)")
    args = parser.parse_args()
    name = "demo-quick" if args.quick else "demo"
    out = args.out or Path(tempfile.mkdtemp(prefix=f"sftscope-{name}-")) / "study"
    if out.exists():
        sys.exit(f"{out} exists: the benchmark times a fresh study")
    cli = Path(sys.executable).with_name("sftscope")
    command = [str(cli), "demo", "--out", str(out), *(["--quick"] if args.quick else [])]

    estimate_s = (make_plan(shipped_study(name)).wall_minutes or 0.0) * 60
    load_before = os.getloadavg()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    load_after = os.getloadavg()
    if done.returncode != 0:
        sys.exit(f"demo failed (exit {done.returncode}):\n{done.stderr[-3000:]}")

    budget = BUDGET_S[name]
    print(f"sftscope {' '.join(command[1:])}")
    print(f"  wall time          {wall:7.0f} s  ({wall / 60:.1f} min)")
    print(f"  vs budget          {wall / budget:7.2f}x of {budget // 60} min")
    print(f"  vs dry-run plan    {wall / estimate_s:7.2f}x of {estimate_s:.0f} s (idle-machine estimate)")
    print(
        f"  machine            {os.cpu_count()} cores, load average {load_before[0]:.1f} before, "
        f"{load_after[0]:.1f} after"
    )
    print("  job seconds (summed over workers):")
    for kind, seconds in sorted(job_seconds(out).items(), key=lambda kv: -kv[1]):
        print(f"    {kind:<10}{seconds:7.0f} s")
    print(f"  report             {done.stdout.strip().splitlines()[-1]}")


if __name__ == "__main__":
    main()
