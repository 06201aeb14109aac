"""The YAML data spec: sources, then transforms, validated before anything runs.

Every model forbids unknown keys, and a validation error is reported as `InputError(file, line=,
field=)`: the YAML is composed into nodes (which keep their line numbers) and pydantic's error
location is walked down those nodes.

    name: countdown-corrupted
    seed: 0
    sources:
      - {kind: countdown, n: 2000, style: long-cot}
    transforms:
      - {kind: verify, scorer: countdown}
      - {kind: corrupt, rate: 0.5}

Sources and transforms are told apart by `kind:`; a transform without options may be its bare name
(`- strip_reasoning`). The forms before `kind:` are still read for one release (`rewrite_old_forms`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, get_args

import yaml
from pydantic import BeforeValidator, Field, ValidationError

from sftscope.config import legacy
from sftscope.config.base import KIND, Strict, kind_required
from sftscope.config.legacy import Rewrites
from sftscope.config.paths import PathOrName, spec_context
from sftscope.config.specfile import plain_message, read_spec, validation_error
from sftscope.data.chat import DEFAULT_SUFFIX
from sftscope.data.corrupt import Corrupt
from sftscope.data.decontaminate import Decontaminate
from sftscope.data.sources import Source
from sftscope.data.transforms import Dedupe, Mix, StripReasoning, Subsample, Verify

AnyTransform = Verify | StripReasoning | Corrupt | Subsample | Dedupe | Mix | Decontaminate
TRANSFORMS = [get_args(cls.model_fields[KIND].annotation)[0] for cls in get_args(AnyTransform)]


def _bare_name(value: Any) -> Any:
    """`- strip_reasoning` (a bare name) means the transform with default options."""
    return {KIND: value} if isinstance(value, str) else value


Step = Annotated[AnyTransform, Field(discriminator=KIND), kind_required, BeforeValidator(_bare_name)]


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
    transforms: list[Step] = Field(default_factory=list)
    """Transforms applied in order."""


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "missing":
        return "required key is missing"
    if error["type"] == "extra_forbidden":
        return "unknown key"
    return plain_message(error)


def load_spec(path: str | Path) -> DataSpec:
    """Read and validate a spec; relative paths in it are resolved against its folder."""
    path = Path(path)
    not_mapping = "a spec is a YAML mapping (name, sources, transforms, ...)"
    data, root = read_spec(path, not_mapping, rewrite_old_forms)
    try:
        spec = DataSpec.model_validate(data, context=spec_context(path))
    except ValidationError as exc:
        raise validation_error(str(path), root, exc, _message) from exc
    if not spec.name:
        spec.name = path.stem
    return spec


def rewrite_old_forms(root: yaml.Node, found: Rewrites) -> None:
    """The forms before `kind:` (one release): `{countdown: {...}}` sources, `{verify: {...}}` steps."""
    for source in legacy.items(legacy.get(root, "sources")):
        rewrite_old_source(source, found)
    for step in legacy.items(legacy.get(root, "transforms")):
        _rewrite_old_step(step, found)


def rewrite_old_source(node: yaml.Node, found: Rewrites) -> None:
    """`{file: P}` -> `{kind: file, path: P}`; `{hf|countdown|microworld|mix: {...}}` -> `{kind: K, ...}`."""
    if not isinstance(node, yaml.MappingNode) or legacy.get(node, KIND) is not None:
        return
    if legacy.rename(node, "file", "path"):
        legacy.set_kind(node, "file", node.value[0][0])
        found.note("{file: PATH}", "{kind: file, path: PATH}")
        return
    for kind in ("hf", "countdown", "microworld", "mix"):
        if legacy.lift(node, kind) is not None:
            found.note(f"{{{kind}: {{...}}}}", f"{{kind: {kind}, ...}}")
            for part in legacy.items(legacy.get(node, "parts")):
                rewrite_old_source(legacy.get(part, "source"), found)
            return


def _rewrite_old_step(node: yaml.Node, found: Rewrites) -> None:
    """`{verify: {kind: math}}` -> `{kind: verify, scorer: math}`; `{NAME: {...}}` -> `{kind: NAME, ...}`."""
    if not isinstance(node, yaml.MappingNode) or len(node.value) != 1 or legacy.get(node, KIND) is not None:
        return
    name, options = node.value[0][0].value, node.value[0][1]
    if name == "verify" and isinstance(options, yaml.MappingNode) and legacy.rename(options, KIND, "scorer"):
        found.note("{verify: {kind: SCORER}}", "{kind: verify, scorer: SCORER}")
    else:
        found.note(f"{{{name}: {{...}}}}", f"{{kind: {name}, ...}}")
    legacy.lift(node, name)
    for part in legacy.items(legacy.get(node, "parts")):
        rewrite_old_source(legacy.get(part, "source"), found)
    for source in legacy.items(legacy.get(node, "against")):
        rewrite_old_source(source, found)


def dump_spec(spec: DataSpec) -> str:
    """The spec as YAML with every default filled in: what was built, loadable by `load_spec`."""
    data = spec.model_dump(mode="json", exclude_none=True)
    data["suffix"] = spec.suffix  # the one field whose None (no suffix) differs from its default
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
