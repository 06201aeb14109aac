"""The loss is the token-mean NLL over response tokens (EOS included), the same packed or padded, and
packed examples never see each other."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sftscope.train.batching import collate_packed, collate_padded
from sftscope.train.encode import encode_example
from sftscope.train.loop import train
from sftscope.train.loss import CompletionLoss, batch_loss, chunked_head_sums
from sftscope.train.metrics import read_metrics

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import toy_config, toy_data_dir, toy_examples


def _setup(tiny_model_dir: Path, count: int = 3):
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir).eval()
    encoded = [encode_example(tokenizer, e, suffix=None) for e in toy_examples(count)]
    return tokenizer, model, encoded


def test_loss_is_the_hand_computed_masked_nll(tiny_model_dir: Path) -> None:
    tokenizer, model, encoded = _setup(tiny_model_dir)
    total, count = 0.0, 0
    for item in encoded:
        # Each example alone through the plain HF forward; sum -log p(token | prefix) over the completion.
        with torch.no_grad():
            logits = model(torch.tensor([item.input_ids])).logits[0]
        logp = torch.log_softmax(logits.double(), dim=-1)
        for position in range(item.prompt_len, len(item)):
            total -= float(logp[position - 1, item.input_ids[position]])
            count += 1
        assert item.input_ids[-1] == tokenizer.eos_token_id  # EOS is the last trained token
        assert item.input_ids[item.prompt_len - 1] != tokenizer.eos_token_id
    with torch.no_grad():
        nll, _ = batch_loss(CompletionLoss(model), collate_packed(encoded))
    assert count == sum(item.num_targets for item in encoded)
    assert abs(float(nll) / count - total / count) < 1e-5


def test_packed_and_padded_give_the_same_loss_entropy_and_gradients(tiny_model_dir: Path) -> None:
    tokenizer, model, encoded = _setup(tiny_model_dir, count=5)
    module = CompletionLoss(model)
    results = []
    for batch in (collate_packed(encoded), collate_padded(encoded, tokenizer.pad_token_id)):
        model.zero_grad()
        nll, entropy = batch_loss(module, batch)
        nll.backward()
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        results.append((float(nll.detach()), float(entropy), grads))
    (nll_a, ent_a, grad_a), (nll_b, ent_b, grad_b) = results
    assert abs(nll_a - nll_b) < 1e-4 * abs(nll_a)
    assert abs(ent_a - ent_b) < 1e-4 * abs(ent_a)
    assert torch.allclose(grad_a, grad_b, atol=1e-6, rtol=1e-4)


def _logits(model, batch) -> torch.Tensor:
    with torch.no_grad():
        return model(
            input_ids=batch.input_ids, position_ids=batch.position_ids, attention_mask=None, use_cache=False
        ).logits[0]


def test_no_packed_example_attends_to_another(tiny_model_dir: Path) -> None:
    _, model, encoded = _setup(tiny_model_dir)
    a, b, c = encoded
    changed = type(a)([(t + 7) % 90 + 8 for t in a.input_ids], a.prompt_len)  # other ordinary chars
    span_b = slice(len(a), len(a) + len(b))
    before = _logits(model, collate_packed([a, b, c]))
    after = _logits(model, collate_packed([changed, b, c]))
    assert not torch.allclose(before[: len(a)], after[: len(a)])  # the perturbation is real
    assert torch.allclose(before[span_b], after[span_b], atol=1e-6)
    alone = _logits(model, collate_packed([b]))
    assert torch.allclose(before[span_b], alone, atol=1e-5)

    # Control: without position-id restarts the same rows do leak, so the check above can fail.
    leaky = collate_packed([a, b, c])
    leaky.position_ids = torch.arange(leaky.input_ids.shape[1])[None]
    leaky_changed = collate_packed([changed, b, c])
    leaky_changed.position_ids = leaky.position_ids
    assert not torch.allclose(_logits(model, leaky)[span_b], _logits(model, leaky_changed)[span_b], atol=1e-4)


def test_step_losses_do_not_depend_on_the_micro_batch_split(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = toy_data_dir(tmp_path / "data", count=12, long_every=4)
    runs = []
    for name, budget, packing in (
        ("one-pass", 100_000, True),
        ("many-passes", 120, True),
        ("padded", 200, False),
    ):
        config = toy_config(tiny_model_dir, data, tmp_path / name, batch_size=6, steps=3, max_length=512)
        runs.append(
            read_metrics(train(config.model_copy(update={"micro_batch_tokens": budget, "packing": packing})))
        )
    assert runs[0][0]["micro_batches"] == 1 and runs[1][0]["micro_batches"] > 2
    for rows in runs[1:]:
        for a, b in zip(runs[0], rows, strict=True):
            assert abs(a["loss"] - b["loss"]) < 1e-5 and abs(a["grad_norm"] - b["grad_norm"]) < 1e-5


def test_chunked_loss_equals_the_whole_loss_with_gradients(tiny_model_dir: Path) -> None:
    _, model, encoded = _setup(tiny_model_dir, count=5)
    batch = collate_packed(encoded)
    count = sum(item.num_targets for item in encoded)
    results = []
    for chunk in (None, 7):  # 7 response tokens at a time: many chunks, the last one short
        model.zero_grad()
        nll, entropy = batch_loss(CompletionLoss(model, chunk), batch)
        (nll / count).backward()  # the token mean, as the loop's step loss
        grads = torch.cat([p.grad.flatten() for p in model.parameters()])
        results.append((float(nll.detach()), float(entropy), grads))
    (nll_a, ent_a, grad_a), (nll_b, ent_b, grad_b) = results
    assert count > 5 * 7
    assert abs(nll_a - nll_b) / count <= 1e-6 and abs(ent_a - ent_b) / count <= 1e-6
    assert (grad_a - grad_b).abs().max() <= 1e-6


def _resident(field: str) -> int:
    text = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in text.splitlines() if line.startswith(field + ":"))) * 1024


def _peak_bytes(step: Callable[[], None]) -> int:
    """Resident-memory high-water mark of `step` above the memory resident before it (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
    before = _resident("VmRSS")
    step()
    return _resident("VmHWM") - before


def measure_chunked_and_whole(vocab: int, tokens: int, chunk: int) -> None:
    """Run in a fresh process: prints the peak bytes of the loss step unchunked, then chunked."""
    torch.manual_seed(0)
    head = torch.nn.Linear(16, vocab, bias=False)
    hidden = torch.randn(tokens, 16, requires_grad=True)
    targets = torch.randint(0, vocab, (tokens,))

    def step(size: int | None, rows: int = tokens) -> None:
        nll, _ = chunked_head_sums(head, hidden[:rows], targets[:rows], None, size)
        nll.backward()

    step(None, 64), step(chunk, 64)  # torch's own first-call allocations are not the loss's
    print(_peak_bytes(lambda: step(None)), _peak_bytes(lambda: step(chunk)))


def test_chunked_loss_holds_one_chunk_of_logits_at_a_time_forward_and_backward() -> None:
    vocab, tokens, chunk = 8000, 2048, 32
    # Every tensor of 128 kB or more gets its own mapping, returned when freed: the resident memory
    # then follows the live tensors instead of the allocator's heap, which grows once and is reused.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "131072", "OMP_NUM_THREADS": "1"}
    code = (
        f"import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import test_loss; "
        f"test_loss.measure_chunked_and_whole({vocab}, {tokens}, {chunk})"
    )
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    whole, chunked = (int(value) for value in done.stdout.split())
    logits_bytes = tokens * vocab * 4
    assert whole > 3 * logits_bytes  # logits, log-softmax and their gradients, all at once
    assert chunked < 8 * chunk * vocab * 4  # a few chunk x vocab tensors, never the whole
