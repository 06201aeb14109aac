"""Sweep targets from other trainers: TRL/HF Trainer output folders (full and LoRA), verl roots, step
snapshots and hub revisions; keyed by content hash, so the same weights under another name cost
nothing; and every malformed target refused in one line, exit code 2, before the store exists."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import httpx
import huggingface_hub
import pytest
from huggingface_hub.utils import RevisionNotFoundError
from typer.testing import CliRunner

from sftscope.cli import app
from sftscope.errors import InputError
from sftscope.evaluate.store import ResultsStore
from sftscope.evaluate.targets import resolve_targets, store_home
from sftscope.models.loading import resolve_model
from sftscope.rundir import content_hash

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from trainer_runs import BASE, verl_root

QUICK = ["--task", "countdown", "--set", "source.n=2", "--set", "sampling.max_new_tokens=4", "--quiet"]


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, " ".join(result.output.split())


def refused(store: Path, *args: str) -> str:
    """The CLI's one-line error for a bad target; nothing may be written to the store."""
    result = CliRunner().invoke(app, ["eval", *args, *QUICK, "--store", str(store)])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1, result.output
    assert not store.exists()
    return " ".join(result.output.split())


def test_a_trl_run_is_its_base_plus_every_checkpoint(trl_full: Path) -> None:
    targets = resolve_targets(trl_full, base=BASE)
    base = resolve_model(BASE)
    assert [(t.run, t.step, t.path) for t in targets] == [
        ("trl-full", 0, base),
        ("trl-full", 2, str(trl_full / "checkpoint-2")),
        ("trl-full", 4, str(trl_full / "checkpoint-4")),
    ]
    assert [t.model_hash for t in targets] == [content_hash(t.path) for t in targets]
    state = json.loads((trl_full / "checkpoint-2" / "trainer_state.json").read_text())
    logged = next(e for e in state["log_history"] if e["step"] == 2)
    assert (targets[1].epoch, targets[1].tokens_seen) == (logged["epoch"], logged["num_input_tokens_seen"])
    assert targets[1].epoch == 0.5 and targets[1].tokens_seen > 0
    assert [t.step for t in resolve_targets(trl_full, base=BASE, steps=[4])] == [0, 4]
    assert store_home(trl_full) == trl_full
    one = trl_full / "checkpoint-2"  # one checkpoint is one model: its own step 0, no base beside it
    assert [(t.run, t.step) for t in resolve_targets(one)] == [("checkpoint-2", 0)]
    with pytest.raises(InputError, match="--base names the base of a run's checkpoints or of an adapter"):
        resolve_targets(one, base=BASE)
    (trl_full.parent / "cell-a").symlink_to(trl_full)  # a study files it under its cell's name
    assert {t.run for t in resolve_targets(trl_full.parent / "cell-a", base=BASE)} == {"cell-a"}


def test_the_base_comes_from_the_config_or_from_base(trl_full: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="pass --base"):  # transformers 5 configs name no base
        resolve_targets(trl_full)
    copy = shutil.copytree(trl_full, tmp_path / "copy")
    for config in copy.glob("checkpoint-*/config.json"):  # as transformers 4 saves them
        config.write_text(json.dumps({**json.loads(config.read_text()), "_name_or_path": BASE}))
    assert resolve_targets(copy)[0].path == resolve_model(BASE)


def test_a_final_model_saved_beside_the_checkpoints_is_its_last_step(trl_full: Path, tmp_path: Path) -> None:
    run = shutil.copytree(trl_full, tmp_path / "run")
    for path in (run / "checkpoint-4").iterdir():  # trainer.save_model() + save_state() after step 5
        shutil.copy(path, run / path.name)
    state = json.loads((run / "trainer_state.json").read_text())
    (run / "trainer_state.json").write_text(json.dumps({**state, "global_step": 5}))
    assert [t.step for t in resolve_targets(run, base=BASE)] == [0, 2, 4, 5]
    (run / "trainer_state.json").write_text(json.dumps(state))  # saved at a checkpoint's step: not twice
    assert [t.step for t in resolve_targets(run, base=BASE)] == [0, 2, 4]


