"""The pydantic base of every spec model."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for every spec model: an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")
