"""Helpers shared by the train tests (no tests here): toy data, configs, and the CLI in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from sftscope.data.io import write_records
from sftscope.data.records import Example, user_example
from sftscope.train.checkpoints import read_manifest
from sftscope.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]

# The train command on an app of its own: a typer app with a single command would swallow the
# command name, so this does not depend on which other stages have registered theirs yet.
LAUNCHER = """\
import typer
from sftscope.cli import train

app = typer.Typer(pretty_exceptions_enable=False)
app.callback()(lambda: None)
train.register(app)
app()
"""


def toy_examples(count: int, seed: int = 0, long_every: int = 0) -> list[Example]:
    """Addition questions with short reasoning; lengths vary (and every `long_every`-th one is long)."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        a, b = rng.randint(0, 10 ** rng.randint(1, 4)), rng.randint(0, 999)
        padding = " carry" * (40 if long_every and index % long_every == 0 else rng.randint(0, 6))
        rows.append(
            user_example(
                f"What is {a} + {b}?", reasoning=f"{a} plus {b}{padding}", final=f"\\boxed{{{a + b}}}"
            )
        )
    return rows


def toy_data_dir(root: Path, count: int = 24, **kwargs: Any) -> Path:
    """A data directory holding train.jsonl."""
    write_records(toy_examples(count, **kwargs), root / "train.jsonl")
    return root


def toy_config(model_dir: Path, data: Path, out: Path, **values: Any) -> TrainConfig:
    """A few fast steps, no progress bar; `values` override anything."""
    base: dict[str, Any] = {
        "model": str(model_dir),
        "data": str(data),
        "out": str(out),
        "batch_size": 4,
        "steps": 4,
        "lr": 1e-3,
        "max_length": 256,
        "progress": False,
        "report_to": [],
    }
    return TrainConfig.model_validate({**base, **values})


def cli_env() -> dict[str, str]:
    """One thread per process: fast on 2 shared cores, and the same float reduction order every run."""
    return {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def launcher(tmp_path: Path) -> Path:
    path = tmp_path / "sftscope_cli.py"
    path.write_text(LAUNCHER)
    return path


def run_cli(tmp_path: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`sftscope train ...` in a fresh process."""
    return subprocess.run(
        [sys.executable, str(launcher(tmp_path)), "train", *args],
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def start_train(tmp_path: Path, *args: str) -> subprocess.Popen[str]:
    """`sftscope train ARGS` in one process, running alongside the test (stderr kept)."""
    command = [sys.executable, str(launcher(tmp_path)), "train", *args]
    return subprocess.Popen(
        command, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_train(tmp_path: Path, accelerate_config: str, *args: str) -> subprocess.Popen[str]:
    """`accelerate launch` of `sftscope train ARGS` with configs/accelerate/<accelerate_config> (2 CPU
    processes), in a process group of its own so a test can SIGKILL the launcher and its workers."""
    env = {**cli_env(), "ACCELERATE_LOG_LEVEL": "error", "PYTHONPATH": os.environ.get("PYTHONPATH", "")}
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", str(ROOT / "configs" / "accelerate" / accelerate_config),
        "--main_process_port", str(free_port()),
        str(launcher(tmp_path)), "train", *args,
    ]  # fmt: skip
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, start_new_session=True
    )


def logged_steps(run: Path) -> list[int]:
    """The steps a run's metrics.jsonl has logged so far (a row being written is skipped)."""
    path = run / "metrics.jsonl"
    steps = []
    if path.exists():
        for line in path.read_text().splitlines():
            with contextlib.suppress(json.JSONDecodeError, KeyError):  # the row being written now
                steps.append(json.loads(line)["step"])
    return steps


def saved_steps(run: Path) -> list[int]:
    """The checkpoint steps a run's manifest lists so far."""
    try:
        return [c["step"] for c in read_manifest(run)["checkpoints"]]
    except Exception:  # not written yet, or being replaced
        return []


def kill_past_a_checkpoint(process: subprocess.Popen[Any], run: Path, timeout: float) -> None:
    """SIGKILL a training process once it has logged a step beyond its last saved checkpoint (so the
    resume must redo work), and check it died by that signal."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        done, written = saved_steps(run), logged_steps(run)
        if done and written and written[-1] > done[-1] + 1:
            process.send_signal(signal.SIGKILL)
            break
        time.sleep(0.005)
    process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL, process.stderr.read() if process.stderr else ""
