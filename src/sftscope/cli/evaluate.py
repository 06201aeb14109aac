"""CLI commands of the evaluate stage: `sftscope eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import typer

from sftscope.cli.errors import on_interrupt, reports_errors
from sftscope.config.overrides import check_scopes, parse_overrides
from sftscope.endpoint import METER, Prices, public_url
from sftscope.errors import InputError
from sftscope.evaluate.adaptive import adaptive_sweep, check_adaptive
from sftscope.evaluate.backends import make_backends
from sftscope.evaluate.fanout import run_sweep_lanes
from sftscope.evaluate.layouts import parse_revisions
from sftscope.evaluate.spec import load_suite, load_task
from sftscope.evaluate.store import STORE_FILE, ResultsStore, store_file
from sftscope.evaluate.summary import print_summary
from sftscope.evaluate.sweep import SweepStats, Task
from sftscope.evaluate.targets import Target, resolve_targets, served_target, store_home
from sftscope.progress import console

ENDPOINT_MODES = ("chat", "completions")


def _steps(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        steps = sorted({int(part) for part in text.split(",") if part.strip()})
    except ValueError as exc:
        raise InputError("--steps", f"expected comma-separated step numbers, got '{text}'") from exc
    if not steps or steps[0] < 0:  # '--steps ,' would silently evaluate the base alone
        raise InputError("--steps", f"expected comma-separated step numbers >= 0, got '{text}'")
    return steps


def _endpoint_options(
    endpoint: str | None, model: str | None, mode: str, timeout_s: float, price: str | None
) -> dict[str, Any]:
    """The openai backend's options, checked here so a typo is an option error, not a traceback."""

    if endpoint is None:
        raise InputError("--endpoint", "the openai backend needs an endpoint URL, e.g. http://HOST:PORT/v1")
    url = urlparse(endpoint)
    if url.scheme not in ("http", "https") or not url.netloc:
        message = f"expected an http(s) URL such as http://HOST:PORT/v1, got '{public_url(endpoint)}'"
        raise InputError("--endpoint", message)
    if mode not in ENDPOINT_MODES:
        raise InputError("--endpoint-mode", f"expected one of {', '.join(ENDPOINT_MODES)}, got '{mode}'")
    try:
        prices = Prices.parse(price) if price is not None else None
    except ValueError as exc:
        raise InputError("--endpoint-price", str(exc)) from None
    return {"base_url": endpoint, "model": model, "mode": mode, "timeout_s": timeout_s, "prices": prices}


