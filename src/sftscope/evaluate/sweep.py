"""The checkpoint sweep: every target x every task, computing only the rows the store lacks.

Per target, the missing (prompt, sample) pairs of all tasks are collected first; a target with
nothing missing (its weights were evaluated before, under any run name) is never even loaded.
Tasks with the same sampling settings are generated together, so the decoder's batch stays full
across task boundaries. Finished generations are scored and committed every `commit_every` rows.
Scoring that waits on other processes (math-verify workers, a code sandbox, a judge endpoint) runs
on one background thread while the next rows generate, one batch at a time and in order; cheap
inline checks run in turn. A killed sweep loses at most the batch being scored and the rows
generated since; a re-run picks up exactly where it stopped.

Rows are never lost to bad text or bad prompts: text the store cannot hold (lone surrogates) is
repaired and the row's `error` says so; a prompt that leaves the model's context too little room
for `max_new_tokens` is not generated but stored as an `error` row saying why.

Scoring follows the reference: everything up to the last </think> is stripped first; a response
whose think block never closed is `truncated` (score 0, counted apart) and never reaches the scorer.
Nor does an output cut at the token limit when the scorer reads a final answer (`Scorer.reads_answer`):
a cut trace has no answer, only numbers from the middle of its work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from sftscope.data.records import Example, Message, split_response
from sftscope.evaluate.backends.base import Backend, Generation, sample_seed
from sftscope.evaluate.backends.stops import THINK_OPEN, opens_think
from sftscope.evaluate.sources import load_examples
from sftscope.evaluate.spec import TaskSpec
from sftscope.evaluate.store import ResultsStore, TaskEntry, replacement_note, storable
from sftscope.evaluate.targets import Target
from sftscope.progress import progress_bar
from sftscope.scoring.registry import ScoreItem, ScoreResult, get_scorer, score_batch

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

    spec = items[0][0].task.spec
    scorer = get_scorer(spec.scorer.kind)
    unstripped = scorer.unstripped is not None and scorer.unstripped(spec.scorer.params)
    rows, to_score = [], []
    for item, prompt, generation in items:
        # Repaired before scoring, so the scorer judges the text the store keeps.
        output, replaced = storable(generation.text)
        # A prompt that opened <think> (templates that pre-fill it) leaves the tag out of the output.
        text = THINK_OPEN + output if opens_think(prompt) else output
        split = split_response(text)
        row = _row(item, target, backend, output=output, status="truncated")
        row.update(
            prompt_tokens=generation.prompt_tokens,
            output_tokens=generation.output_tokens,
            finish_reason=generation.finish_reason,
        )
        if replaced:
            row["error"] = replacement_note("output", replaced)
        rows.append(row)
        if split.closed and not (scorer.reads_answer and generation.finish_reason == "length"):
            meta = {"prompt": item.example.question, **item.example.meta}  # the judge reads the instruction
            final = split.raw_final if unstripped else split.final
            to_score.append((row, ScoreItem(final, item.example.answer, meta)))
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
                error="; ".join(filter(None, [result.error, row["error"]])) or None,
            )
    return rows


def _row(item: _Item, target: Target, backend: Backend, *, output: str, status: str) -> dict[str, Any]:
    """A store row of one sample, before generation facts and scoring fill it in."""
    spec = item.task.spec
    return {
        "model_hash": target.model_hash,
        "task": spec.name,
        "sampling_hash": spec.spec_hash,
        "seed": spec.sampling.seed,
        "prompt_id": item.example.id,
        "sample_idx": item.sample_idx,
        "output": output,
        "extracted": None,
        "score": 0.0,
        "status": status,
        "error": None,
        "prompt_tokens": None,
        "output_tokens": None,
        "finish_reason": None,
        "backend": backend.name,
        "batch_size": backend.batch_size,
    }


def too_long_rows(
    items: list[_Item], texts: list[str], target: Target, backend: Backend
) -> tuple[list[dict[str, Any]], list[int]]:
    """Error rows for the items whose prompt leaves the model's context less than `max_new_tokens`
    (generating them would run past the positions the model knows), and the indices of the rest."""
    unique = list(dict.fromkeys(texts))
    measured = backend.prompt_lengths(unique)
    if measured is None:
        return [], list(range(len(items)))
    length = dict(zip(unique, measured.tokens, strict=True))
    rows, fit = [], []
    for index, (item, text) in enumerate(zip(items, texts, strict=True)):
        room = measured.context - item.task.spec.sampling.max_new_tokens
        if length[text] <= room:
            fit.append(index)
            continue
        row = _row(item, target, backend, output="", status="error")
        row.update(
            prompt_tokens=length[text],
            output_tokens=0,
            error=f"not generated: the prompt is {length[text]} tokens, and the model's context of "
            f"{measured.context} positions less max_new_tokens={item.task.spec.sampling.max_new_tokens} "
            f"leaves {max(room, 0)} for it",
        )
        rows.append(row)
    return rows, fit


class _Committer:
    """Scores and stores finished generations on one background thread while the caller generates.

    One batch at a time: `submit` first waits for the previous batch, which keeps the rows in order,
    bounds the rows in memory, and raises the previous batch's error (a full disk) in the caller.
    Only this thread touches the store while a group generates; `wait` hands it back.

    Only batches whose scoring waits on something else (scoring worker processes, a sandbox, a judge
    endpoint) go to the thread. Inline checks (`workers: 0`) are cheap by definition and hold the GIL
    while they run, so on the thread they would only slow the decode loop (benchmarks/RESULTS.md,
    eval_throughput: the overlapped row).
    """

    def __init__(self, store: ResultsStore, backend: Backend, stats: SweepStats, replace: bool) -> None:
        self.store, self.backend, self.stats, self.replace = store, backend, stats, replace
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sftscope-score")
        self._pending: Future[None] | None = None

    def submit(
        self,
        target: Target,
        entries: list[tuple[_Item, str, Generation]],
        ready: list[dict[str, Any]],
        advance: Callable[[int], None],
    ) -> None:
        """Score `entries` and store them with the `ready` rows (already final) as one transaction."""
        self.wait()
        if any(_scored_elsewhere(entry[0].task.spec) for entry in entries):
            self._pending = self._thread.submit(self._commit, target, entries, ready, advance)
        else:
            self._commit(target, entries, ready, advance)

    def wait(self) -> None:
        """Block until the batch in flight is stored; raise its error if it failed."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self, *, failed: bool) -> None:
        """Store the batch in flight (its rows are done) and stop the thread. After a failure elsewhere,
        the batch's own error is not raised: the caller's is the one to report."""
        try:
            self.wait()
        except Exception:
            if not failed:
                raise
        finally:
            self._thread.shutdown()

    def _commit(
        self,
        target: Target,
        entries: list[tuple[_Item, str, Generation]],
        ready: list[dict[str, Any]],
        advance: Callable[[int], None],
    ) -> None:
        by_task: dict[str, list[tuple[_Item, str, Generation]]] = {}
        for entry in entries:
            by_task.setdefault(entry[0].task.spec.name, []).append(entry)
        # Scored task by task (one scorer call each), stored in one transaction: a DuckDB insert has
        # a fixed cost that, per task, was a sixth of a short checkpoint's sweep.
        scored = [row for group in by_task.values() for row in score_rows(group, target, self.backend)]
        rows = ready + scored
        self.store.add_samples(rows, replace=self.replace)
        self.stats.computed += len(rows)
        self.stats.output_tokens += sum(r["output_tokens"] or 0 for r in rows)
        for row in rows:
            self.stats.statuses[row["status"]] = self.stats.statuses.get(row["status"], 0) + 1
        advance(len(rows))


