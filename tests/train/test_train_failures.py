"""Failures of `sftscope train` are one clear line and leave nothing half-written: a missing base, a
crafted or truncated trainer state (refused, never unpickled; --resume-from offered), a resume with a
different recipe, and a disk that fills while saving."""

from __future__ import annotations

import errno
import sys
from pathlib import Path

import pytest
import torch

from sftscope.errors import InputError, SftscopeError
from sftscope.train.checkpoints import STATE_FILE, read_manifest
from sftscope.train.loop import resume, train
from sftscope.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import run_cli, toy_config, toy_data_dir

KEYS = ("step", "loss", "grad_norm", "lr")


@pytest.fixture(scope="module")
def finished(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A finished 4-step run with a checkpoint at every step, to copy and damage."""
    root = tmp_path_factory.mktemp("finished")
    config = toy_config(tiny_model_dir, toy_data_dir(root / "data"), root / "run", schedule={"every": 1})
    return train(config)


def _copy(run: Path, to: Path) -> Path:
    import shutil

    shutil.copytree(run, to)
    return to


class _Touch:
    """Unpickling this runs code: it creates `path`."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[Path]]:
        return (Path.touch, (self.path,))


def test_a_crafted_trainer_state_is_refused_and_runs_no_code(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path / "run")
    marker = tmp_path / "code-ran"
    last = run / read_manifest(run)["checkpoints"][-1]["path"]
    torch.save({"step": 4, "optimizer": _Touch(marker)}, last / STATE_FILE)
    with pytest.raises(InputError) as caught:
        resume(run)
    assert not marker.exists()
    assert str(last / STATE_FILE) in str(caught.value) and "refused" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_a_truncated_state_names_the_checkpoint_and_resume_from_an_earlier_one_works(
    finished: Path, tmp_path: Path
) -> None:
    run = _copy(finished, tmp_path / "run")
    last = run / read_manifest(run)["checkpoints"][-1]["path"]
    data = (last / STATE_FILE).read_bytes()
    (last / STATE_FILE).write_bytes(data[: len(data) // 2])
    result = run_cli(tmp_path, "--resume", str(run))
    assert result.returncode == 2, result.stderr
    message = " ".join(result.stderr.split())
    assert str(last / STATE_FILE) in message and "--resume-from STEP (saved: [1, 2, 3])" in message

    result = run_cli(tmp_path, "--resume", str(run), "--resume-from", "2")
    assert result.returncode == 0, result.stderr
    assert [c["step"] for c in read_manifest(run)["checkpoints"]] == [1, 2, 3, 4]
    assert [[r[k] for k in KEYS] for r in read_metrics(run)] == [
        [r[k] for k in KEYS] for r in read_metrics(finished)
    ]


def test_resume_with_another_recipe_names_the_fields(finished: Path, tmp_path: Path) -> None:
    run = _copy(finished, tmp_path / "run")
    result = run_cli(tmp_path, "--resume", str(run), "lr=0.5", "seed=7")
    assert result.returncode == 2
    assert "differing fields: lr, seed" in " ".join(result.stderr.split())
    same = run_cli(tmp_path, "--resume", str(run), "lr=0.001")  # the run's own lr
    assert same.returncode == 0, same.stderr  # nothing differs, and nothing is left to do


def test_a_missing_base_model_fails_before_anything_is_written(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = toy_data_dir(tmp_path / "data")
    out = tmp_path / "run"
    result = run_cli(tmp_path, f"model={tmp_path / 'no-such-model'}", f"data={data}", f"out={out}")
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "field 'model'" in lines[0] and "not found" in lines[0]
    assert not out.exists()


def test_a_full_disk_while_saving_is_one_error_and_leaves_the_last_checkpoint(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = toy_config(
        tiny_model_dir, toy_data_dir(tmp_path / "data"), tmp_path / "run", schedule={"every": 1}
    )
    real_save = torch.save

    def fills_up(obj: object, path: object, *args: object, **kwargs: object) -> None:
        if isinstance(obj, dict) and obj.get("step") == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        real_save(obj, path, *args, **kwargs)

    monkeypatch.setattr(torch, "save", fills_up)
    with pytest.raises(SftscopeError) as caught:
        train(config)
    assert "disk full while saving step 3" in str(caught.value) and "\n" not in str(caught.value)
    run = Path(config.out)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step-000001", "step-000002"]
    assert [c["step"] for c in read_manifest(run)["checkpoints"]] == [1, 2]

    monkeypatch.setattr(torch, "save", real_save)  # space freed
    resume(run)
    assert [c["step"] for c in read_manifest(run)["checkpoints"]] == [1, 2, 3, 4]


def test_deepspeed_is_refused_by_the_own_loop(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from accelerate.utils import DistributedType

    from sftscope.train import loop

    monkeypatch.setattr(
        loop, "_accelerator", lambda: SimpleNamespace(distributed_type=DistributedType.DEEPSPEED)
    )
    config = toy_config(tiny_model_dir, toy_data_dir(tmp_path / "data"), tmp_path / "run")
    with pytest.raises(InputError, match="DeepSpeed needs engine: trl; the own loop runs DDP or FSDP"):
        train(config)
    assert not (tmp_path / "run").exists()
