"""The trl engine hands TRL's memory options through, packing becomes padding-free rows with position
ids and no attention mask, and attn_implementation reaches the loaded model."""

from __future__ import annotations

from pathlib import Path

import pytest
from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

from sftscope.errors import InputError
from sftscope.models.loading import attention_kernel, load_model
from sftscope.train.config import load_config
from sftscope.train.encode import Encoded
from sftscope.train.trl_engine import micro_batch_size, sft_config


def _config(*overrides: str):  # type: ignore[no-untyped-def]
    return load_config(None, ["model=m", "data=d", "out=o", "engine=trl", *overrides])


def test_memory_options_reach_sft_config(tmp_path: Path) -> None:
    config = _config("activation_offloading=true", "gradient_checkpointing=true", "grad_clip=null")
    args = sft_config(config, tmp_path, total=10, per_device=4, world=2, main=True)
    assert args.activation_offloading and args.gradient_checkpointing and args.padding_free
    assert (
        args.max_steps == 10 and args.per_device_train_batch_size * args.gradient_accumulation_steps * 2 == 32
    )
    assert args.max_grad_norm == float("inf")  # no clipping, but the norm is still logged
    assert not sft_config(_config("packing=false"), tmp_path, 10, 4, 2, True).padding_free


def test_liger_needs_the_trl_engine() -> None:
    assert _config("use_liger_kernel=true").use_liger_kernel
    with pytest.raises(InputError, match="engine: trl"):
        load_config(None, ["model=m", "data=d", "out=o", "use_liger_kernel=true"])


def test_padding_free_rows_carry_position_ids_and_no_mask() -> None:
    batch = DataCollatorForLanguageModeling(pad_token_id=0, padding_free=True)(
        [{"input_ids": [5, 6, 7], "labels": [-100, 6, 7]}, {"input_ids": [8, 9], "labels": [-100, 9]}]
    )
    assert "attention_mask" not in batch
    assert batch["position_ids"].tolist() == [[0, 1, 2, 0, 1]]


def test_micro_batches_split_the_global_batch_evenly() -> None:
    encoded = [Encoded(list(range(100)), 10)] * 12
    config = _config("batch_size=8", "micro_batch_tokens=300")
    assert micro_batch_size(config, encoded, world=1) == 2  # 3 fit, 8 needs a divisor; 12 splits by 2
    assert micro_batch_size(config, encoded, world=2) == 2
    with pytest.raises(InputError, match="divisible"):
        micro_batch_size(_config("batch_size=5"), encoded, world=2)


def test_attn_implementation_reaches_the_model(tiny_model_dir: Path) -> None:
    assert attention_kernel("auto") == "sdpa"  # no flash-attn and no GPU here
    assert load_model(str(tiny_model_dir), attn_implementation="eager").config._attn_implementation == "eager"
    assert load_model(str(tiny_model_dir)).config._attn_implementation == "sdpa"
