"""The YAML data spec: sources, then transforms, validated before anything runs.

Every model forbids unknown keys, and a validation error is reported as `InputError(file, line=,
field=)`: the YAML is composed into nodes (which keep their line numbers) and pydantic's error
location is walked down those nodes.

    name: countdown-corrupted
    seed: 0
    sources:
      - countdown: {n: 2000, style: long-cot}
    transforms:
      - verify: {kind: countdown}
      - corrupt: {rate: 0.5}
"""

from __future__ import annotations

from functools import reduce
from operator import or_
from pathlib import Path
from typing import Annotated, Any

import yaml
from pydantic import (
    BeforeValidator,
    Discriminator,
    Field,
    Tag,
    ValidationError,
    create_model,
)

from sftscope.config.base import Strict
from sftscope.config.paths import PathOrName, spec_context
from sftscope.config.specfile import read_yaml_mapping, validation_error
from sftscope.data.chat import DEFAULT_SUFFIX
from sftscope.data.corrupt import Corrupt
from sftscope.data.decontaminate import Decontaminate
from sftscope.data.sources import SOURCE_TAGS, Source
from sftscope.data.transforms import Dedupe, Mix, StripReasoning, Subsample, Transform, Verify

TRANSFORMS: dict[str, type[Transform]] = {
    cls.name: cls for cls in (Verify, StripReasoning, Corrupt, Subsample, Dedupe, Mix, Decontaminate)
}


def _step_model(name: str, cls: type[Transform]) -> type[Strict]:
    """`{verify: {...}}` as a model with the one field `verify`, so the YAML shape validates as is."""
    return create_model(f"{cls.__name__}Step", __base__=Strict, **{name: (cls, ...)})  # type: ignore[call-overload]


def _step_name(value: Any) -> str | None:
    if isinstance(value, dict):
        return next(iter(value), None)
    return next(iter(type(value).model_fields), None) if isinstance(value, Strict) else None


def _bare_name(value: Any) -> Any:
    """`- strip_reasoning` (a bare name) means the transform with default options."""
    return {value: {}} if isinstance(value, str) else value


STEP_MODELS = {name: _step_model(name, cls) for name, cls in TRANSFORMS.items()}
Step = Annotated[
    reduce(or_, (Annotated[model, Tag(name)] for name, model in STEP_MODELS.items())),  # type: ignore[valid-type]
    Discriminator(_step_name),
    BeforeValidator(_bare_name),
]


def step_transform(step: Strict) -> Transform:
    """The transform inside a step wrapper."""
    return next(iter(dict(step).values()))


class DataSpec(Strict):
    """A data condition: where rows come from and which transforms make the condition."""

    name: str = ""
    """Condition name; defaults to the spec file's stem."""
    description: str = ""
    """What the condition is for."""
    seed: int = 0
    """Default seed of every seeded source and transform."""
    suffix: str | None = DEFAULT_SUFFIX
    """Instruction appended to the user turn when rendering (token lengths, training)."""
    tokenizer: PathOrName | None = None
    """Tokenizer (name or path) for the card's token lengths; default: the micro tokenizer if shipped."""
    sources: list[Source] = Field(min_length=1)
    """Sources whose rows are concatenated, in order."""
    transforms: list[Step] = Field(default_factory=list)  # type: ignore[valid-type]
    """Transforms applied in order."""


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return "unknown key"
    if kind == "union_tag_invalid":
        return f"unknown transform '{error['ctx']['tag']}'; known: {', '.join(TRANSFORMS)}"
    if kind == "union_tag_not_found":
        return f"a transform is a name or {{name: options}}; known: {', '.join(TRANSFORMS)}"
    return str(error["msg"]).removeprefix("Value error, ")


def load_spec(path: str | Path) -> DataSpec:
    """Read and validate a spec; relative paths in it are resolved against its folder."""
    path = Path(path)
    data, root = read_yaml_mapping(path, "a spec is a YAML mapping (name, sources, transforms, ...)")
    try:
        spec = DataSpec.model_validate(data, context=spec_context(path))
    except ValidationError as exc:
        raise validation_error(str(path), root, exc, _message, SOURCE_TAGS) from exc
    if not spec.name:
        spec.name = path.stem
    return spec


def dump_spec(spec: DataSpec) -> str:
    """The spec as YAML with every default filled in: what was built, loadable by `load_spec`."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data["suffix"] = spec.suffix  # the one field whose None (no suffix) differs from its default
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
