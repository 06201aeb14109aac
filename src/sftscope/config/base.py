"""The pydantic base of every spec model, and the `kind:` field that tells union members apart."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, BeforeValidator, ConfigDict

KIND = "kind"


class Strict(BaseModel):
    """Base for every spec model: an unknown key is an error, never ignored."""

    model_config = ConfigDict(extra="forbid")


def _kind_required(value: Any) -> Any:
    # Without `kind` pydantic's error cannot list the known kinds; an unknown kind's error does.
    if isinstance(value, dict) and KIND not in value:
        return {KIND: None, **value}
    return value


kind_required = BeforeValidator(_kind_required)
"""Put on a `Field(discriminator="kind")` union, so a missing `kind:` is reported with the known ones."""
