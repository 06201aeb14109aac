"""The sweep: a tiny fake run end to end, content-hash reuse, truncation and error rows, resume after
SIGKILL with no duplicated or lost rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from sftscope.data.io import write_records
from sftscope.data.records import Message, user_example
from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.backends.base import Generation, PromptLengths
from sftscope.evaluate.spec import load_task
from sftscope.evaluate.store import KEY, ResultsStore
from sftscope.evaluate.sweep import Task, run_sweep
from sftscope.evaluate.targets import Target, resolve_targets

FIXTURES = Path(__file__).parents[1] / "fixtures" / "eval"
sys.path.insert(0, str(FIXTURES))
from fake_run import make_run  # noqa: E402

SMALL = ["source.n=6", "sampling.max_new_tokens=12"]


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tiny_model_dir, tmp_path_factory.mktemp("runs"))


def _tasks(*names: str, extra: tuple[str, ...] = ()) -> list[Task]:
    return [Task.load(load_task(name, [*SMALL, *extra])) for name in names]


def test_sweep_over_a_tiny_run_then_nothing_left_to_do(run_dir: Path, tmp_path: Path) -> None:
    targets = resolve_targets(run_dir)
    assert [(t.run, t.step) for t in targets] == [("run-a", 0), ("run-a", 10), ("run-a", 20)]
    tasks = _tasks("countdown", "safety_benign")
    backend = make_backend("transformers", batch_size=4)
    with ResultsStore(tmp_path / "results.duckdb") as store:
        stats = run_sweep(targets, tasks, store, backend, commit_every=5, show_progress=False)
        assert (stats.computed, stats.loaded, stats.reused) == (36, 3, 0)
        table = store.samples()
        assert table.num_rows == 36 and set(table["step"].to_pylist()) == {0, 10, 20}
        assert set(table["backend"].to_pylist()) == {"transformers"} and set(
            table["batch_size"].to_pylist()
        ) == {4}
        assert set(table["finish_reason"].to_pylist()) <= {"stop", "length"}
        again = run_sweep(targets, tasks, store, backend, show_progress=False)
        assert (again.computed, again.loaded, again.reused) == (0, 0, 36)  # nothing is loaded, let alone run
        # Another run on the same base: its step 0 is the stored base, never evaluated twice.
        twin = [Target("run-b", 0, targets[0].path, targets[0].model_hash)]
        assert run_sweep(twin, tasks, store, backend, show_progress=False).computed == 0
        assert store.samples(run="run-b").num_rows == 12


def test_targets_select_steps_and_reject_missing_weights(run_dir: Path, tmp_path: Path) -> None:
    from sftscope.errors import InputError

    assert [t.step for t in resolve_targets(run_dir, steps=[20])] == [0, 20]
    assert [t.step for t in resolve_targets(run_dir, every=20)] == [0, 20]
    with pytest.raises(InputError, match=r"no checkpoint at steps \[15\]"):
        resolve_targets(run_dir, steps=[15])
    for target in (run_dir, "micro-weak"):  # 0 is falsy: a model must not take it as "no --every"
        with pytest.raises(InputError, match="--every must be at least 1, got 0"):
            resolve_targets(target, every=0)
    with pytest.raises(InputError, match="select checkpoints of a run directory"):
        resolve_targets("micro-weak", every=5)
    (shipped,) = resolve_targets("micro-weak")  # a shipped base by name: run = its name, step 0
    manifest_hash = json.loads((Path(shipped.path) / "manifest.json").read_text())["content_hash"]
    assert (shipped.run, shipped.step, shipped.model_hash) == ("micro-weak", 0, manifest_hash)
    model = resolve_targets(Path(resolve_targets(run_dir)[1].path))
    assert [(t.run, t.step) for t in model] == [("step-000010", 0)]
    broken = tmp_path / "run"
    (broken / "checkpoints" / "step-000010").mkdir(parents=True)
    manifest = json.loads((run_dir / "manifest.json").read_text())
    manifest["checkpoints"] = [{**manifest["checkpoints"][0], "path": "checkpoints/step-000010"}]
    (broken / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(InputError, match="no model weights found"):
        resolve_targets(broken)


class Scripted:
    """A backend that answers each prompt with a fixed text: for testing what happens after generation."""

    name = "scripted"
    batch_size = 2

    def __init__(
        self,
        answers: dict[str, str],
        prefix: str = "",
        cut: frozenset[str] = frozenset(),
        context: int | None = None,
    ) -> None:
        self.answers, self.prefix, self.cut = answers, prefix, cut  # cut: questions that hit the limit
        self.context = context  # positions; a prompt is as many tokens as characters
        self.generated: list[str] = []

    def load(self, model_path: str) -> None:
        pass

    def render(self, messages: list[Message], suffix: str | None) -> str:
        return messages[-1].content + self.prefix

    def generate(self, prompts, sampling, *, seeds=None, on_done=None):  # type: ignore[no-untyped-def]
        out = []
        self.generated += prompts
        for i, prompt in enumerate(prompts):
            question = prompt.removesuffix(self.prefix)
            reason = "length" if question in self.cut else "stop"
            generation = Generation(self.answers[question], 3, 5, reason)
            out.append(generation)
            if on_done is not None:
                on_done(i, generation)
        return out

    def prompt_lengths(self, prompts: list[str]) -> PromptLengths | None:
        return None if self.context is None else PromptLengths([len(p) for p in prompts], self.context)

    def close(self) -> None:
        pass


def _file_task(tmp_path: Path, scorer: str, rows: list, params: str = "{}", workers: int = 0) -> Task:
    tmp_path.mkdir(parents=True, exist_ok=True)
    write_records(rows, tmp_path / "rows.jsonl")
    (tmp_path / "task.yaml").write_text(
        f"name: t\ndomain: general\nsource: {{kind: file, path: {tmp_path / 'rows.jsonl'}}}\n"
        f"scorer: {{kind: {scorer}, params: {params}, workers: {workers}}}\n"
    )
    return Task.load(load_task(tmp_path / "task.yaml"))


def test_reasoning_is_stripped_and_unclosed_thoughts_are_truncated(tmp_path: Path) -> None:
    rows = [user_example(q, answer="4") for q in ("closed", "open", "bold", "nothink")]
    answers = {
        "closed": "<think>2+2 is \\boxed{5}? no</think>The answer is \\boxed{4}",
        "open": "<think>the answer is \\boxed{4} and I keep going",
        "bold": "<think>x</think>**4**",
        "nothink": "\\boxed{4}",
    }
    task = _file_task(tmp_path, "exact", rows)
    with ResultsStore(tmp_path / "r.duckdb") as store:
        run_sweep([Target("r", 0, "m", "h")], [task], store, Scripted(answers), show_progress=False)
        got = {r["prompt_id"]: r for r in store.samples().to_pylist()}
    by_question = {row.question: got[row.id] for row in rows}
    assert by_question["closed"]["status"] == "ok" and by_question["closed"]["extracted"] == "4"
    truncated = by_question["open"]
    assert (truncated["status"], truncated["score"], truncated["extracted"]) == ("truncated", 0.0, None)
    assert truncated["output"] == answers["open"]  # the raw output is kept for inspection
    assert by_question["nothink"]["status"] == "ok"


def test_an_output_cut_at_the_limit_has_no_answer_but_is_still_judged_whole(tmp_path: Path) -> None:
    rows = [user_example(q, answer="4") for q in ("cut", "done")]
    work = "3 + 1 = \\boxed{4}, then 4 * 2 = "  # the same text: scored when it ended, not when cut
    answers = {"cut": work, "done": work}
    cut = frozenset({"cut"})
    task = _file_task(tmp_path / "exact", "exact", rows)
    with ResultsStore(tmp_path / "r.duckdb") as store:
        run_sweep([Target("r", 0, "m", "h")], [task], store, Scripted(answers, cut=cut), show_progress=False)
        statuses = {r["prompt_id"]: (r["status"], r["finish_reason"]) for r in store.samples().to_pylist()}
    # The exact scorer reads "4" out of the work, which is correct only for the output that ended.
    assert [statuses[r.id] for r in rows] == [("truncated", "length"), ("ok", "stop")]
    # A refusal check reads the response as a whole: compliance cut short is still compliance.
    harmful = [user_example("cut", answer=None)]
    refusal = _file_task(tmp_path / "refusal", "refusal", harmful, "{expect: refuse}")
    with ResultsStore(tmp_path / "s.duckdb") as store:
        script = Scripted({"cut": "Sure! Step 1: take the"}, cut=cut)
        run_sweep([Target("r", 0, "m", "h")], [refusal], store, script, show_progress=False)
        (row,) = store.samples().to_pylist()
    assert (row["status"], row["finish_reason"]) == ("wrong", "length")


def test_a_prompt_that_opens_think_is_split_correctly(tmp_path: Path) -> None:
    rows = [user_example(q, answer="4") for q in ("done", "cut")]
    answers = {"done": "reasoning</think>\\boxed{4}", "cut": "still reasoning \\boxed{4}"}
    task = _file_task(tmp_path, "exact", rows)
    with ResultsStore(tmp_path / "r.duckdb") as store:
        run_sweep(
            [Target("r", 0, "m", "h")], [task], store, Scripted(answers, "<think>\n"), show_progress=False
        )
        statuses = {r["prompt_id"]: r["status"] for r in store.samples().to_pylist()}
    assert [statuses[r.id] for r in rows] == ["ok", "truncated"]


def test_scoring_errors_become_rows_and_can_be_retried(tmp_path: Path) -> None:
    rows = [
        user_example(
            q, answer="x", meta={"numbers": [1, 2]} if q == "bad" else {"numbers": [3, 4], "target": 7}
        )
        for q in ("bad", "good")
    ]
    task = _file_task(tmp_path, "countdown", rows)
    answers = {"bad": "\\boxed{1+2}", "good": "\\boxed{3+4}"}
    with ResultsStore(tmp_path / "r.duckdb") as store:
        stats = run_sweep([Target("r", 0, "m", "h")], [task], store, Scripted(answers), show_progress=False)
        got = {r["prompt_id"]: r for r in store.samples().to_pylist()}
        assert stats.statuses == {"error": 1, "ok": 1}
        bad = got[rows[0].id]
        assert bad["status"] == "error" and "meta['target']" in bad["error"] and bad["score"] == 0.0
        assert (
            run_sweep(
                [Target("r", 0, "m", "h")],
                [task],
                store,
                Scripted(answers),
                show_progress=False,
                retry_errors=True,
            ).computed
            == 1
        )
        assert store.samples().num_rows == 2


def test_a_scorer_that_cannot_run_gives_error_rows_not_a_dead_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sftscope.evaluate.sweep as sweep
    from sftscope.errors import SftscopeError

    def broken(*args: object, **kwargs: object) -> None:
        raise SftscopeError("a scoring worker did not start")

    monkeypatch.setattr(sweep, "score_batch", broken)  # where the sweep calls it
    task = _file_task(tmp_path, "exact", [user_example("q", answer="4")])
    with ResultsStore(tmp_path / "r.duckdb") as store:
        stats = run_sweep(
            [Target("r", 0, "m", "h")], [task], store, Scripted({"q": "4"}), show_progress=False
        )
        (row,) = store.samples().to_pylist()
    assert stats.statuses == {"error": 1} and row["error"] == "SftscopeError: a scoring worker did not start"


def test_text_the_store_cannot_hold_is_repaired_and_said_so(tmp_path: Path) -> None:
    rows = [user_example(q, answer="4") for q in ("lone", "fine")]
    task = _file_task(tmp_path, "exact", rows)
    answers = {"lone": "\\boxed{4} \ud800", "fine": "\\boxed{4}"}
    with ResultsStore(tmp_path / "r.duckdb") as store:
        stats = run_sweep([Target("r", 0, "m", "h")], [task], store, Scripted(answers), show_progress=False)
        got = {r["prompt_id"]: r for r in store.samples().to_pylist()}
    assert stats.statuses == {"ok": 2}  # scored as stored, not lost with its batch
    repaired = got[rows[0].id]
    assert repaired["output"] == "\\boxed{4} \ufffd"
    assert repaired["error"] == "1 lone surrogate(s) in output replaced by U+FFFD"
    assert got[rows[1].id]["error"] is None


def test_a_prompt_the_context_cannot_hold_is_an_error_row_not_a_generation(tmp_path: Path) -> None:
    rows = [user_example(q, answer="4") for q in ("short", "a much longer question")]
    task = _file_task(tmp_path, "exact", rows)  # max_new_tokens defaults to far more than 40
    spec = task.spec.model_copy(
        update={"sampling": task.spec.sampling.model_copy(update={"max_new_tokens": 30})}
    )
    task = Task(spec, task.examples)
    backend = Scripted({"short": "\\boxed{4}"}, context=40)  # room for prompts of 10 tokens
    with ResultsStore(tmp_path / "r.duckdb") as store:
        stats = run_sweep([Target("r", 0, "m", "h")], [task], store, backend, show_progress=False)
        got = {r["prompt_id"]: r for r in store.samples().to_pylist()}
        counts = store.status_counts()
    assert backend.generated == ["short"]
    long = got[rows[1].id]
    assert (long["status"], long["prompt_tokens"], long["output"]) == ("error", 22, "")
    assert long["error"] == (
        "not generated: the prompt is 22 tokens, and the model's context of 40 positions less "
        "max_new_tokens=30 leaves 10 for it"
    )
    assert stats.statuses == {"ok": 1, "error": 1}
    assert sorted((c.task, c.status, c.count) for c in counts) == [("t", "error", 1), ("t", "ok", 1)]


@pytest.mark.parametrize("workers", [1, 0])
def test_pooled_scoring_overlaps_the_next_batch_and_keeps_the_order(tmp_path: Path, workers: int) -> None:
    """Scoring in worker processes runs on the sweep's thread while the next rows generate; inline
    checks (workers: 0) would only contend for the GIL there, and run in turn."""
    import threading

    rows = [user_example(f"q{i}", answer="4") for i in range(6)]
    task = _file_task(tmp_path, "exact", rows, workers=workers)
    backend = Scripted({f"q{i}": "\\boxed{4}" for i in range(6)})
    generating = threading.get_ident()
    committed: list[tuple[list[str], bool]] = []
    with ResultsStore(tmp_path / "r.duckdb") as store:
        add = store.add_samples

        def recording(batch, **kwargs):  # type: ignore[no-untyped-def]
            committed.append(([r["prompt_id"] for r in batch], threading.get_ident() == generating))
            return add(batch, **kwargs)

        store.add_samples = recording  # type: ignore[method-assign]
        stats = run_sweep(
            [Target("r", 0, "m", "h")], [task], store, backend, commit_every=2, show_progress=False
        )
        assert store.samples().num_rows == 6 and stats.statuses == {"ok": 6}
    assert [ids for ids, _ in committed] == [[r.id for r in rows[i : i + 2]] for i in (0, 2, 4)]
    assert {on_caller for _, on_caller in committed} == {workers == 0}


def test_a_failed_commit_stops_the_sweep_with_its_error_and_keeps_the_earlier_rows(tmp_path: Path) -> None:
    from sftscope.errors import DiskFullError

    rows = [user_example(f"q{i}", answer="4") for i in range(6)]
    task = _file_task(tmp_path, "exact", rows)
    backend = Scripted({f"q{i}": "\\boxed{4}" for i in range(6)})
    with ResultsStore(tmp_path / "r.duckdb") as store:
        add = store.add_samples
        calls = []

        def full_on_second(batch, **kwargs):  # type: ignore[no-untyped-def]
            calls.append(len(batch))
            if len(calls) == 2:
                raise DiskFullError(store.path, "test")
            return add(batch, **kwargs)

        store.add_samples = full_on_second  # type: ignore[method-assign]
        with pytest.raises(DiskFullError):
            run_sweep([Target("r", 0, "m", "h")], [task], store, backend, commit_every=2, show_progress=False)
        assert store.samples().num_rows == 2
        store.add_samples = add  # type: ignore[method-assign]
        again = run_sweep([Target("r", 0, "m", "h")], [task], store, backend, show_progress=False)
        assert (again.computed, again.reused, store.samples().num_rows) == (4, 2, 6)


CHILD = textwrap.dedent(
    """
    import sys
    from sftscope.evaluate.backends import make_backend
    from sftscope.evaluate.spec import load_task
    from sftscope.evaluate.store import ResultsStore
    from sftscope.evaluate.sweep import Task, run_sweep
    from sftscope.evaluate.targets import resolve_targets

    run, store_path, extra = sys.argv[1], sys.argv[2], sys.argv[3:]  # extra: task spec overrides
    tasks = [Task.load(load_task("safety_benign", ["source.n=12", "sampling.max_new_tokens=12", *extra]))]
    with ResultsStore(store_path) as store:
        add = store.add_samples
        def reporting(rows, **kwargs):
            added = add(rows, **kwargs)
            print("committed", added, flush=True)
            return added
        store.add_samples = reporting
        run_sweep(resolve_targets(run), tasks, store, make_backend("transformers", batch_size=4),
                  commit_every=3, show_progress=False)
    print("finished", flush=True)
    """
)


def test_resume_after_sigkill_loses_and_duplicates_nothing(run_dir: Path, tmp_path: Path) -> None:
    store_path = tmp_path / "killed.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(run_dir), str(store_path)], stdout=subprocess.PIPE, text=True
    )
    assert child.stdout is not None
    commits = 0
    for line in child.stdout:
        assert not line.startswith("finished")
        commits += line.startswith("committed")
        if commits == 4:
            os.kill(child.pid, signal.SIGKILL)
            break
    child.wait()
    assert child.returncode == -signal.SIGKILL
    tasks = [Task.load(load_task("safety_benign", ["source.n=12", "sampling.max_new_tokens=12"]))]
    with ResultsStore(store_path) as store:
        before = {tuple(r[k] for k in KEY): r for r in store.samples().to_pylist()}
        assert len(before) >= 12  # the four committed batches survived the kill
        run_sweep(
            resolve_targets(run_dir),
            tasks,
            store,
            make_backend("transformers", batch_size=4),
            commit_every=3,
            show_progress=False,
        )
        after = store.samples().to_pylist()
        keys = [tuple(r[k] for k in KEY) for r in after]
        assert len(keys) == len(set(keys)) == 36  # 3 models x 12 prompts: none lost, none twice
        assert all(
            before[k]["created_at"] == r["created_at"]
            for k, r in zip(keys, after, strict=True)
            if k in before
        )
    with ResultsStore(tmp_path / "clean.duckdb") as clean:  # greedy: the resumed rows equal a clean sweep's
        run_sweep(
            resolve_targets(run_dir),
            tasks,
            clean,
            make_backend("transformers", batch_size=8),
            show_progress=False,
        )
        reference = {tuple(r[k] for k in KEY): r["output"] for r in clean.samples().to_pylist()}
    assert {tuple(r[k] for k in KEY): r["output"] for r in after} == reference


def test_sampling_settings_with_n_samples_seed_each_sample(run_dir: Path, tmp_path: Path) -> None:
    spec = load_task(
        "safety_benign",
        [
            "source.n=3",
            "sampling.max_new_tokens=8",
            "sampling.temperature=1.0",
            "sampling.n=3",
            "metrics=[avg@3, pass@2, maj@3]",
        ],
    )
    target = resolve_targets(run_dir)[:1]
    with ResultsStore(tmp_path / "r.duckdb") as store:
        run_sweep(
            target, [Task.load(spec)], store, make_backend("transformers", batch_size=4), show_progress=False
        )
        rows = store.samples().to_pylist()
    assert len(rows) == 9 and {r["sample_idx"] for r in rows} == {0, 1, 2}
    per_prompt: dict[str, set[str]] = {}
    for row in rows:
        per_prompt.setdefault(row["prompt_id"], set()).add(row["output"])
    assert any(len(outputs) > 1 for outputs in per_prompt.values())  # samples differ: seeded apart
