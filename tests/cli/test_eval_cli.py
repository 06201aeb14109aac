"""`sftscope eval` end to end on a fake tiny run, and its bad-input errors (exit code 2, one line)."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from sftscope.cli import app

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from fake_run import make_run
from openai_stub import Stub

FIXTURES = Path(__file__).parents[1] / "fixtures" / "eval"
QUICK = ["--suite", "micro-quick", "--set", "source.n=2", "--set", "sampling.max_new_tokens=8", "--quiet"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


@pytest.fixture(scope="module")
def run_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_run(tiny_model_dir, tmp_path_factory.mktemp("eval-cli"))


def test_eval_a_run_then_rerun_computes_nothing(run_dir: Path) -> None:
    code, output = invoke("eval", str(run_dir), *QUICK, "--steps", "0,20", "--batch-size", "4")
    assert code == 0, output
    assert output.endswith(str(run_dir / "results.duckdb"))
    assert "step 0" in output and "step 20" in output and "step 10" not in output
    assert "20 rows computed" in output  # 2 models x 5 tasks x 2 prompts
    aggregates = pq.read_table(run_dir / "aggregates.parquet").to_pylist()
    assert {a["step"] for a in aggregates} == {0, 20}
    assert json.loads((run_dir / "aggregates.json").read_text())[0]["metric"]
    code, output = invoke("eval", str(run_dir), *QUICK, "--steps", "0,20")
    assert code == 0 and "0 rows computed" in output and "all rows stored already" in output


def test_ctrl_c_keeps_the_committed_rows_and_says_how_to_go_on(
    run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sftscope.evaluate.store import ResultsStore

    add_samples = ResultsStore.add_samples

    def then_interrupt(self: ResultsStore, rows: list, **kwargs: object) -> None:
        add_samples(self, rows, **kwargs)
        raise KeyboardInterrupt  # Ctrl-C right after the first batch is committed

    store = tmp_path / ("long-" * 20) / "interrupted.duckdb"  # longer than a line: printed unbroken
    args = ("eval", str(run_dir), *QUICK, "--steps", "0,20", "--batch-size", "4", "--store", str(store))
    with monkeypatch.context() as patch:
        patch.setattr(ResultsStore, "add_samples", then_interrupt)
        code, output = invoke(*args)
    assert code == 130 and f"interrupted: the finished rows are in {store}" in output, output
    with ResultsStore(store, read_only=True) as results:
        assert results.samples().num_rows == 4  # the committed batch
    code, output = invoke(*args)
    assert code == 0 and "16 rows computed" in output and "4 reused" in output, output


def test_eval_a_bare_model_into_a_named_store(run_dir: Path, tmp_path: Path) -> None:
    model = run_dir / "checkpoints" / "step-000010"
    store = tmp_path / "stores" / "m.duckdb"
    code, output = invoke(
        "eval",
        str(model),
        "--task",
        "countdown",
        "--set",
        "source.n=2",
        "--set",
        "sampling.max_new_tokens=4",
        "--store",
        str(store),
        "--quiet",
    )
    assert code == 0, output
    assert "step-000010" in output and (tmp_path / "stores" / "m.aggregates" / "aggregates.parquet").is_file()
    code, output = invoke("export", str(store))
    assert code == 0, output
    samples = pq.read_table(tmp_path / "stores" / "m-parquet" / "samples.parquet")
    assert samples.num_rows == 2 and set(samples.column("run").to_pylist()) == {"step-000010"}
    assert {"output", "score", "status", "finish_reason", "domain"} <= set(samples.column_names)
    code, output = invoke("export", str(tmp_path / "stores"), "--out", str(tmp_path / "out"))
    assert code == 2 and f"pass the store file itself, e.g. {store}" in output, output


def test_bad_spec_is_one_located_error(tmp_path: Path, run_dir: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(
        "name: bad\ndomain: general\nsource: {kind: microworld, domains: [arithmetic], n: 2}\n"
        "scorer: no_such_scorer\n"
    )
    code, output = invoke("eval", str(run_dir), "--task", str(spec))
    assert code == 2
    assert f"{spec}, line 4, field 'scorer': unknown kind 'no_such_scorer'; known: math," in output


def test_checkpoint_without_weights(tmp_path: Path, run_dir: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(run_dir, broken, ignore=shutil.ignore_patterns("*.duckdb", "aggregates*"))
    (broken / "checkpoints" / "step-000020" / "model.safetensors").unlink()
    code, output = invoke("eval", str(broken), *QUICK)
    assert code == 2 and "step-000020: no model weights found" in output
    cut = (run_dir / "checkpoints" / "step-000010" / "model.safetensors").read_bytes()[:1000]
    (broken / "checkpoints" / "step-000020" / "model.safetensors").write_bytes(cut)
    code, output = invoke("eval", str(broken), *QUICK, "--store", str(tmp_path / "s.duckdb"))
    assert code == 2 and "step-000020/model.safetensors: unreadable weights" in output, output
    assert not (tmp_path / "s.duckdb").exists()  # found before the sweep started


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--steps", "0,15"], "no checkpoint at steps [15]"),
        (["--steps", "a,b"], "expected comma-separated step numbers"),
        (["--set", "nosuch:sampling.n=2"], "names task 'nosuch'"),
        (["--steps", ","], "expected comma-separated step numbers >= 0"),
        (["--steps", "-10"], "expected comma-separated step numbers >= 0"),
        (["--backend", "openai"], "needs an endpoint URL"),
        (["--backend", "openai", "--endpoint", "notaurl"], "expected an http(s) URL"),
        (["--backend", "openai", "--endpoint", "http://h:1/v1", "--endpoint-mode", "chatt"], "one of chat"),
        (["--backend", "openai", "--endpoint", "http://h:1/v1"], "not a run's checkpoints"),
        (["--endpoint", "http://h:1/v1"], "are for --backend openai"),
        (["--batch-size", "0"], "Invalid value for '--batch-size'"),
        (["--batch-size", "-3"], "Invalid value for '--batch-size'"),
        (["--threads", "0"], "Invalid value for '--threads'"),
        (["--n-boot", "0"], "Invalid value for '--n-boot'"),
        (["--vllm-arg", "dtype=float32"], "--vllm-arg is for --backend vllm"),
        (["--backend", "vllm", "--vllm-arg", "dtype"], "override 'dtype' is not key=value"),
    ],
)
def test_bad_options(run_dir: Path, args: list[str], message: str) -> None:
    code, output = invoke("eval", str(run_dir), *QUICK, *args)
    assert code == 2 and message in output


def test_suite_or_task_is_required(run_dir: Path) -> None:
    code, output = invoke("eval", str(run_dir))
    assert code == 2 and "either --suite NAME or one or more --task NAME" in output


def test_vllm_args_reach_the_engine(run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "engines.jsonl"
    monkeypatch.syspath_prepend(str(FIXTURES / "fake_vllm"))  # a stand-in: no vLLM here
    monkeypatch.setenv("FAKE_VLLM_LOG", str(log))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    sys.modules.pop("vllm", None)
    engine_args = ["--vllm-arg", "dtype=float32", "--vllm-arg", "gpu_memory_utilization=0.1"]
    engine_args += ["--store", str(tmp_path / "results.duckdb"), "--steps", "10"]
    try:
        result = CliRunner().invoke(
            app, ["eval", str(run_dir), *QUICK, "--backend", "vllm", "--batch-size", "4", *engine_args]
        )
    finally:
        sys.modules.pop("vllm", None)
    assert result.exit_code == 0, result.output
    engines = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "engine"]
    assert [Path(e["model"]).name for e in engines] == ["base", "step-000010"]
    assert engines[0]["kwargs"] == {
        "max_num_seqs": 4,
        "enable_prefix_caching": True,
        "dtype": "float32",
        "gpu_memory_utilization": 0.1,
    }


def test_endpoint_rows_are_keyed_by_the_endpoint_not_the_local_weights(
    run_dir: Path, tmp_path: Path, stub: tuple[Stub, str]
) -> None:
    from sftscope.evaluate.store import ResultsStore

    state, url = stub
    state.reply = {"choices": [{"message": {"content": "\\boxed{1}"}, "finish_reason": "stop"}]}
    model, store = run_dir / "checkpoints" / "step-000010", tmp_path / "served.duckdb"
    common = ("eval", str(model), "--task", "countdown", "--set", "source.n=2", "--store", str(store))
    common += ("--set", "sampling.max_new_tokens=4")
    code, output = invoke(*common, "--backend", "openai", "--endpoint", url, "--endpoint-model", "served")
    assert code == 0 and "2 rows computed" in output, output
    assert len(state.requests) == 2 and {r["model"] for r in state.requests} == {"served"}
    # The same weights evaluated locally are not the served model's rows: computed, not reused.
    code, output = invoke(*common, "--quiet")
    assert code == 0 and "2 rows computed" in output, output
    with ResultsStore(store, read_only=True) as results:
        rows = results.samples().to_pylist()
    models = {r["backend"]: (r["run"], r["model_hash"]) for r in rows}
    assert models["openai"][0] == f"openai:served@{url.split('/')[2]}"  # host:port of the endpoint
    assert models["transformers"][0] == "step-000010"
    assert models["openai"][1] != models["transformers"][1] and len(rows) == 4


def test_a_reply_with_a_lone_surrogate_is_stored_repaired(tmp_path: Path, stub: tuple[Stub, str]) -> None:
    from sftscope.evaluate.store import ResultsStore

    state, url = stub
    # JSON can carry "\\ud800", which decodes to a lone surrogate that UTF-8 (and the store) cannot hold.
    state.reply = b'{"choices": [{"message": {"content": "\\\\boxed{1} \\ud800"}, "finish_reason": "stop"}]}'
    store = tmp_path / "s.duckdb"
    args = ["eval", "micro-weak", "--task", "countdown", "--set", "source.n=2", "--store", str(store)]
    code, output = invoke(*args, "--backend", "openai", "--endpoint", url, "--quiet")
    assert code == 0 and "2 rows computed" in output, output
    with ResultsStore(store, read_only=True) as results:
        rows = results.samples().to_pylist()
    assert {r["output"] for r in rows} == {"\\boxed{1} \ufffd"}
    assert all(r["error"].endswith("1 lone surrogate(s) in output replaced by U+FFFD") for r in rows)


def test_prompts_the_context_cannot_hold_are_counted_per_task(run_dir: Path, tmp_path: Path) -> None:
    """The tiny model has 512 positions: max_new_tokens=500 leaves 12, less than any prompt."""
    store = tmp_path / "long.duckdb"
    args = ["eval", str(run_dir), "--task", "countdown", "--task", "safety_benign", "--steps", "0"]
    args += ["--set", "source.n=2", "--set", "sampling.max_new_tokens=500", "--store", str(store), "--quiet"]
    code, output = invoke(*args)
    assert code == 0 and "4 rows computed (4 error/timeout)" in output, output
    assert output.count("error 2") == 2  # each task's "not scored" column: both its rows
    assert "not scored" in output


@pytest.mark.slow
def test_a_real_model_is_swept_offline(smollm2_dir: Path, tmp_path: Path) -> None:
    """SmolLM2-135M-Instruct on MATH-500-schema rows at the reference's sampling, cut at 48 tokens."""
    from sftscope.evaluate.store import ResultsStore

    store = tmp_path / "smol.duckdb"
    args = ["eval", str(smollm2_dir), "--task", "math500", "--store", str(store), "--quiet"]
    args += ["--set", f"source.path={FIXTURES / 'math500.jsonl'}", "--set", "sampling.max_new_tokens=48"]
    code, output = invoke(*args)
    assert code == 0 and "6 rows computed" in output, output  # 2 prompts x avg@3
    with ResultsStore(store, read_only=True) as results:
        rows = results.samples().to_pylist()
    # Its own chat template (system turn included) around the question, and real text back.
    assert all(r["prompt_tokens"] > 40 and r["output"].strip() for r in rows)
    # A 48-token cut is no answer: truncated, not graded (a real model writes longer than that).
    assert all(r["status"] == "truncated" for r in rows if r["finish_reason"] == "length")
    assert len({r["output"] for r in rows}) > 2  # sampled at T=0.6: the samples differ
    code, output = invoke(*args)
    assert code == 0 and "0 rows computed" in output


def test_a_shipped_base_directory_is_a_model_not_a_run(tmp_path: Path, stub: tuple[Stub, str]) -> None:
    from sftscope.models.loading import resolve_model

    state, url = stub
    state.reply = {"choices": [{"message": {"content": "\\boxed{1}"}, "finish_reason": "stop"}]}
    base = resolve_model("micro-weak")  # holds a manifest.json too: its pretraining record
    args = ["eval", base, "--task", "countdown", "--set", "source.n=1", "--store", str(tmp_path / "s.duckdb")]
    code, output = invoke(*args, "--backend", "openai", "--endpoint", url, "--quiet")
    assert code == 0 and "1 rows computed" in output, output
