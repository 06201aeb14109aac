"""Row adapters: what a `FieldMapping` cannot express, applied to mapped rows of real benchmarks.

- `choices`: lettered options in the question, the gold as a letter (GPQA, MMLU-Pro);
- `livecodebench`: the official prompt, and the encoded test cases as `meta['tests']`, `meta['fn_name']`
  (what the `code` scorer runs);
- `ifeval`: IFEval's parallel `instruction_id_list` / `kwargs` columns as `meta['instructions']`
  (what the `ifeval` scorer checks).
"""

from __future__ import annotations

import base64
import io
import json
import pickle
import random
import zlib
from typing import Annotated, Any, Literal

from pydantic import Field

from sftscope.config.base import KIND, Strict, kind_required
from sftscope.data.records import Example, Message
from sftscope.errors import InputError

LETTERS = "ABCDEFGHIJKLMNOP"


class ChoicesAdapter(Strict):
    """Multiple choice: options listed as (A) ... in the question; the gold becomes a letter."""

    kind: Literal["choices"] = "choices"
    """Selects this adapter."""
    options: str | None = None
    """Mapped meta column holding the option list; the gold column then already holds the letter."""
    incorrect: list[str] = []
    """Mapped meta columns holding the wrong options; the gold column holds the right option's text."""
    shuffle_seed: int = 0
    """Seed of the option order when built from `incorrect` (per row, so stable across runs)."""


class LiveCodeBenchAdapter(Strict):
    """LiveCodeBench code_generation_lite rows: the official prompt, tests decoded into meta['tests']."""

    kind: Literal["livecodebench"] = "livecodebench"
    """Selects this adapter."""


class IFEvalAdapter(Strict):
    """IFEval rows: meta['instructions'] = [{id, **kwargs}] from instruction_id_list and kwargs."""

    kind: Literal["ifeval"] = "ifeval"
    """Selects this adapter."""


Adapter = Annotated[
    ChoicesAdapter | LiveCodeBenchAdapter | IFEvalAdapter, Field(discriminator=KIND), kind_required
]


def adapt(examples: list[Example], adapter: Any, where: str) -> list[Example]:
    """Apply one adapter to every row."""
    if isinstance(adapter, ChoicesAdapter):
        return [_choices(e, adapter, where) for e in examples]
    if isinstance(adapter, LiveCodeBenchAdapter):
        return [_livecodebench(e, where) for e in examples]
    return [_ifeval(e, where) for e in examples]


def _with_question(example: Example, question: str, meta: dict[str, Any], answer: str | None) -> Example:
    prompt = [*example.prompt[:-1], Message(role="user", content=question)]
    return example.model_copy(update={"prompt": prompt, "meta": meta, "answer": answer})


def _choices(example: Example, adapter: ChoicesAdapter, where: str) -> Example:
    meta = dict(example.meta)
    if adapter.options is not None:
        options = meta.pop(adapter.options, None)
        gold = (example.answer or "").strip().upper()
        if not isinstance(options, list) or not options:
            message = f"row {example.id}: options are not a non-empty list"
            raise InputError(where, message, field=adapter.options)
        options, gold = _without_padding(options, gold, example.id, where)
    else:
        wrong = [meta.pop(column, None) for column in adapter.incorrect]
        if any(w is None for w in wrong) or example.answer is None:
            message = f"row {example.id}: an option is missing"
            raise InputError(where, message, field=",".join(adapter.incorrect))
        options = [example.answer, *wrong]
        random.Random(f"{adapter.shuffle_seed}:{example.id}").shuffle(options)
        gold = LETTERS[options.index(example.answer)]
    if len(options) > len(LETTERS) or not _is_letter(gold, len(options)):
        raise InputError(where, f"row {example.id}: gold {gold!r} is not an option letter", field="answer")
    lines = "\n".join(f"({LETTERS[i]}) {str(option).strip()}" for i, option in enumerate(options))
    meta["choices"] = [str(o) for o in options]
    return _with_question(example, f"{example.question.strip()}\n\n{lines}", meta, gold)