@reports_errors
def eval_command(
    target: str = typer.Argument(
        ...,
        help="A run (sftscope, HF Trainer/TRL/LLaMA-Factory or verl output dir: all checkpoints + base), "
        "a folder of step snapshots, a hub repo (with --revisions), a model dir or a shipped name.",
    ),
    base: str | None = typer.Option(
        None, "--base", help="Base model (step 0; what adapters merge onto) where checkpoints name none."
    ),
    revisions: str | None = typer.Option(
        None, "--revisions", help="Hub revisions or snapshot folders: names or patterns, e.g. 'step*'."
    ),
    suite: str | None = typer.Option(
        None, "--suite", help="Built-in suite (micro, micro-quick, paper) or YAML."
    ),
    tasks: list[str] | None = typer.Option(
        None, "--task", help="A task (built-in name or YAML); repeatable."
    ),
    steps: str | None = typer.Option(None, "--steps", help="Only these checkpoint steps, e.g. 0,10,40."),
    every: int | None = typer.Option(
        None, "--every", help="Only checkpoints whose step is a multiple (+ last)."
    ),
    store: Path | None = typer.Option(None, "--store", help="Results store (default RUN/results.duckdb)."),
    backend: str = typer.Option("transformers", "--backend", help="transformers | vllm | openai."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Rows decoded together (or concurrency)."
    ),
    threads: int = typer.Option(
        1, "--threads", min=1, help="transformers on CPU: torch threads (1 is fastest for tiny models)."
    ),
    prefill_tokens: int = typer.Option(
        1024, "--prefill-tokens", min=1, help="transformers: padded prompt tokens per prefill forward."
    ),
    overrides: list[str] | None = typer.Option(
        None, "--set", help="Task spec change KEY=VALUE for every task, or TASK:KEY=VALUE for one."
    ),
    retry_errors: bool = typer.Option(False, "--retry-errors", help="Re-run stored error/timeout rows."),
    endpoint: str | None = typer.Option(
        None, "--endpoint", help="openai backend: base URL, e.g. http://HOST:PORT/v1"
    ),
    endpoint_model: str | None = typer.Option(
        None, "--endpoint-model", help="openai backend: served model name."
    ),
    endpoint_mode: str = typer.Option("chat", "--endpoint-mode", help="openai backend: chat | completions."),
    endpoint_timeout: float = typer.Option(
        600.0, "--endpoint-timeout", min=1.0, help="openai backend: seconds to wait for one reply."
    ),
    endpoint_price: str | None = typer.Option(
        None, "--endpoint-price", help="openai backend: PROMPT,COMPLETION price per 1k tokens, for the cost."
    ),
    vllm_args: list[str] | None = typer.Option(
        None,
        "--vllm-arg",
        help="vllm backend: an engine argument KEY=VALUE, repeatable (e.g. tensor_parallel_size=2; "
        "on a CPU: dtype=float32 gpu_memory_utilization=0.1).",
    ),
    n_boot: int = typer.Option(
        1000, "--n-boot", min=100, help="Bootstrap resamples of each aggregate's CI (at least 100)."
    ),
    adaptive: bool = typer.Option(
        False, "--adaptive", help="Evaluate log-spaced checkpoints, then bisect where the curve moves."
    ),
    budget: int | None = typer.Option(
        None, "--budget", help="--adaptive: at most this many checkpoints, the base included."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bars."),
) -> None:
    """Sweep-evaluate a training run (every checkpoint + its base as step 0) or one model on a suite.

    The run may be any trainer's: checkpoint-N/ (HF Trainer, TRL, LLaMA-Factory; PEFT adapters are
    merged onto their base), global_step_N/ (verl), step snapshots or hub revisions.

    Only rows missing from the store are computed; weights already evaluated (by content hash) are
    skipped. Writes aggregates.parquet/.json beside the store and prints the store path on stdout.
    With --adaptive, only the checkpoints where the curves move are evaluated; the store's
    sweep_plan table records which and why.
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # one progress bar per checkpoint (ours), not one per weight load
    METER.reset()  # the summary's endpoint usage is this sweep's
    if bool(suite) == bool(tasks):
        raise InputError("command line", "give either --suite NAME or one or more --task NAME")
    specs = load_suite(suite, overrides)[1] if suite else [load_task(t, overrides) for t in tasks or []]
    check_scopes(overrides or [], [s.name for s in specs])
    run_dir = store_home(target)
    # Checked before resolving the targets, which reads every checkpoint's weights.
    served: dict[str, Any] = {}
    if backend == "openai":
        served = _endpoint_options(endpoint, endpoint_model, endpoint_mode, endpoint_timeout, endpoint_price)
    message = "--backend openai evaluates the one model an endpoint serves, not a run's checkpoints"
    if served and run_dir is not None:  # an endpoint answers for one model, whichever is "loaded"
        raise InputError(str(run_dir), f"{message}; give that model's directory instead")
    if budget is not None and not adaptive:
        raise InputError("--budget", "limits an adaptive sweep; add --adaptive")
    targets = resolve_targets(
        target, steps=_steps(steps), every=every, base=base, revisions=parse_revisions(revisions)
    )
    if served and len(targets) > 1:
        raise InputError(target, f"{message}; give that model's directory instead")
    if adaptive:
        check_adaptive(targets, budget)
    store_path = store or (run_dir / STORE_FILE if run_dir else Path(STORE_FILE))
    options: dict[str, Any] = (
        {"threads": threads, "prefill_tokens": prefill_tokens} if backend == "transformers" else {}
    )
    if vllm_args and backend != "vllm":
        raise InputError("command line", "--vllm-arg is for --backend vllm")
    if (endpoint or endpoint_model or endpoint_price) and backend != "openai":
        raise InputError(
            "command line", "--endpoint, --endpoint-model and --endpoint-price are for --backend openai"
        )
    if backend == "vllm":
        options = parse_overrides(vllm_args or [], source="--vllm-arg")
    if backend == "openai":
        options = served
        targets = [served_target(t, options["base_url"], endpoint_model) for t in targets]
    engines = make_backends(backend, batch_size=batch_size, **options)  # vllm: one per GPU lane
    loaded = [Task.load(spec) for spec in specs]
    with ResultsStore(store_path) as results:
        with on_interrupt(f"the finished rows are in {store_path}; the same command continues"):

            def sweep(chosen: list[Target]) -> SweepStats:
                return run_sweep_lanes(
                    chosen,
                    loaded,
                    results,
                    engines,
                    retry_errors=retry_errors,
                    show_progress=not quiet,
                    log=console.print,
                )

            if adaptive:
                plan, stats = adaptive_sweep(
                    targets, results, sweep, budget=budget, n_boot=n_boot, log=console.print
                )
                targets = [t for t in targets if t.step in {e.step for e in plan}]
            else:
                stats = sweep(targets)
        print_summary(results, specs, targets, stats, n_boot=n_boot)
    for engine in engines:
        engine.close()
    typer.echo(str(store_path))


@reports_errors
def export_command(
    store: Path = typer.Argument(
        ..., help="A results store, or a run or study directory holding results.duckdb."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for the Parquet files (default: STEM-parquet beside the store)."
    ),
) -> None:
    """Export a results store as Parquet: samples (joined with run, step, domain), models, tasks.

    Prints each file's path.
    """

    path = store_file(store)
    with ResultsStore(path, read_only=True) as results:
        for written in results.export_parquet(out or path.parent / f"{path.stem}-parquet"):
            typer.echo(str(written))


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the top-level app."""
    app.command("eval")(eval_command)
    app.command("export")(export_command)