def test_lora_adapters_are_merged_onto_their_base(trl_lora: Path, tmp_path: Path) -> None:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    targets = resolve_targets(trl_lora)  # the base from adapter_config.json
    assert [(t.step, t.adapter_base) for t in targets] == [
        (0, None),
        (2, resolve_model(BASE)),
        (4, resolve_model(BASE)),
    ]
    assert len({t.model_hash for t in targets}) == 3
    merged = Path(targets[2].model_dir())
    assert merged != trl_lora / "checkpoint-4" and (merged / "tokenizer.json").is_file()
    assert targets[2].model_dir() == str(merged)  # merged once, then reused
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        base = AutoModelForCausalLM.from_pretrained(resolve_model(BASE))
        expected = PeftModel.from_pretrained(base, trl_lora / "checkpoint-4")(ids).logits
        plain = AutoModelForCausalLM.from_pretrained(resolve_model(BASE))(ids).logits
        actual = AutoModelForCausalLM.from_pretrained(merged)(ids).logits
    assert torch.allclose(actual, expected, atol=1e-5) and not torch.allclose(actual, plain, atol=1e-3)
    moved = shutil.copytree(trl_lora / "checkpoint-4", tmp_path / "renamed-adapter")
    assert resolve_targets(moved)[0].model_hash == targets[2].model_hash  # same adapter, same base


def test_a_verl_root_reads_its_hf_exports(trl_full: Path, tmp_path: Path) -> None:
    root = verl_root(trl_full, tmp_path / "verl")
    targets = resolve_targets(root)
    assert [t.step for t in targets] == [0, 2, 4] and targets[0].path == resolve_model(BASE)
    assert targets[1].path == str((root / "global_step_2" / "actor" / "huggingface").resolve())
    assert targets[2].model_hash == content_hash(trl_full / "checkpoint-4")  # the same weights
    (root / "global_step_4" / "actor" / "huggingface" / "model.safetensors").unlink()
    with pytest.raises(InputError, match=r"verl saved FSDP shards only.*verl\.model_merger"):
        resolve_targets(root)


def _snapshot_folder(trl_full: Path, out: Path) -> Path:
    for step in (2, 4):
        shutil.copytree(trl_full / f"checkpoint-{step}", out / f"step{step}")
    return out


def test_a_folder_of_step_snapshots_and_a_revision_pattern(trl_full: Path, tmp_path: Path) -> None:
    folder = _snapshot_folder(trl_full, tmp_path / "snapshots")
    assert [t.step for t in resolve_targets(folder)] == [2, 4]  # a pretraining run: no base unless given
    assert [t.step for t in resolve_targets(folder, base=BASE, revisions=["step4"])] == [0, 4]
    with pytest.raises(InputError, match="revision 'step8' does not exist; revisions: step2, step4"):
        resolve_targets(folder, revisions=["step8"])
    (folder / "step6").mkdir()
    (folder / "step6" / "config.json").write_text("{}")  # a snapshot whose weights never arrived
    with pytest.raises(InputError, match="step6: holds no model weights"):
        resolve_targets(folder)


