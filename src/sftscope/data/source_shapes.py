"""The source shapes data specs and task specs share, so a file, a hub dataset or the micro world is
written the same way in both:

    {kind: file, path: rows.jsonl, mapping: {...}}      # relative to the spec file
    {kind: hf, path: org/name, split: test, mapping: {...}}
    {kind: microworld, n: 600, domains: [countdown]}

Each stage adds its own options (a data source's card `name`, a task source's `n` and `adapter`)
and its own kinds (data: countdown, mix; tasks: reasoning_gym).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from sftscope.config.base import Strict
from sftscope.config.paths import PathOrName, SpecPath
from sftscope.data.hub import HubDataset
from sftscope.data.io import FieldMapping
from sftscope.data.microworld import domains


class FileSource(Strict):
    """Rows from a .jsonl, .parquet or .csv file."""

    kind: Literal["file"] = "file"
    """Selects this source."""
    path: SpecPath
    """Path of the file, relative to the spec file."""
    mapping: FieldMapping | None = None
    """Which columns feed question, response, answer, id and meta; unset for native `Example` rows."""


class HfSource(HubDataset):
    """Rows of a Hugging Face dataset (needs a network or the HF cache), or of a local snapshot."""

    kind: Literal["hf"] = "hf"
    """Selects this source."""
    path: PathOrName
    """Hub dataset id, or a local snapshot folder or data file (relative to the spec file)."""
    mapping: FieldMapping | None = None
    """Which columns feed question, response, answer, id and meta; unset for native `Example` rows."""


class MicroworldSource(Strict):
    """Questions of the procedural micro world (`sftscope.data.microworld`)."""

    kind: Literal["microworld"] = "microworld"
    """Selects this source."""
    n: int = Field(gt=0)
    """Number of rows."""
    domains: list[str] | None = Field(default=None, min_length=1)
    """Micro-world domains to draw from (in their pretraining proportions); all of them when unset."""
    seed: int | None = None
    """Sampling seed; unset: the spec's default."""

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, value: list[str] | None) -> list[str] | None:
        known = [d.name for d in domains()]
        unknown = [name for name in value or [] if name not in known]
        if unknown:
            raise ValueError(f"unknown micro-world domain(s) {unknown}; known: {', '.join(known)}")
        return value
