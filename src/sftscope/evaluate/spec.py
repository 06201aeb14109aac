"""Task specs and suites: evaluation tasks are data (YAML), checked strictly.

A task names its source, prompt, sampling, scorer, metrics and domain tag; a suite is a named list of
tasks. Built-ins live in `evaluate/tasks/` (tasks) and `evaluate/tasks/suites/` (suites) and load by
name. Every model forbids unknown keys, and a validation error becomes `InputError(file, line=, field=)`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BeforeValidator, Field, ValidationError, create_model, field_validator, model_validator
from pydantic_core import InitErrorDetails, PydanticCustomError

from sftscope.config import legacy
from sftscope.config.base import KIND, Strict, kind_required
from sftscope.config.legacy import Rewrites
from sftscope.config.overrides import merge, parse_overrides, scoped_to
from sftscope.config.paths import resolve, spec_context
from sftscope.config.specfile import drop_replaced, locate, plain_message, read_spec, validation_error
from sftscope.data.chat import DEFAULT_SUFFIX
from sftscope.errors import InputError, SftscopeError
from sftscope.evaluate.sources import Source
from sftscope.hashing import json_sha256
from sftscope.scoring.registry import SCORERS, ScorerParamError, check_params, get_scorer

TASKS_DIR = Path(__file__).parent / "tasks"
SUITES_DIR = TASKS_DIR / "suites"
Domain = Literal["in-domain", "cross-domain", "safety", "general"]
METRIC = re.compile(r"^(avg|pass|maj)@([1-9][0-9]*)$")
# Scorer params that say where a scorer is reached, not how it judges: moving the judge to another
# host must not invalidate stored samples.
TRANSPORT_PARAMS = ("base_url", "api_key_env")


class PromptSpec(Strict):
    """How a source row becomes the model's prompt."""

    system: str | None = None
    """System message placed before the row's turns; none when unset (the reference uses none)."""
    suffix: str | None = DEFAULT_SUFFIX
    """Instruction appended to the last user turn; null for none (e.g. IFEval)."""


class SamplingSpec(Strict):
    """Generation settings shared by every backend."""

    temperature: float = Field(default=0.0, ge=0.0)
    """0 is greedy decoding."""
    top_p: float = Field(default=1.0, gt=0.0, le=1.0)
    """Nucleus sampling mass (ignored when greedy)."""
    max_new_tokens: int = Field(default=256, ge=1)
    """Generation length limit; a think block still open at the limit is scored as truncated."""
    n: int = Field(default=1, ge=1)
    """Samples per prompt (the k of avg@k)."""
    seed: int = 0
    """Sampling seed; sample i of a prompt draws from its own generator, seeded by (seed, prompt, i)."""
    stop: list[str] = []
    """Stop strings; they end a generation only outside a <think> block (lm-eval PR #3700)."""

    @model_validator(mode="after")
    def _greedy_single(self) -> SamplingSpec:
        if self.temperature == 0 and self.n > 1:
            raise ValueError("greedy decoding (temperature 0) gives n identical samples: set n: 1")
        return self


class ScorerSpec(Strict):
    """A scorer of `sftscope.scoring` and its settings."""

    kind: str
    """Registered scorer (math, countdown, choice, exact, reasoning_gym, refusal, ifeval, code, judge)."""
    params: dict[str, Any] = {}
    """Scorer parameters, checked by the scorer (e.g. refusal: {expect: refuse})."""
    timeout_s: float = Field(default=10.0, gt=0)
    """Per-item limit of one check; an overrun is a `timeout` row."""
    workers: int = Field(default=2, ge=0)
    """Scoring processes (0 runs checks inline, without a time limit)."""

    @model_validator(mode="after")
    def _known_params(self) -> ScorerSpec:
        try:
            check_params(get_scorer(self.kind), self.params)
        except ScorerParamError as exc:  # located at the param itself
            error = PydanticCustomError("scorer_param", "{message}", {"message": str(exc)})
            value = self.params.get(exc.param)
            details = InitErrorDetails(type=error, loc=("params", exc.param), input=value)
            raise ValidationError.from_exception_data(type(self).__name__, [details]) from None
        except SftscopeError as exc:
            raise ValueError(str(exc)) from exc
        return self


def _scorer_spec(name: str) -> type[ScorerSpec]:
    """The spec of one registered scorer: `kind` narrowed to its name."""
    return create_model(f"ScorerSpec_{name}", __base__=ScorerSpec, kind=(Literal[name], ...))  # type: ignore[call-overload]


def _bare_kind(value: Any) -> Any:
    """`scorer: math` is shorthand for `scorer: {kind: math}`."""
    return {KIND: value} if isinstance(value, str) else value