def _is_letter(gold: str, n_options: int) -> bool:
    """One of the first `n_options` letters ("" and "AB" are substrings of them, not letters)."""
    return len(gold) == 1 and gold in LETTERS[:n_options]


def _without_padding(options: list[Any], gold: str, row: str, where: str) -> tuple[list[Any], str]:
    """Drop MMLU-Pro's "N/A" filler options (rows with fewer than ten real ones), as its own
    preprocessing does; the gold letter moves with its option."""
    kept = [i for i, option in enumerate(options) if str(option).strip() != "N/A"]
    if len(kept) == len(options) or not _is_letter(gold, len(options)):
        return options, gold  # nothing to drop, or a bad gold the caller reports
    if LETTERS.index(gold) not in kept:
        raise InputError(where, f"row {row}: gold {gold!r} is an 'N/A' filler option", field="answer")
    return [options[i] for i in kept], LETTERS[kept.index(LETTERS.index(gold))]


LCB_INTRO = (
    "You will be given a question (problem specification) and will generate a correct Python program "
    "that matches the specification and passes all tests."
)
LCB_STDIN = (
    "Read the inputs from stdin solve the problem and write the answer to stdout (do not directly test on "
    "the sample inputs). Enclose your code within delimiters as follows. Ensure that when the python "
    "program runs, it reads the inputs, runs the algorithm and writes output to STDOUT.\n"
    "```python\n# YOUR CODE HERE\n```"
)
LCB_STARTER = (
    "You will use the following starter code to write the solution to the problem and enclose your code "
    "within delimiters.\n```python\n{code}\n```"
)


class _NoObjects(pickle.Unpickler):
    """LiveCodeBench pickles plain strings; refusing every class keeps a crafted row from running code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a dataset row")


def _tests(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, list):
        return value
    text = str(value or "[]")
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # private tests are base64(zlib(pickle(json string)))
        return json.loads(_NoObjects(io.BytesIO(zlib.decompress(base64.b64decode(text)))).load())


def _livecodebench(example: Example, where: str) -> Example:
    meta = example.meta
    try:
        tests = _tests(meta.get("public_test_cases")) + _tests(meta.get("private_test_cases"))
        metadata = meta.get("metadata") or {}
        metadata = json.loads(metadata) if isinstance(metadata, str) else metadata
    except (ValueError, zlib.error, pickle.UnpicklingError) as exc:
        message = f"row {example.id}: cannot decode test cases: {exc}"
        raise InputError(where, message, field="private_test_cases") from exc
    starter = str(meta.get("starter_code") or "")
    instruction = LCB_STARTER.format(code=starter) if starter.strip() else LCB_STDIN
    question = f"{LCB_INTRO}\n\nQuestion: {example.question.strip()}\n\n{instruction}"
    kept = {k: v for k, v in meta.items() if k not in ("public_test_cases", "private_test_cases", "metadata")}
    kept.update(tests=tests, fn_name=metadata.get("func_name"), starter_code=starter)
    return _with_question(example, question, kept, example.answer)


def _ifeval(example: Example, where: str) -> Example:
    meta = dict(example.meta)
    ids, kwargs = meta.pop("instruction_id_list", None), meta.pop("kwargs", None)
    if not isinstance(ids, list) or not isinstance(kwargs, list) or len(ids) != len(kwargs) or not ids:
        message = f"row {example.id}: instruction_id_list and kwargs must be non-empty lists of one length"
        raise InputError(where, message, field="instruction_id_list")
    # HF rows carry every keyword of every instruction, mostly null; keep the ones set.
    pairs = zip(ids, kwargs, strict=True)
    meta["instructions"] = [
        {"id": i, **{k: v for k, v in (kw or {}).items() if v is not None}} for i, kw in pairs
    ]
    return example.model_copy(update={"meta": meta})