def test_a_hub_cache_folder_and_a_hub_repo(
    trl_full: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "models--org--tiny"
    for step, sha in ((2, "a" * 40), (4, "b" * 40)):
        shutil.copytree(trl_full / f"checkpoint-{step}", cache / "snapshots" / sha)
        (cache / "refs").mkdir(parents=True, exist_ok=True)
        (cache / "refs" / f"stage1-step{step}-tokens{step}M").write_text(sha)
    (cache / "refs" / "main").write_text("b" * 40)
    targets = resolve_targets(cache, revisions=["stage1-*"])
    assert [(t.run, t.step, t.tokens_seen) for t in targets] == [
        ("org/tiny", 2, 2_000_000),
        ("org/tiny", 4, 4_000_000),
    ]

    refs = huggingface_hub.GitRefs(
        branches=[
            huggingface_hub.GitRefInfo(name=n, ref=f"refs/heads/{n}", target_commit=n)
            for n in ("main", "step2", "step4")
        ],
        converts=[],
        tags=[],
    )
    downloads: list[tuple[str, str]] = []

    def snapshot_download(repo: str, revision: str) -> str:
        downloads.append((repo, revision))
        return str(trl_full / f"checkpoint-{revision.removeprefix('step')}")

    monkeypatch.setattr(huggingface_hub, "list_repo_refs", lambda repo: refs)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    targets = resolve_targets("org/tiny", revisions=["step*"])
    assert [(t.run, t.step) for t in targets] == [("org/tiny", 2), ("org/tiny", 4)]
    assert downloads == [("org/tiny", "step2"), ("org/tiny", "step4")]
    assert targets[1].model_hash == content_hash(trl_full / "checkpoint-4")
    assert "revision 'step6' does not exist" in refused(
        tmp_path / "r.duckdb", "org/tiny", "--revisions", "step2,step6"
    )

    def missing(repo: str, revision: str) -> str:
        raise RevisionNotFoundError(
            f"{revision} not found", response=httpx.Response(404, request=httpx.Request("GET", "https://hub"))
        )

    monkeypatch.setattr(huggingface_hub, "snapshot_download", missing)
    with pytest.raises(InputError, match="org/tiny@step2: cannot download this revision"):
        resolve_targets("org/tiny", revisions=["step2"])


def test_the_same_weights_under_another_name_cost_nothing(
    trl_full: Path, trl_lora: Path, tmp_path: Path
) -> None:
    store = tmp_path / "results.duckdb"
    code, output = invoke(
        "eval", str(trl_full), "--base", BASE, "--steps", "4", *QUICK, "--store", str(store)
    )
    assert code == 0 and "4 rows computed" in output, output  # (base, step 4) x 2 prompts
    with ResultsStore(store, read_only=True) as results:
        (row,) = [r for r in results.models().to_pylist() if r["step"] == 4]
    state = json.loads((trl_full / "checkpoint-4" / "trainer_state.json").read_text())
    assert (row["epoch"], row["tokens_seen"]) == (1.0, state["num_input_tokens_seen"])
    folder = _snapshot_folder(trl_full, tmp_path / "snapshots")
    code, output = invoke("eval", str(folder), "--revisions", "step4", *QUICK, "--store", str(store))
    assert code == 0 and "0 rows computed" in output and "all rows stored already" in output, output

    code, output = invoke("eval", str(trl_lora), "--steps", "2", *QUICK, "--store", str(store))
    assert code == 0 and "2 rows computed" in output and "1 model(s) loaded" in output, output  # the adapter
    renamed = shutil.copytree(trl_lora / "checkpoint-2", tmp_path / "my-adapter")
    code, output = invoke("eval", str(renamed), *QUICK, "--store", str(store))
    assert code == 0 and "0 rows computed" in output, output


def test_bad_targets_are_one_line_and_write_nothing(trl_full: Path, trl_lora: Path, tmp_path: Path) -> None:
    store = tmp_path / "never.duckdb"
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "notes.txt").write_text("hi")
    output = refused(store, str(tmp_path / "nothing"))
    assert "matches no known checkpoint layout; looked for an sftscope run" in output
    assert "checkpoint-N/" in output and "global_step_N/" in output and "PEFT adapter" in output

    no_weights = shutil.copytree(trl_full, tmp_path / "no-weights")
    (no_weights / "checkpoint-4" / "model.safetensors").unlink()
    assert f"{no_weights / 'checkpoint-4'}: holds no model weights" in refused(
        store, str(no_weights), "--base", BASE
    )

    orphan = shutil.copytree(trl_lora, tmp_path / "orphan")
    for config in orphan.glob("checkpoint-*/adapter_config.json"):
        config.write_text(
            json.dumps({**json.loads(config.read_text()), "base_model_name_or_path": "/gone/base"})
        )
    output = refused(store, str(orphan))
    assert "the adapters' base model '/gone/base' cannot be found" in output and "--base" in output

    snapshots = _snapshot_folder(trl_full, tmp_path / "snapshots")
    assert "revision 'step9' does not exist" in refused(store, str(snapshots), "--revisions", "step9")

    mixed = shutil.copytree(trl_full, tmp_path / "mixed")
    template = mixed / "checkpoint-4" / "chat_template.jinja"
    template.write_text("{{ messages[0]['content'] }}")
    output = refused(store, str(mixed), "--base", BASE)
    assert "mixed tokenizers" in output and str(mixed / "checkpoint-4") in output