Scorer = Annotated[
    Union[tuple(_scorer_spec(name) for name in SCORERS)],  # type: ignore[misc]  # noqa: UP007
    Field(discriminator=KIND),
    kind_required,
    BeforeValidator(_bare_kind),
]


class TaskSpec(Strict):
    """One evaluation task."""

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """Task name as stored in the results store."""
    domain: Domain
    """in-domain, cross-domain, safety or general."""
    description: str = ""
    """What the task measures."""
    source: Source
    """Where the prompts come from: kind microworld, reasoning_gym, file or hf."""
    prompt: PromptSpec = PromptSpec()
    """System message and instruction suffix."""
    sampling: SamplingSpec = SamplingSpec()
    """Generation settings."""
    scorer: Scorer
    """How a response is graded; a bare kind is shorthand for {kind: KIND}."""
    metrics: list[str] = []
    """avg@k, pass@k (unbiased) and maj@k with k <= sampling.n; default: avg@n."""
    higher_is_better: bool = True
    """Direction of the score (scores are 1.0 for the desired behaviour, so nearly always true)."""

    @model_validator(mode="after")
    def _metrics(self) -> TaskSpec:
        if not self.metrics:
            self.metrics = [f"avg@{self.sampling.n}"]
        for metric in self.metrics:
            match = METRIC.match(metric)
            if match is None:
                raise ValueError(f"metric '{metric}' is not avg@k, pass@k or maj@k")
            if int(match.group(2)) > self.sampling.n:
                raise ValueError(f"metric '{metric}' needs k <= sampling.n ({self.sampling.n})")
        return self

    @property
    def spec_hash(self) -> str:
        """Hash of what decides a row's content besides model and prompt: template, sampling, scorer.

        The sample count, the seed (a key column of its own) and the source (prompt ids are content
        hashes) are left out, so adding samples or prompts reuses every row already computed.
        """
        sampling = self.sampling.model_dump(exclude={"n", "seed"})
        params = {k: v for k, v in self.scorer.params.items() if k not in TRANSPORT_PARAMS}
        scorer = {"name": self.scorer.kind, "params": params}  # "name": the key of every stored hash
        payload = {"prompt": self.prompt.model_dump(), "sampling": sampling, "scorer": scorer}
        return json_sha256(payload)[:16]


class SuiteEntry(Strict):
    """A task of a suite, with overrides of its spec."""

    task: str
    """A built-in task name or a task YAML path (relative to the suite file)."""
    overrides: list[str] = []
    """key=value changes to the task spec, e.g. source.n=8."""


class SuiteSpec(Strict):
    """A named list of tasks."""

    name: str
    """Suite name (`sftscope eval --suite NAME`)."""
    description: str = ""
    """What the suite is for."""
    overrides: list[str] = []
    """key=value changes applied to every task before its own."""
    tasks: list[SuiteEntry] = Field(min_length=1)
    """The tasks; a bare string is shorthand for {task: NAME}."""

    @field_validator("tasks", mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return [{"task": v} if isinstance(v, str) else v for v in value] if isinstance(value, list) else value


# -- reading YAML with located errors ----------------------------------------------------------------


def _message(error: dict[str, Any]) -> str:
    return "required field is missing" if error["type"] == "missing" else plain_message(error)


def _validate(
    model: type[Strict], data: dict[str, Any], path: Path, root: yaml.Node, overridden: bool = False
) -> Any:
    try:
        return model.model_validate(data, context=spec_context(path))
    except ValidationError as exc:
        source = f"{path} + overrides" if overridden else str(path)  # a suite's or --set
        raise validation_error(source, root, exc, _message, values=data) from exc


def _builtin(name: str, folder: Path, kind: str) -> Path:
    candidate = Path(name)
    if candidate.suffix in (".yaml", ".yml") or candidate.is_file():
        return candidate
    path = folder / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in folder.glob("*.yaml")))
        raise InputError(name, f"no built-in {kind} '{name}' and no such file; built-in {kind}s: {known}")
    return path


def load_task(name_or_path: str | Path, overrides: list[str] | None = None) -> TaskSpec:
    """A built-in task by name, or a task YAML file, with overrides applied before validation.

    Overrides are `key=value` (every task) or `TASK:key=value` (only the task named TASK); a relative
    path in them is relative to the working directory (they are the command line's).
    """
    return _load_task(name_or_path, [(overrides or [], Path.cwd())])


