"""The transformers backend: greedy output identical to `model.generate` and across batch sizes,
sampling reproducible per sample whatever shares its batch, stop strings and finish reasons."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sftscope.data.records import Message
from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.spec import SamplingSpec

sys.path.insert(0, str(Path(__file__).parents[1] / "fixtures" / "eval"))
from fake_run import varied

QUESTIONS = [
    "What is 2+2?",
    "Hi",
    "Spell backwards: apple, pear",
    "x" * 30,
    "abc",
    "Count to ten",
    "7*8",
    "Tell",
]


@pytest.fixture(scope="module")
def model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return varied(tiny_model_dir, tmp_path_factory.mktemp("varied"), seed=1)


def _run(model_dir: Path, batch_size: int, sampling: SamplingSpec, seeds: list[int] | None = None) -> list:
    backend = make_backend("transformers", batch_size=batch_size)
    backend.load(str(model_dir))
    prompts = [backend.render([Message(role="user", content=q)], None) for q in QUESTIONS]
    return backend.generate(prompts, sampling, seeds=seeds)


def test_greedy_is_deterministic_across_batch_sizes_and_equals_generate(model_dir: Path) -> None:
    sampling = SamplingSpec(max_new_tokens=24)
    by_size = {size: _run(model_dir, size, sampling) for size in (1, 3, 8)}
    texts = [g.text for g in by_size[8]]
    assert all([g.text for g in gens] == texts for gens in by_size.values())
    reasons = {g.finish_reason for g in by_size[8]}
    assert reasons == {"stop", "length"}  # rows end at different steps: the drop/refill paths ran
    assert all(g.output_tokens <= 24 and g.prompt_tokens > 0 for g in by_size[8])

    from sftscope.evaluate.backends.hf import eos_ids
    from sftscope.models.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    stops = sorted(eos_ids(model, tokenizer))  # the tokenizer's EOS and the generation config's
    backend = make_backend("transformers")
    backend.load(str(model_dir))
    for question, generation in zip(QUESTIONS, by_size[8], strict=True):
        prompt = backend.render([Message(role="user", content=question)], None)
        ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")
        out = model.generate(
            **ids, max_new_tokens=24, do_sample=False, pad_token_id=tokenizer.pad_token_id, eos_token_id=stops
        )
        new = [t for t in out[0, ids.input_ids.shape[1] :].tolist() if t not in stops]
        assert tokenizer.decode(new, skip_special_tokens=False) == generation.text


def test_sampling_is_reproducible_per_sample(model_dir: Path) -> None:
    sampling = SamplingSpec(temperature=0.8, top_p=0.9, max_new_tokens=16, n=2)
    seeds = list(range(100, 100 + len(QUESTIONS)))
    first, second = _run(model_dir, 2, sampling, seeds), _run(model_dir, 8, sampling, seeds)
    assert [g.text for g in first] == [g.text for g in second]
    other = _run(model_dir, 8, sampling, [s + 1 for s in seeds])
    assert [g.text for g in other] != [g.text for g in first]


def test_stop_strings_cut_the_text(model_dir: Path) -> None:
    plain = _run(model_dir, 8, SamplingSpec(max_new_tokens=24))
    # Stop at the 3rd character of a long output: the text ends right before it.
    index = max(range(len(plain)), key=lambda i: len(plain[i].text))
    stop = plain[index].text[2:4]
    cut = _run(model_dir, 8, SamplingSpec(max_new_tokens=24, stop=[stop]))
    assert (
        cut[index].finish_reason == "stop"
        and cut[index].text == plain[index].text[: plain[index].text.find(stop)]
    )


def test_generate_needs_a_loaded_model() -> None:
    with pytest.raises(RuntimeError, match="no model loaded"):
        make_backend("transformers").render([Message(role="user", content="x")], None)


def test_sliding_window_models_are_refused(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoTokenizer, MistralConfig, MistralForCausalLM

    from sftscope.errors import SftscopeError
    from sftscope.evaluate.backends.engine import Engine

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    config = MistralConfig(
        vocab_size=len(tokenizer),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=2,
        sliding_window=4,
    )
    torch.manual_seed(0)
    engine = Engine(MistralForCausalLM(config), tokenizer, batch_size=2, eos_ids={tokenizer.eos_token_id})
    with pytest.raises(SftscopeError, match=r"full-attention models only.*--backend vllm"):
        engine.run([[5, 6, 7]], SamplingSpec(max_new_tokens=2), [0], [False], lambda i, g: None)
