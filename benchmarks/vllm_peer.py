"""vLLM as a user would sweep checkpoints with it, for `eval_throughput.py`'s vLLM row.

Runs under a Python that has vLLM (its own environment, see docs/contributing.md), started by the
benchmark and kept running: each line on stdin is a request `{"path", "prompts", "max_new_tokens",
"engine"}`; for each it starts `vllm.LLM(model=path, **engine)`, generates every prompt greedily in one
`generate` call, shuts the engine down, and answers one line on stdout: `{"load_s", "generate_s",
"release_s", "outputs"}` or `{"error"}`. It answers `{"ready": version}` once vLLM is imported and
ends at the end of stdin.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from typing import Any


def run(vllm: Any, request: dict[str, Any]) -> dict[str, Any]:
    started = time.perf_counter()
    llm = vllm.LLM(model=request["path"], **request["engine"])
    loaded = time.perf_counter()
    # skip_special_tokens=False: the text keeps `<think>` as the sftscope backends keep it.
    params = vllm.SamplingParams(
        temperature=0.0, max_tokens=request["max_new_tokens"], skip_special_tokens=False
    )
    outputs = llm.generate(request["prompts"], params, use_tqdm=False)
    generated = time.perf_counter()
    # The engine-core processes end now, as a sweep's next checkpoint needs them gone: left to the
    # garbage collector their shutdown can wait until the interpreter exits.
    llm.llm_engine.engine_core.shutdown()
    del llm
    return {
        "load_s": loaded - started,
        "generate_s": generated - loaded,
        "release_s": time.perf_counter() - generated,
        "outputs": [o.outputs[0].text for o in outputs],
    }


def main() -> None:
    # vLLM logs to stdout, which carries the answers: they keep the original stdout, the logs (of
    # this process and of the engine processes it starts) go to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "w")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())

    def answer(message: dict[str, Any]) -> None:
        answers.write(json.dumps(message) + "\n")
        answers.flush()

    try:
        import vllm
    except ImportError as exc:
        answer({"error": f"vLLM is not importable by {sys.executable}: {exc}"})
        return
    answer({"ready": vllm.__version__})
    for line in sys.stdin:
        try:
            answer(run(vllm, json.loads(line)))
        except Exception as exc:
            traceback.print_exc()
            answer({"error": traceback.format_exception_only(type(exc), exc)[-1].strip()})


if __name__ == "__main__":  # vLLM spawns its engine processes, which import this module again
    main()
