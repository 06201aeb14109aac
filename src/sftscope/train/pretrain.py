"""Pretrain a micro base: procedural corpus -> tokenizer -> fresh tiny Llama -> the project's loop -> export.

The corpus is the micro world's train split in the mix of `microworld.yaml`, one pass with no repeats
(steps x batch examples). Training is `sftscope.train.loop.train`, the same loop SFT uses: prompts
masked, loss on the short answers and EOS (padded batches: see `train_config`).

Reproducibility: the micro tokenizer is shipped in `models/bases/micro-tokenizer/` and reused by default,
so weak and strong share one vocabulary. It was trained by `sftscope pretrain --preset micro-weak
--retrain-tokenizer` on the first rows of that preset's corpus (BPE training is deterministic: the same
corpus gives the same tokenizer.json). With the same preset, seeds and thread count on CPU the loop is
deterministic, so the weights come out bitwise equal.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from sftscope.data.chat import DEFAULT_SUFFIX, with_suffix
from sftscope.data.io import write_records
from sftscope.data.microworld import build_corpus, check_mix, mix_counts
from sftscope.data.records import Example
from sftscope.errors import InputError
from sftscope.hashing import file_sha256
from sftscope.models.loading import BASES_DIR
from sftscope.models.micro import MicroPreset, init_model, preset, save_tokenizer, train_tokenizer
from sftscope.outdir import claim, fresh_output
from sftscope.train.config import CheckpointSchedule, TrainConfig
from sftscope.train.loop import train

TOKENIZER_DIR = BASES_DIR / "micro-tokenizer"
# Files a shipped base consists of; the trainer state and anything else in a checkpoint stay behind.
SHIPPED_SUFFIXES = (".json", ".safetensors", ".jinja", ".txt")
TOKENIZER_SAMPLE = 20_000  # examples whose text trains the BPE merges


def tokenizer_texts(rows: list[Example]) -> list[str]:
    """What the tokenizer sees: prompts with the instruction suffix, and responses."""
    texts: list[str] = []
    for row in rows:
        texts.extend(m.content for m in with_suffix(row.prompt, DEFAULT_SUFFIX))
        texts.append(row.response_text())
    return texts


def micro_tokenizer(corpus: list[Example], retrain: bool = False) -> Any:
    """The shipped micro tokenizer, or a new one trained on (a sample of) the corpus and shipped."""
    from transformers import AutoTokenizer

    if not retrain and (TOKENIZER_DIR / "tokenizer.json").exists():
        return AutoTokenizer.from_pretrained(TOKENIZER_DIR)
    tokenizer = train_tokenizer(tokenizer_texts(corpus[:TOKENIZER_SAMPLE]))
    save_tokenizer(tokenizer, TOKENIZER_DIR)
    return tokenizer


def checked_preset(name: str) -> MicroPreset:
    """The preset `name` with its corpus mix validated: an unknown domain or a bad weight is one
    InputError naming the preset and the field."""
    spec = preset(name)
    if spec.corpus is not None:
        try:
            check_mix(spec.corpus)
        except (KeyError, ValueError) as exc:
            raise InputError(f"micro preset '{name}'", str(exc.args[0]), field="corpus") from None
    return spec


def train_config(spec: MicroPreset, data: Path, init_dir: Path, run_dir: Path) -> Any:
    """The loop's TrainConfig for pretraining: padded batches, high lr, short warmup, cosine decay.

    Padded, not packed: on CPU a packed pass is one long row with a dense block-diagonal mask, and at
    ~50 tokens per example, length-sorted padded rows cost far less (same loss either way).
    """

    return TrainConfig(
        model=str(init_dir),
        data=str(data),
        out=str(run_dir),
        preset=None,
        suffix=DEFAULT_SUFFIX,
        max_length=spec.max_positions,
        length_policy="error",
        packing=False,
        micro_batch_tokens=8192,
        batch_size=spec.batch_size,
        steps=spec.steps,
        lr=spec.lr,
        lr_schedule="cosine",
        warmup_ratio=spec.warmup_ratio,
        weight_decay=0.01,
        seed=spec.seed,
        schedule=CheckpointSchedule(every=max(spec.steps // 4, 1)),
        report_to=[],
    )


def export_base(checkpoint: Path, out: Path, manifest: dict[str, Any], *, overwrite: bool = False) -> Path:
    """Copy a checkpoint's model and tokenizer files to `out` and write manifest.json with their sha256s.

    `out` is replaced once the export is complete; a folder that is not an exported base only with
    `overwrite`."""
    with fresh_output(out, "pretrain", overwrite=overwrite, legacy=is_exported_base) as tmp:
        files = {}
        for path in sorted(checkpoint.iterdir()):
            if path.is_file() and path.suffix in SHIPPED_SUFFIXES:
                shutil.copy2(path, tmp / path.name)
                files[path.name] = file_sha256(tmp / path.name)
        (tmp / "manifest.json").write_text(json.dumps({**manifest, "sha256": files}, indent=2) + "\n")
    return out


def is_exported_base(folder: Path) -> bool:
    """A base exported before output folders were marked (the shipped ones): its manifest lists them."""
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and {"preset", "sha256"} <= manifest.keys()


def pretrain(
    name: str,
    *,
    out: Path | None = None,
    work: Path | None = None,
    steps: int | None = None,
    retrain_tokenizer: bool = False,
    overwrite: bool = False,
) -> Path:
    """Pretrain the preset `name` and export it to `out` (default: the shipped bases folder).

    `work` holds the corpus, the initial weights and the training run (default: ./pretrain-runs/<name>);
    `steps` overrides the preset's budget (for tests and calibration). Folders that hold files
    pretrain did not write are replaced only with `overwrite`.
    """
    import torch

    spec = checked_preset(name)
    if steps is not None:
        spec = spec.model_copy(update={"steps": steps})
    out = out or BASES_DIR / name
    work = work or Path("pretrain-runs") / name
    # Checked before minutes of training, not when the export comes to replace them.
    claim(out, "pretrain", overwrite=overwrite, legacy=is_exported_base)
    run_dir = work / "run"
    claim(run_dir, "train", overwrite=overwrite, legacy=lambda folder: (folder / "config.yaml").is_file())
    work.mkdir(parents=True, exist_ok=True)
    if run_dir.exists():
        shutil.rmtree(run_dir)  # a pretraining run is rebuilt from its seeds, never resumed half-way

    corpus = build_corpus(spec.steps * spec.batch_size, spec.corpus_seed, weights=spec.corpus)
    write_records(corpus, work / "corpus.jsonl")
    tokenizer = micro_tokenizer(corpus, retrain=retrain_tokenizer)
    init_dir = work / "init"
    model = init_model(spec, tokenizer)
    model.save_pretrained(init_dir, safe_serialization=True)
    tokenizer.save_pretrained(init_dir)

    started = time.time()
    train(train_config(spec, work / "corpus.jsonl", init_dir, run_dir))
    wall = time.time() - started
    run_manifest = json.loads((run_dir / "manifest.json").read_text())
    final = run_manifest["checkpoints"][-1]
    return export_base(
        run_dir / final["path"],
        out,
        {
            "name": name,
            "preset": spec.model_dump(),
            "parameters": sum(p.numel() for p in model.parameters()),
            "corpus_seed": spec.corpus_seed,
            "corpus_examples": len(corpus),
            "mix": mix_counts(len(corpus), weights=spec.corpus),
            "steps": final["step"],
            "tokens_seen": final["tokens_seen"],
            "train_wall_time_s": round(final["wall_time"], 1),
            "total_wall_time_s": round(wall, 1),
            "content_hash": final.get("content_hash"),
            "torch_threads": torch.get_num_threads(),
        },
        overwrite=overwrite,
    )