def _load_task(name_or_path: str | Path, layers: list[tuple[list[str], Path]]) -> TaskSpec:
    """A task with layers of overrides, each with the folder its relative paths are relative to."""
    path = _builtin(str(name_or_path), TASKS_DIR, "task")
    data, root = read_spec(path, rewrite=rewrite_old_forms)
    overridden = False
    for overrides, base_dir in layers:
        mine = scoped_to(overrides, data.get("name"))
        if not mine:
            continue
        if isinstance(data.get("scorer"), str):  # expand the shorthand, so scorer.params=... can merge in
            data["scorer"] = {KIND: data["scorer"]}
        replaced = parse_overrides(mine, source=str(path), base_dir=base_dir)
        data = merge(data, replaced)
        drop_replaced(root, replaced)
        overridden = True
    return _validate(TaskSpec, data, path, root, overridden=overridden)


def load_suite(
    name_or_path: str | Path, overrides: list[str] | None = None
) -> tuple[SuiteSpec, list[TaskSpec]]:
    """A suite (built-in name or YAML file) and its tasks, each with the suite's and its own overrides."""
    path = _builtin(str(name_or_path), SUITES_DIR, "suite")
    data, root = read_spec(path)
    suite: SuiteSpec = _validate(SuiteSpec, data, path, root)
    tasks = []
    for i, entry in enumerate(suite.tasks):
        ref = entry.task
        if ref.endswith((".yaml", ".yml")) and not Path(ref).is_absolute():
            ref = str(path.parent / ref)
        try:
            layers = [([*suite.overrides, *entry.overrides], path.parent), (overrides or [], Path.cwd())]
            tasks.append(_load_task(ref, layers))
        except InputError as exc:
            if exc.file != ref or Path(ref).is_file():  # an error in the task's own file names that file
                raise
            # The task does not exist: point at the suite line that names it.
            line, field = locate(root, ("tasks", i))
            raise InputError(str(path), exc.reason, line=line, field=field) from exc
    names = [t.name for t in tasks]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise InputError(str(path), f"tasks named more than once: {duplicates}", field="tasks")
    return suite, tasks


def rewrite_old_forms(root: yaml.Node, found: Rewrites) -> None:
    """The task forms before `kind:` (one release): `source: {generator: G}`, `{file: P}` and
    `{hf: {...}}` sources, `adapter: {name: A}`, `scorer: {name: S}`. Old relative paths keep their
    meaning (relative to the working directory)."""
    source = legacy.get(root, "source")
    if isinstance(source, yaml.MappingNode) and legacy.get(source, KIND) is None:
        _rewrite_old_source(source, found)
    adapter = legacy.get(source, "adapter") if source is not None else None
    if isinstance(adapter, yaml.MappingNode) and legacy.rename(adapter, "name", KIND):
        found.note("adapter: {name: A}", "adapter: {kind: A}")
    scorer = legacy.get(root, "scorer")
    if isinstance(scorer, yaml.MappingNode) and legacy.rename(scorer, "name", KIND):
        found.note("scorer: {name: S}", "scorer: {kind: S}")


def _rewrite_old_source(source: yaml.MappingNode, found: Rewrites) -> None:
    if legacy.rename(source, "generator", KIND):
        found.note("source: {generator: G}", "source: {kind: G}")
        domain = legacy.pop(source, "domain")
        if domain is not None:  # one domain -> the list data specs write too
            key, value = domain
            source.value.append(
                (
                    legacy.scalar("domains", key),
                    yaml.SequenceNode(
                        "tag:yaml.org,2002:seq", [value], value.start_mark, value.end_mark, flow_style=True
                    ),
                )
            )
            found.note("domain: D", "domains: [D]")
    elif legacy.rename(source, "file", "path"):
        legacy.set_kind(source, "file", source.value[0][0])
        found.note("source: {file: P}", "source: {kind: file, path: P} (P relative to the task file)")
        _from_working_dir(source, only_if_exists=False)
    elif legacy.lift(source, "hf") is not None:
        found.note("source: {hf: {...}}", "source: {kind: hf, ...} (a local path relative to the task file)")
        _from_working_dir(source, only_if_exists=True)


def _from_working_dir(source: yaml.MappingNode, *, only_if_exists: bool) -> None:
    """An old source's relative path was relative to the working directory: keep it so."""
    path = legacy.get(source, "path")
    if isinstance(path, yaml.ScalarNode) and path.tag.endswith(":str"):
        path.value = resolve(path.value, Path.cwd(), only_if_exists=only_if_exists)


def builtin_names() -> dict[str, list[str]]:
    """Built-in task and suite names, for help texts and errors."""
    return {
        "tasks": sorted(p.stem for p in TASKS_DIR.glob("*.yaml")),
        "suites": sorted(p.stem for p in SUITES_DIR.glob("*.yaml")),
    }
