"""A shipped base directory (config.json + a pretraining manifest.json) is a model, not a run."""

from __future__ import annotations

from sftscope.evaluate.targets import resolve_targets
from sftscope.models.loading import resolve_model


def test_a_shipped_base_directory_is_one_model_at_step_0() -> None:
    folder = resolve_model("micro-weak")
    targets = resolve_targets(folder)
    assert [(t.step, t.path) for t in targets] == [(0, folder)]
    assert targets[0].model_hash
