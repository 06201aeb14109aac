"""Named recipes: plain dicts of TrainConfig values that sit under a config file's own values.

`paper*` carry the reference study's recipe (Ren et al. 2026: verl FSDP SFT, AdamW, global batch 256,
checkpoints every 10 steps, right truncation at 20k tokens) on the `trl` engine with gradient
checkpointing. `micro` is sized for 2 CPU cores, on the own loop (faster there).
"""

from __future__ import annotations

from typing import Any

from sftscope.errors import InputError

PAPER: dict[str, Any] = {
    "lr": 5e-5,
    "betas": [0.9, 0.999],
    "weight_decay": 0.01,
    "warmup_ratio": 0.1,
    "lr_schedule": "cosine",
    "grad_clip": 1.0,
    "batch_size": 256,
    "epochs": 8,
    "max_length": 20000,
    "length_policy": "truncate",
    "seed": 1,
    # fp32 master weights; bf16 compute comes from the accelerate config (mixed_precision: bf16), as
    # verl's FSDP mixed precision did. Pure-bf16 weights would lose small AdamW updates at lr 5e-5.
    "dtype": "float32",
    "schedule": {"every": 10, "log_spaced": False, "steps": []},
    # At 1.7B-14B on 20k-token rows: the engine people already run at this scale, and activations
    # recomputed layer by layer instead of held for the whole model.
    "engine": "trl",
    "gradient_checkpointing": True,
}

PRESETS: dict[str, dict[str, Any]] = {
    "paper": PAPER,
    "paper-1ep": {**PAPER, "epochs": 1},
    "paper-1ep-lr1e-5": {**PAPER, "epochs": 1, "lr": 1e-5},
    "paper-16ep": {**PAPER, "epochs": 16},
    "paper-16ep-constant": {**PAPER, "epochs": 16, "lr_schedule": "constant"},
    "paper-16ep-lr1e-4-constant": {**PAPER, "epochs": 16, "lr": 1e-4, "lr_schedule": "constant"},
    # Tiny models on 2 CPU cores: fp32 (bf16 is slow on CPU), a small global batch so a few thousand
    # examples give hundreds of steps, a higher lr as tiny models need, and log-spaced checkpoints plus
    # a coarse grid so the dip-and-recovery curve is sampled densely early and evenly later. Packed
    # rows of at most 1024 tokens: CPU attention costs the square of a row's length, and 1024-token
    # rows were the fastest layout in benchmarks/train_throughput.py.
    "micro": {
        **PAPER,
        "engine": "sftscope",
        "gradient_checkpointing": False,
        "lr": 1e-3,
        "batch_size": 32,
        "packing": True,
        "micro_batch_tokens": 1024,
        "max_length": 1024,
        "schedule": {"every": 50, "log_spaced": True, "steps": []},
    },
}


def preset_values(name: str, source: str = "command line") -> dict[str, Any]:
    """The values of a preset; an unknown name is an error that lists the known ones."""
    if name not in PRESETS:
        raise InputError(source, f"unknown preset '{name}' (known: {', '.join(PRESETS)})", field="preset")
    return PRESETS[name]
