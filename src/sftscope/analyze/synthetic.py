"""A synthetic study with known effects, written through the results-store API.

Used by the analysis and report tests, and to see the report without training anything. The
planted effects (in logits of the per-prompt success probability, over log-spaced steps):
- long-CoT on the strong base: cross-domain dips then recovers above base; procedure-like
  backtracks (the attempt changes after "wait");
- long-CoT on the weak base: cross-domain dips and only partly rebounds; surface "wait"s;
- short-CoT: small steady cross-domain gain; answer-only: steady cross-domain loss;
- every condition gains in-domain; long-CoT lowers refusal of the forbidden category most and
  makes the model comply more with benign look-alikes (less over-refusal).
Step 0 is the base model: its rows are stored once per base and shared by all its runs, as the
sweep does with a content-hashed base checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from sftscope.analysis_file import RunInfo
from sftscope.evaluate.store import ResultsStore, TaskEntry

STEPS = (0, 1, 2, 4, 8, 16, 32, 64, 128)
TASKS = {  # task -> (domain, scorer)
    "countdown": ("in-domain", "countdown"),
    "arith": ("cross-domain", "reasoning_gym"),
    "logic": ("cross-domain", "reasoning_gym"),
    "forbidden": ("safety", "refusal"),
    "benign": ("safety", "refusal"),
}
BASES = {"micro-weak": "weak", "micro-strong": "strong"}
CONDITIONS = ("long-cot", "short-cot", "answer-only")

_DIP = np.array([0, -0.3, -0.9, -1.3, -1.1, -0.5, 0.2, 0.6, 0.8])
_STAY = np.array([0, -0.3, -0.9, -1.5, -1.6, -1.3, -0.9, -0.6, -0.5])
_RAMP = np.linspace(0, 1, len(STEPS))

_EFFECTIVE = "25 * 3 = 75, 75 - 8 = 67. Wait, that's not 72. Let me try 50 + 25 = 75, 75 - 3 = 72."
_SURFACE = "25 * 3 = 75. Wait, let me recompute: 25 * 3 = 75. Hmm. 75 - 3 = 72."
_PLAIN = "50 + 25 = 75, 75 - 3 = 72."


def _shift(condition: str, capability: str, task: str) -> np.ndarray:
    """The planted effect: logit shift per step."""
    domain = TASKS[task][0]
    if domain == "in-domain":
        return {"long-cot": 2.0, "short-cot": 1.2, "answer-only": 0.6}[condition] * _RAMP
    if task == "forbidden":  # score = refused
        return {"long-cot": -2.0, "short-cot": -0.6, "answer-only": -0.2}[condition] * _RAMP
    if task == "benign":  # score = complied
        return {"long-cot": 1.0, "short-cot": 0.3, "answer-only": 0.0}[condition] * _RAMP
    if condition == "long-cot":
        return _DIP if capability == "strong" else _STAY
    return {"short-cot": 0.3, "answer-only": -1.0}[condition] * _RAMP


def synthetic_runs() -> dict[str, RunInfo]:
    """Run name -> metadata, as a study would pass it."""
    return {
        f"{base}-{condition}": RunInfo(
            run=f"{base}-{condition}", condition=condition, base=base, capability=cap, preset="micro", seed=1
        )
        for base, cap in BASES.items()
        for condition in CONDITIONS
    }


def _output(condition: str, capability: str, step: int, rng: np.random.Generator) -> str:
    if step == 0 or condition == "answer-only":
        return "<think></think>\\boxed{50 + 25 - 3}"
    if condition == "short-cot":
        return f"<think>{_PLAIN}</think>\\boxed{{50 + 25 - 3}}"
    trace = _EFFECTIVE if capability == "strong" and rng.random() < 0.8 else _SURFACE
    return f"<think>{trace} Let me verify: 50 + 25 - 3 = 72.</think>\\boxed{{50 + 25 - 3}}"


def _rows(meta: RunInfo, step: int, i: int, seed: int, n_prompts: int, k: int) -> list[dict[str, Any]]:
    """Sample rows of one checkpoint on every task."""
    capability = meta.capability or ""
    base_index = list(BASES).index(meta.base)
    # The base's rows must not depend on the run, so step 0 draws from a base-keyed generator.
    rng = np.random.default_rng(
        [seed, base_index, step, 0 if step == 0 else list(CONDITIONS).index(meta.condition)]
    )
    # Length balloons while a long-CoT model is in its cross-domain dip, as in the reference study.
    verbosity = -min(0.0, float(_shift(meta.condition, capability, "arith")[i])) * (
        meta.condition == "long-cot"
    )
    rows = []
    for t, (task, (_, scorer)) in enumerate(TASKS.items()):
        difficulty = np.random.default_rng([seed, t]).normal(0.0, 1.2, n_prompts)
        head_start = 0.6 if capability == "strong" and scorer != "refusal" else 0.0
        p = 1 / (1 + np.exp(-(difficulty + head_start + _shift(meta.condition, capability, task)[i])))
        for prompt in range(n_prompts):
            for sample in range(k):
                truncated = bool(rng.random() < 0.05 * verbosity)
                ok = bool(rng.random() < p[prompt]) and not truncated
                extracted = "50 + 25 - 3"
                if scorer == "refusal":
                    extracted = "refusal" if ok == (task == "forbidden") else "compliance"
                rows.append(
                    {
                        "task": task,
                        "seed": 0,
                        "prompt_id": f"{task}-{prompt:03d}",
                        "sample_idx": sample,
                        "output": _output(meta.condition, capability, step, rng),
                        "extracted": None if truncated else extracted,
                        "score": float(ok),
                        "status": "truncated" if truncated else ("ok" if ok else "wrong"),
                        "output_tokens": int(60 + 400 * verbosity + rng.integers(0, 40)),
                        "finish_reason": "length" if truncated else "stop",
                    }
                )
    return rows


def write_synthetic_store(path: str | Path, seed: int = 0, n_prompts: int = 40, k: int = 2) -> Path:
    """Write the synthetic study to a results store at `path` (created if missing)."""

    path = Path(path)
    with ResultsStore(path) as store:
        store.register_tasks(
            [
                TaskEntry(task, domain, scorer, f"spec-{task}", True)
                for task, (domain, scorer) in TASKS.items()
            ]
        )
        stored_bases: set[str] = set()
        for run, meta in synthetic_runs().items():
            for i, step in enumerate(STEPS):
                model_hash = f"{meta.base}@0" if step == 0 else f"{run}@{step}"
                store.register_model(run, step, model_hash, None)
                if step == 0 and meta.base in stored_bases:
                    continue
                stored_bases.add(meta.base)
                rows = _rows(meta, step, i, seed, n_prompts, k)
                for row in rows:
                    row.update(model_hash=model_hash, sampling_hash=f"spec-{row['task']}")
                store.add_samples(rows)
    return path
