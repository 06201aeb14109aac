"""Peak memory of one loss step (forward + backward of the response-token loss), chunked against
unchunked: a tiny Llama (2 layers, hidden 64) with Qwen3's 151,936-token vocabulary and one response
of 16k tokens, on CPU.

    python benchmarks/train_memory.py [--tokens 16384] [--chunk 1024] [--sizes 512,1024,2048]

Each figure is the resident-memory high-water mark (VmHWM) of a fresh process, reset just before the
step (after a warm-up step, so torch's one-time allocations are not counted), minus the memory
resident before it. Unchunked, the 16k-token step needs about 40 GB (four fp32 `tokens x vocab`
tensors), more than a CI machine holds: it is measured at `--sizes`, where both variants also give
their losses (which must agree), and its 16k figure is the straight line through those points,
printed as an extrapolation; the chunked step there uses a chunk as many times smaller, so both make
as many chunks as at 16k. The chunked step is measured at 16k itself. Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

VOCAB = 151_936
PROMPT = 16


def tiny_llama() -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=32768,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def one_response(tokens: int) -> Any:
    """One packed row: a 16-token prompt and a `tokens`-token response."""
    from sftscope.train.batching import collate_packed
    from sftscope.train.encode import Encoded

    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, VOCAB, (PROMPT + tokens,), generator=generator).tolist()
    return collate_packed([Encoded(ids, PROMPT)])


def loss_step(model: Any, batch: Any, chunk: int | None) -> float:
    from sftscope.train.loss import CompletionLoss, batch_loss

    model.zero_grad(set_to_none=True)
    nll, _ = batch_loss(CompletionLoss(model, chunk), batch)
    nll.backward()
    return float(nll.detach())


def rss(field: str) -> int:
    return int(re.search(rf"{field}:\s+(\d+) kB", Path("/proc/self/status").read_text()).group(1)) * 1024


def measure_real(tokens: int, chunk: int | None) -> dict[str, Any]:
    """In this (fresh) process: warm up, reset the RSS high-water mark, run the step once."""
    model = tiny_llama()
    loss_step(model, one_response(64), chunk and 16)  # first-call allocations of torch itself
    batch = one_response(tokens)
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = rss("VmRSS")
    loss = loss_step(model, batch, chunk)
    return {"loss_per_token": loss / tokens, "peak": rss("VmHWM") - before}


def in_fresh_process(tokens: int, chunk: int | None) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--one", str(tokens), str(chunk or 0)]
    # Every allocation of 128 kB or more gets its own mapping, returned when freed: the resident memory
    # then follows the live tensors instead of the allocator's heap, which grows once and is reused.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072"}
    done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
    return json.loads(done.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=16384)
    parser.add_argument("--chunk", type=int, default=1024)
    parser.add_argument("--sizes", default="512,1024,2048", help="where unchunked is measured")
    parser.add_argument("--one", nargs=2, type=int, help=argparse.SUPPRESS)  # TOKENS CHUNK (0: none)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure_real(args.one[0], args.one[1] or None)))
        return
    gb = 1e9
    sizes = [int(size) for size in args.sizes.split(",")]

    print(f"loss step, vocab {VOCAB}: peak GB above the resident memory before it")
    whole = {size: in_fresh_process(size, None) for size in sizes}
    for size in sizes:
        chunk = max(1, args.chunk * size // args.tokens)  # as many chunks as at --tokens
        chunked = in_fresh_process(size, chunk)
        difference = abs(chunked["loss_per_token"] - whole[size]["loss_per_token"])
        print(
            f"  {size:6d} tokens: unchunked {whole[size]['peak'] / gb:7.3f}, chunk {chunk:4d} "
            f"chunked {chunked['peak'] / gb:7.3f} ({chunked['peak'] / whole[size]['peak']:.3f}x); "
            f"|loss/token difference| {difference:.1e}"
        )
    slope, intercept = np.polyfit(sizes, [whole[size]["peak"] for size in sizes], 1)
    extrapolated = slope * args.tokens + intercept
    chunked = in_fresh_process(args.tokens, args.chunk)
    print(
        f"  {args.tokens:6d} tokens: unchunked {extrapolated / gb:7.3f} "
        f"(extrapolated, {slope / 1e6:.2f} MB/token), chunk {args.chunk} {chunked['peak'] / gb:7.3f} "
        f"(measured): {chunked['peak'] / extrapolated:.3f}x unchunked"
    )


if __name__ == "__main__":
    main()
