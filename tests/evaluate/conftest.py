"""Other trainers' output folders, each trained once per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from trainer_runs import trl_run


@pytest.fixture(scope="session")
def trl_full(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TRL SFTTrainer output folder: checkpoint-2/ and checkpoint-4/ with full weights."""
    return trl_run(tmp_path_factory.mktemp("trl") / "trl-full")


@pytest.fixture(scope="session")
def trl_lora(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TRL SFTTrainer + PEFT LoRA output folder: checkpoint-2/ and checkpoint-4/ holding adapters."""
    return trl_run(tmp_path_factory.mktemp("trl") / "trl-lora", lora=True)