def _scored_elsewhere(spec: TaskSpec) -> bool:
    """Whether the task's scoring waits on other processes (a pool, a sandbox, an endpoint)."""
    from sftscope.scoring.registry import get_scorer  # deferred: it imports math-verify and sympy

    return spec.scorer.workers > 0 or get_scorer(spec.scorer.kind).self_timed


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
    committer = _Committer(store, backend, stats, retry_errors)
    failed = True
    try:
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
                        group, target, backend, committer, commit_every, lambda n: bar.advance(0, n)
                    )
                committer.wait()  # the store is the caller's again (the next target reads it)
            stats.generate_s += time.perf_counter() - started
        failed = False
    finally:
        committer.close(failed=failed)
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
    backend: Backend,
    committer: _Committer,
    commit_every: int,
    advance: Callable[[int], None],
) -> None:
    prompts = {}
    for item in items:  # one render per prompt, not per sample
        key = (item.task.spec.name, item.example.id)
        if key not in prompts:
            spec = item.task.spec
            prompts[key] = backend.render(prompt_messages(spec, item.example), spec.prompt.suffix)
    texts = [prompts[(i.task.spec.name, i.example.id)] for i in items]
    refused, fit = too_long_rows(items, texts, target, backend)
    items, texts = [items[i] for i in fit], [texts[i] for i in fit]
    seeds = [sample_seed(i.task.spec.sampling.seed, i.example.id, i.sample_idx) for i in items]
    buffer: list[tuple[_Item, str, Generation]] = []

    def commit() -> None:
        committer.submit(target, list(buffer), refused[:], advance)
        buffer.clear()
        refused.clear()  # stored with the first commit

    def done(index: int, generation: Generation) -> None:
        buffer.append((items[index], texts[index], generation))
        if len(buffer) >= commit_every:
            commit()

    if items:
        # All tasks of a group share the sampling settings; any item's spec carries them.
        backend.generate(texts, items[0].task.spec.sampling, seeds=seeds, on_done=done)
    if buffer or refused:
        commit()
