"""The shipped accelerate configs load with accelerate's own config classes; ZeRO-3 builds a DeepSpeed
plugin (DeepSpeed itself cannot run here); the own loop refuses DeepSpeed before writing anything."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from accelerate.commands.config.config_args import load_config_from_file
from accelerate.utils import DeepSpeedPlugin, DistributedType

from sftscope.errors import InputError
from sftscope.train import loop

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import toy_config, toy_data_dir

CONFIGS = Path(__file__).resolve().parents[2] / "configs" / "accelerate"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_config_loads(path: Path) -> None:
    assert load_config_from_file(str(path)).num_processes >= 1


def test_zero3_config_builds_a_stage_3_plugin() -> None:
    config = load_config_from_file(str(CONFIGS / "zero3-gpu.yaml"))
    assert config.distributed_type == DistributedType.DEEPSPEED and config.mixed_precision == "bf16"
    plugin = DeepSpeedPlugin(**config.deepspeed_config)
    assert plugin.zero_stage == 3 and plugin.zero3_save_16bit_model


def test_own_loop_refuses_deepspeed(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        loop, "_accelerator", lambda: SimpleNamespace(distributed_type=DistributedType.DEEPSPEED)
    )
    config = toy_config(tiny_model_dir, toy_data_dir(tmp_path / "data"), tmp_path / "run")
    with pytest.raises(InputError, match="engine: trl") as error:
        loop.train(config)
    assert error.value.field == "engine"
    assert not (tmp_path / "run").exists()
