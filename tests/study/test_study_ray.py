"""The Ray executor against a local Ray cluster started by the test on 127.0.0.1 (`ray start --head`),
connected by address: a trivial job, then a real stage command (a tiny data build), each a Ray task
with declared resources."""

from __future__ import annotations

import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sftscope.study import commands
from sftscope.study.executors import Job, RayExecutor
from sftscope.study.spec import LocalExecutorSpec

# Not imported here: Ray reads the first variable below when it is imported.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="Ray is not installed")

# Loopback only: without the first, Ray swaps 127.0.0.1 for the machine's address; the second skips
# token auth, which a throwaway single-machine cluster does not need.
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled"}

TINY_DATA = """\
name: tiny-answer-only
sources:
  - {kind: countdown, n: 20, style: answer-only, settings: {min_numbers: 3, max_numbers: 3, max_value: 10}}
transforms:
  - {kind: verify, scorer: countdown}
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def ray_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        pytest.skip("the `ray` command is not installed beside this Python")
    address = f"127.0.0.1:{free_port()}"
    log = (tmp_path_factory.mktemp("ray") / "head.log").open("w")
    head = subprocess.Popen(
        [str(ray_cli), "start", "--head", "--node-ip-address", "127.0.0.1", "--port", address.split(":")[1],
         "--num-cpus", "2", "--include-dashboard", "false", "--disable-usage-stats", "--block"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **LOOPBACK_ENV},
    )  # fmt: skip
    with pytest.MonkeyPatch.context() as patch:
        for key, value in LOOPBACK_ENV.items():
            patch.setenv(key, value)
        try:
            if "ray" in sys.modules:
                pytest.fail("ray was imported before the loopback settings: it would not use 127.0.0.1")
            wait_for_port(address, head)
            yield address
        finally:
            import ray

            ray.shutdown()
            head.terminate()  # `ray start --block` stops the processes it started
            head.wait(timeout=60)
            log.close()


def wait_for_port(address: str, head: subprocess.Popen[bytes]) -> None:
    """The head takes seconds to come up on a loaded machine; connecting earlier can hang."""
    host, port = address.split(":")
    deadline = time.monotonic() + 120
    while True:
        try:
            socket.create_connection((host, int(port)), timeout=1).close()
            return
        except OSError:
            if head.poll() is not None or time.monotonic() > deadline:
                pytest.fail("the Ray head did not start; see its head.log")
            time.sleep(1)


def test_a_trivial_job_is_a_ray_task(ray_address: str, tmp_path: Path) -> None:
    import ray

    executor = RayExecutor(ray_address)
    assert ray.get_runtime_context().gcs_address == ray_address
    code = "import os; print('threads', os.environ['OMP_NUM_THREADS'])"
    job = Job(
        "trivial", [sys.executable, "-c", code], tmp_path / "t.log", cpus=1, env={"OMP_NUM_THREADS": "1"}
    )
    result = executor.submit(job).result(timeout=120)
    assert result.returncode == 0 and "threads 1" in result.tail


def test_a_real_stage_command_runs_as_a_ray_task(ray_address: str, tmp_path: Path) -> None:
    if shutil.which("sftscope") is None and not Path(sys.executable).with_name("sftscope").exists():
        pytest.skip("the sftscope console script is not installed")
    spec = tmp_path / "tiny.yaml"
    spec.write_text(TINY_DATA)
    out = tmp_path / "data"
    argv = commands.data_build(commands.sftscope_command(LocalExecutorSpec()), spec, out)
    executor = RayExecutor(ray_address)
    result = executor.submit(Job("data:tiny", argv, tmp_path / "data.log", cpus=1)).result(timeout=300)
    assert result.returncode == 0, result.tail
    assert (out / "card.json").is_file() and len((out / "train.jsonl").read_text().splitlines()) == 20
