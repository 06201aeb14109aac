"""The checkpoint sweep: every target x every task, computing only the rows the store lacks.

Per target, the missing (prompt, sample) pairs of all tasks are collected first; a target with
nothing missing (its weights were evaluated before, under any run name) is never even loaded.
Tasks with the same sampling settings are generated together, so the decoder's batch stays full
across task boundaries. Finished generations are scored and committed every `commit_every` rows,
so a killed sweep loses at most the rows in flight; a re-run picks up exactly where it stopped.

Scoring follows the reference: everything up to the last </think> is stripped first; a response
whose think block never closed is `truncated` (score 0, counted apart) and never reaches the scorer.
Nor does an output cut at the token limit when the scorer reads a final answer (`Scorer.reads_answer`):
a cut trace has no answer, only numbers from the middle of its work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sftscope.data.records import Example, Message, split_response
from sftscope.evaluate.backends.base import Backend, Generation, sample_seed
from sftscope.evaluate.backends.stops import THINK_OPEN, opens_think
from sftscope.evaluate.sources import load_examples
from sftscope.evaluate.spec import TaskSpec
from sftscope.evaluate.store import ResultsStore, TaskEntry
from sftscope.evaluate.targets import Target
from sftscope.progress import progress_bar

# Scorer outcome -> store status ('truncated' is decided before scoring).
STATUS = {
    "correct": "ok",
    "wrong": "wrong",
    "unparsable": "unparsable",
    "timeout": "timeout",
    "error": "error",
}
RETRIED = ("error", "timeout")


@dataclass
class Task:
    """A task spec with its prompts loaded (once per sweep)."""

    spec: TaskSpec
    examples: list[Example]

    @classmethod
    def load(cls, spec: TaskSpec) -> Task:
        return cls(spec, load_examples(spec.source, spec.scorer.kind))


@dataclass(frozen=True)
class _Item:
    task: Task
    example: Example
    sample_idx: int


@dataclass
class SweepStats:
    """What a sweep did."""

    computed: int = 0
    """Rows generated, scored and committed."""
    reused: int = 0
    """Rows found in the store (same weights, task spec, seed)."""
    loaded: int = 0
    """Models loaded (targets with missing rows)."""
    output_tokens: int = 0
    """Tokens generated."""
    generate_s: float = 0.0
    """Wall time spent generating and scoring (model loading excluded)."""
    statuses: dict[str, int] = field(default_factory=dict)
    """Committed rows per status."""


def prompt_messages(spec: TaskSpec, example: Example) -> list[Message]:
    """The row's turns, after the task's system message if it has one."""
    system = [Message(role="system", content=spec.prompt.system)] if spec.prompt.system else []
    return system + list(example.prompt)


def _missing(store: ResultsStore, target: Target, task: Task, retry_errors: bool) -> list[_Item]:
    spec = task.spec
    wanted = [(e.id, i) for e in task.examples for i in range(spec.sampling.n)]
    ignore = RETRIED if retry_errors else ()
    keys = set(
        store.missing(
            target.model_hash, spec.name, spec.spec_hash, spec.sampling.seed, wanted, ignore_status=ignore
        )
    )
    return [_Item(task, e, i) for e in task.examples for i in range(spec.sampling.n) if (e.id, i) in keys]


def score_rows(
    items: list[tuple[_Item, str, Generation]], target: Target, backend: Backend
) -> list[dict[str, Any]]:
    """Store rows of one task's finished generations: split off the reasoning, score the final part."""
    from sftscope.scoring.registry import ScoreItem, ScoreResult, get_scorer, score_batch

    spec = items[0][0].task.spec
    reads_answer = get_scorer(spec.scorer.kind).reads_answer
    rows, to_score = [], []
    for item, prompt, generation in items:
        # A prompt that opened <think> (templates that pre-fill it) leaves the tag out of the output.
        text = THINK_OPEN + generation.text if opens_think(prompt) else generation.text
        split = split_response(text)
        row = {
            "model_hash": target.model_hash,
            "task": spec.name,
            "sampling_hash": spec.spec_hash,
            "seed": spec.sampling.seed,
            "prompt_id": item.example.id,
            "sample_idx": item.sample_idx,
            "output": generation.text,
            "extracted": None,
            "score": 0.0,
            "status": "truncated",
            "error": None,
            "prompt_tokens": generation.prompt_tokens,
            "output_tokens": generation.output_tokens,
            "finish_reason": generation.finish_reason,
            "backend": backend.name,
            "batch_size": backend.batch_size,
        }
        rows.append(row)
        if split.closed and not (reads_answer and generation.finish_reason == "length"):
            meta = {"prompt": item.example.question, **item.example.meta}  # the judge reads the instruction
            to_score.append((row, ScoreItem(split.final, item.example.answer, meta)))
    if to_score:
        s = spec.scorer
        batch = [x for _, x in to_score]
        try:
            results = score_batch(s.kind, batch, timeout_s=s.timeout_s, workers=s.workers, params=s.params)
        except Exception as exc:  # the scorer could not run at all (e.g. no worker started): error rows,
            # kept like any other and re-run with --retry-errors, rather than a dead sweep
            results = [ScoreResult("error", 0.0, None, f"{type(exc).__name__}: {exc}")] * len(batch)
        for (row, _), result in zip(to_score, results, strict=True):
            row.update(
                extracted=result.extracted,
                score=result.score,
                status=STATUS[result.outcome],
                error=result.error,
            )
    return rows


