"""The vLLM backend (GPU; optional: `pip install 'sftscope[vllm]'`).

A checkpoint sweep normally restarts the engine per checkpoint (vllm#5723). When the next
checkpoint has the same config, its weights are loaded into the running engine through a worker
extension instead; if that fails (an older vLLM), the engine is rebuilt. Stop strings are applied
after generation, because vLLM would let them fire inside <think>.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sftscope.data.chat import render_prompt
from sftscope.data.records import Message
from sftscope.errors import SftscopeError
from sftscope.evaluate.backends.base import Generation, OnDone, prompt_seeds
from sftscope.evaluate.backends.stops import find_stop, opens_think
from sftscope.evaluate.spec import SamplingSpec

RELOADER = "sftscope.evaluate.backends.vllm.WeightReloader"


def require_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise SftscopeError(
            "the vllm backend needs vLLM, which is not installed: pip install 'sftscope[vllm]' "
            "(or use --backend transformers)"
        ) from exc
    return vllm


class VLLMBackend:
    """One `vllm.LLM` engine, reused across checkpoints of the same architecture."""

    name = "vllm"

    def __init__(self, batch_size: int = 256, **engine_args: Any) -> None:
        self.vllm = require_vllm()
        self.batch_size = batch_size
        self.engine_args = engine_args
        self.llm: Any = None
        self.config: str | None = None

    def load(self, model_path: str) -> None:
        config = _config_text(model_path)
        if self.llm is not None and config is not None and config == self.config:
            try:
                self.llm.collective_rpc("sftscope_load_weights", args=(str(model_path),))
                return
            except Exception:  # any failure means: rebuild the engine, as without reload
                pass
        self.close()
        self.llm = self.vllm.LLM(
            model=str(model_path),
            max_num_seqs=self.batch_size,
            enable_prefix_caching=True,  # the n samples of a prompt share its prefill
            worker_extension_cls=RELOADER,
            **self.engine_args,
        )
        self.config = config

    def render(self, messages: list[Message], suffix: str | None) -> str:
        return render_prompt(self.llm.get_tokenizer(), messages, suffix)

    def generate(
        self,
        prompts: list[str],
        sampling: SamplingSpec,
        *,
        seeds: list[int] | None = None,
        on_done: OnDone | None = None,
    ) -> list[Generation]:
        seeds = prompt_seeds(prompts, sampling, seeds)
        results: list[Generation] = []
        # Chunks of one engine batch: a killed sweep then loses at most one chunk of work.
        for start in range(0, len(prompts), self.batch_size):
            chunk = prompts[start : start + self.batch_size]
            params = [
                self.vllm.SamplingParams(
                    temperature=sampling.temperature,
                    top_p=sampling.top_p,
                    max_tokens=sampling.max_new_tokens,
                    seed=seeds[start + i],
                )
                for i in range(len(chunk))
            ]
            for i, output in enumerate(self.llm.generate(chunk, params, use_tqdm=False)):
                generation = _generation(chunk[i], output, sampling)
                results.append(generation)
                if on_done is not None:
                    on_done(start + i, generation)
        return results

    def close(self) -> None:
        self.llm = None
        self.config = None


def _generation(prompt: str, output: Any, sampling: SamplingSpec) -> Generation:
    completion = output.outputs[0]
    text = completion.text
    finish = "length" if completion.finish_reason == "length" else "stop"
    cut = find_stop(text, sampling.stop, opens_think(prompt)) if sampling.stop else None
    if cut is not None:
        text, finish = text[:cut], "stop"
    return Generation(text, len(output.prompt_token_ids or []), len(completion.token_ids), finish)


def _config_text(model_path: str) -> str | None:
    path = Path(model_path) / "config.json"
    return path.read_text(encoding="utf-8") if path.is_file() else None


class WeightReloader:
    """vLLM worker extension: load a checkpoint's safetensors into the running model in place."""

    model_runner: Any

    def sftscope_load_weights(self, model_path: str) -> None:
        from safetensors.torch import load_file
        from vllm.model_executor.model_loader.utils import process_weights_after_loading

        files = sorted(Path(model_path).glob("*.safetensors"))
        if not files:
            raise FileNotFoundError(f"{model_path}: no safetensors weights to reload")
        model = self.model_runner.model
        for file in files:
            model.load_weights(load_file(str(file)).items())
        device = next(model.parameters()).device
        process_weights_after_loading(model, self.model_runner.model_config, device)
