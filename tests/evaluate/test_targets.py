"""A shipped base directory (config.json + a pretraining manifest.json) is a model, not a run; a broken
run manifest is an error naming its line or field."""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from sftscope.errors import InputError
from sftscope.evaluate.targets import (
    HASH_CACHE_ENV,
    Target,
    hash_cache_dir,
    resolve_targets,
    served_target,
    weights_hash,
)
from sftscope.models.loading import resolve_model
from sftscope.rundir import content_hash

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from fake_run import make_run


def test_a_shipped_base_directory_is_one_model_at_step_0() -> None:
    folder = resolve_model("micro-weak")
    targets = resolve_targets(folder)
    assert [(t.step, t.path) for t in targets] == [(0, folder)]
    assert targets[0].model_hash


def test_a_broken_run_manifest_is_a_located_error(tmp_path: Path) -> None:
    entry = {"step": 10, "path": "checkpoints/step-000010", "content_hash": "ab"}
    good = {"base_model": "micro-weak", "base_hash": "cd", "total_steps": 10, "checkpoints": [entry]}
    manifest = tmp_path / "manifest.json"
    cases = [
        ('{"checkpoints": [', "malformed JSON", 1, None),
        ("[]", "expected an object", 1, None),
        (json.dumps({**good, "checkpoints": [{**entry, "content_hash": None}]}), "valid string", None,
         "checkpoints[0].content_hash"),
        (json.dumps({**good, "checkpoints": [{**entry, "step": "ten"}]}), "valid integer", None,
         "checkpoints[0].step"),
        (json.dumps({k: v for k, v in good.items() if k != "base_hash"}), "Field required", None,
         "base_hash"),
    ]  # fmt: skip
    for text, words, line, field in cases:
        manifest.write_text(text)
        with pytest.raises(InputError, match=words) as caught:
            resolve_targets(tmp_path)
        assert (caught.value.file, caught.value.line, caught.value.field) == (str(manifest), line, field)


def test_a_served_target_is_keyed_by_endpoint_and_model_name() -> None:
    local = Target("step-000010", 10, "/runs/r/checkpoints/step-000010", "ab" * 32)
    served = served_target(local, "http://h:8000/v1/", "qwen")
    assert served.run == "openai:qwen@h:8000" and (served.step, served.path) == (10, local.path)
    assert served.model_hash != local.model_hash
    assert served == served_target(local, "http://h:8000/v1", "qwen")  # a trailing slash is the same URL
    assert served.model_hash != served_target(local, "http://other:8000/v1", "qwen").model_hash
    assert served.model_hash != served_target(local, "http://h:8000/v1", "llama").model_hash
    assert served_target(local, "http://h:8000/v1", None).run == "openai:step-000010@h:8000"
    assert served_target(local, "http://other:8000/v1", "qwen").run == "openai:qwen@other:8000"


def test_weights_changed_after_training_are_refused(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HASH_CACHE_ENV, str(tmp_path / "cache"))
    run = make_run(tiny_model_dir, tmp_path)
    files = sorted(tmp_path.rglob("*"))
    assert [t.step for t in resolve_targets(run)] == [0, 10, 20]
    assert len(list(hash_cache_dir().glob("*.json"))) == 3  # the next resolve reads no weights
    assert sorted(p for p in tmp_path.rglob("*") if "cache" not in p.parts) == files  # nothing beside them
    step10, step20 = (run / "checkpoints" / f"step-0000{s}" / "model.safetensors" for s in (10, 20))
    shutil.copyfile(step10, step20)  # another step's weights copied over: step 20's rows would be 10's
    with pytest.raises(InputError, match="they changed after training") as caught:
        resolve_targets(run)
    where = (caught.value.file, caught.value.field)
    assert where == (str(run / "manifest.json"), "checkpoints[1].content_hash")


def test_a_same_size_rewrite_with_its_mtime_restored_is_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HASH_CACHE_ENV, str(tmp_path / "cache"))
    model = tmp_path / "model"
    model.mkdir()
    weights = model / "model.safetensors"
    weights.write_bytes(b"a" * 64)
    first = weights_hash(model)
    assert first == content_hash(model) and weights_hash(model) == first  # the second one is cached
    stat = weights.stat()
    time.sleep(0.01)  # the ctime must be able to move on a coarse clock
    weights.write_bytes(b"b" * 64)  # same size, same inode
    os.utime(weights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert (weights.stat().st_size, weights.stat().st_mtime_ns) == (stat.st_size, stat.st_mtime_ns)
    assert weights_hash(model) == content_hash(model) != first