def run_sweep(
    targets: list[Target],
    tasks: list[Task],
    store: ResultsStore,
    backend: Backend,
    *,
    retry_errors: bool = False,
    commit_every: int | None = None,
    show_progress: bool = True,
    log: Callable[[str], None] = lambda message: None,
) -> SweepStats:
    """Evaluate every target on every task, adding the missing rows to the store."""
    stats = SweepStats()
    store.register_tasks(
        [
            TaskEntry(
                t.spec.name, t.spec.domain, t.spec.scorer.kind, t.spec.spec_hash, t.spec.higher_is_better
            )
            for t in tasks
        ]
    )
    commit_every = commit_every or backend.batch_size
    for target in targets:
        store.register_model(
            target.run, target.step, target.model_hash, target.path, target.epoch, target.tokens_seen
        )
        work = {task.spec.name: _missing(store, target, task, retry_errors) for task in tasks}
        todo = sum(len(items) for items in work.values())
        stats.reused += sum(len(t.examples) * t.spec.sampling.n for t in tasks) - todo
        if todo == 0:
            log(f"{target.run} step {target.step}: all rows stored already ({target.model_hash[:12]})")
            continue
        backend.load(target.model_dir())
        stats.loaded += 1
        started = time.perf_counter()
        with progress_bar(f"{target.run} step {target.step}", todo, disable=not show_progress) as bar:
            for group in _by_sampling(tasks, work):
                _generate_group(
                    group,
                    target,
                    store,
                    backend,
                    stats,
                    commit_every,
                    retry_errors,
                    lambda n: bar.advance(0, n),
                )
        stats.generate_s += time.perf_counter() - started
    return stats


def _by_sampling(tasks: list[Task], work: dict[str, list[_Item]]) -> list[list[_Item]]:
    groups: dict[str, list[_Item]] = {}
    for task in tasks:
        key = json.dumps(task.spec.sampling.model_dump(exclude={"n", "seed"}), sort_keys=True)
        groups.setdefault(key, []).extend(work[task.spec.name])
    return [items for items in groups.values() if items]


def _generate_group(
    items: list[_Item],
    target: Target,
    store: ResultsStore,
    backend: Backend,
    stats: SweepStats,
    commit_every: int,
    replace: bool,
    advance: Callable[[int], None],
) -> None:
    prompts = {}
    for item in items:  # one render per prompt, not per sample
        key = (item.task.spec.name, item.example.id)
        if key not in prompts:
            spec = item.task.spec
            prompts[key] = backend.render(prompt_messages(spec, item.example), spec.prompt.suffix)
    texts = [prompts[(i.task.spec.name, i.example.id)] for i in items]
    seeds = [sample_seed(i.task.spec.sampling.seed, i.example.id, i.sample_idx) for i in items]
    buffer: list[tuple[_Item, str, Generation]] = []

    def commit() -> None:
        by_task: dict[str, list[tuple[_Item, str, Generation]]] = {}
        for entry in buffer:
            by_task.setdefault(entry[0].task.spec.name, []).append(entry)
        # Scored task by task (one scorer call each), stored in one transaction: a DuckDB insert has
        # a fixed cost that, per task, was a sixth of a short checkpoint's sweep.
        rows = [row for entries in by_task.values() for row in score_rows(entries, target, backend)]
        store.add_samples(rows, replace=replace)
        stats.computed += len(rows)
        stats.output_tokens += sum(r["output_tokens"] or 0 for r in rows)
        for row in rows:
            stats.statuses[row["status"]] = stats.statuses.get(row["status"], 0) + 1
        advance(len(buffer))
        buffer.clear()

    def done(index: int, generation: Generation) -> None:
        buffer.append((items[index], texts[index], generation))
        if len(buffer) >= commit_every:
            commit()

    # All tasks of a group share the sampling settings; any item's spec carries them.
    backend.generate(texts, items[0].task.spec.sampling, seeds=seeds, on_done=done)
    if buffer:
        commit()
