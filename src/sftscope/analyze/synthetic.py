"""A synthetic study with known effects, in the results store's `samples()` schema.

Used by the analysis and report tests, and to see the report without training anything. The
planted effects (in logits of the per-prompt success probability, over log-spaced steps):
- long-CoT on the strong base: cross-domain dips then recovers above base; procedure-like
  backtracks (the attempt changes after "wait");
- long-CoT on the weak base: cross-domain dips and never recovers; surface "wait"s;
- short-CoT: small steady cross-domain gain; answer-only: steady cross-domain loss;
- every condition gains in-domain; long-CoT lowers refusal of the forbidden category most.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from sftscope.analyze.model import RunInfo

STEPS = (0, 1, 2, 4, 8, 16, 32, 64, 128)
TASKS = {  # task -> domain
    "countdown": "in-domain",
    "arith": "cross-domain",
    "logic": "cross-domain",
    "forbidden": "safety",
}
BASES = {"micro-weak": "weak", "micro-strong": "strong"}
CONDITIONS = ("long-cot", "short-cot", "answer-only")

_DIP = np.array([0, -0.3, -0.9, -1.3, -1.1, -0.5, 0.2, 0.6, 0.8])
_STAY = np.array([0, -0.3, -0.9, -1.3, -1.4, -1.3, -1.1, -1.0, -1.0])
_RAMP = np.linspace(0, 1, len(STEPS))

_EFFECTIVE = "25 * 3 = 75, 75 - 8 = 67. Wait, that's not 72. Let me try 50 + 25 = 75, 75 - 3 = 72."
_SURFACE = "25 * 3 = 75. Wait, let me recompute: 25 * 3 = 75. Hmm. 75 - 3 = 72."
_PLAIN = "50 + 25 = 75, 75 - 3 = 72."


def _shift(condition: str, capability: str, domain: str) -> np.ndarray:
    """The planted effect: logit shift per step."""
    if domain == "in-domain":
        return {"long-cot": 2.0, "short-cot": 1.2, "answer-only": 0.6}[condition] * _RAMP
    if domain == "safety":  # refusal rate of the forbidden category (higher is better)
        return {"long-cot": -2.0, "short-cot": -0.6, "answer-only": -0.2}[condition] * _RAMP
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


def synthetic_samples(seed: int = 0, n_prompts: int = 40, k: int = 2) -> pa.Table:
    """Sample rows for every run x step x task x prompt x sample."""
    rng = np.random.default_rng(seed)
    difficulty = {task: rng.normal(0.0, 1.2, n_prompts) for task in TASKS}
    rows: dict[str, list] = {
        c: []
        for c in (
            "run",
            "step",
            "task",
            "domain",
            "higher_is_better",
            "prompt_id",
            "sample_idx",
            "output",
            "extracted",
            "score",
            "status",
            "output_tokens",
            "finish_reason",
        )
    }
    for run, meta in synthetic_runs().items():
        for task, domain in TASKS.items():
            shift = _shift(meta.condition, meta.capability or "", domain)
            for i, step in enumerate(STEPS):
                # Length balloons while a long-CoT model is in its dip, as in the reference study.
                tokens = 60 + (400 * max(0.0, -float(shift[i])) if meta.condition == "long-cot" else 0.0)
                head_start = 0.6 if meta.capability == "strong" and domain != "safety" else 0.0
                p = 1 / (1 + np.exp(-(difficulty[task] + head_start + shift[i])))
                for prompt in range(n_prompts):
                    for sample in range(k):
                        correct = bool(rng.random() < p[prompt])
                        truncated = meta.condition == "long-cot" and rng.random() < 0.02 * -min(0.0, shift[i])
                        rows["run"].append(run)
                        rows["step"].append(step)
                        rows["task"].append(task)
                        rows["domain"].append(domain)
                        rows["higher_is_better"].append(True)
                        rows["prompt_id"].append(f"{task}-{prompt:03d}")
                        rows["sample_idx"].append(sample)
                        rows["output"].append(_output(meta.condition, meta.capability or "", step, rng))
                        rows["extracted"].append(None if truncated else "50 + 25 - 3")
                        rows["score"].append(float(correct and not truncated))
                        rows["status"].append("truncated" if truncated else ("ok" if correct else "wrong"))
                        rows["output_tokens"].append(int(tokens + rng.integers(0, 40)))
                        rows["finish_reason"].append("length" if truncated else "stop")
    return pa.table(rows)
