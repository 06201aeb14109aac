"""The transformers backend: greedy output identical to `model.generate` and across batch sizes,
sampling reproducible per sample whatever shares its batch, stop strings and finish reasons."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from sftscope.data.records import Message
from sftscope.evaluate.backends import make_backend
from sftscope.evaluate.backends.base import Generation
from sftscope.evaluate.backends.engine import RunStats
from sftscope.evaluate.backends.kv_cache import ROOM
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


def _run(
    model_dir: Path,
    batch_size: int,
    sampling: SamplingSpec,
    seeds: list[int] | None = None,
    questions: list[str] = QUESTIONS,
    prefill_tokens: int = 1024,
) -> list:
    backend = make_backend("transformers", batch_size=batch_size, prefill_tokens=prefill_tokens)
    backend.load(str(model_dir))
    prompts = [backend.render([Message(role="user", content=q)], None) for q in questions]
    return backend.generate(prompts, sampling, seeds=seeds)


def test_greedy_is_deterministic_across_batch_sizes_and_equals_generate(model_dir: Path) -> None:
    sampling = SamplingSpec(max_new_tokens=24)
    by_size = {size: _run(model_dir, size, sampling) for size in (1, 3, 8)}
    texts = [g.text for g in by_size[8]]
    assert all([g.text for g in gens] == texts for gens in by_size.values())
    reasons = {g.finish_reason for g in by_size[8]}
    assert reasons == {"stop", "length"}  # rows end at different steps: the drop/refill paths ran
    assert all(g.output_tokens <= 24 and g.prompt_tokens > 0 for g in by_size[8])

    _assert_equals_generate(model_dir, QUESTIONS, by_size[8], 24)


def _assert_equals_generate(
    model_dir: Path, questions: list[str], generations: list, max_new_tokens: int
) -> None:
    """Each greedy output is what `model.generate` gives for its prompt alone."""
    from sftscope.evaluate.backends.hf import eos_ids
    from sftscope.models.loading import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(str(model_dir))
    stops = sorted(eos_ids(model, tokenizer))  # the tokenizer's EOS and the generation config's
    backend = make_backend("transformers")
    backend.load(str(model_dir))
    for question, generation in zip(questions, generations, strict=True):
        prompt = backend.render([Message(role="user", content=question)], None)
        ids = tokenizer(prompt, add_special_tokens=False).input_ids
        assert _generate_alone(model, tokenizer, ids, max_new_tokens, stops) == generation.text


def _generate_alone(
    model: object, tokenizer: object, ids: list[int], max_new_tokens: int, stops: list[int]
) -> str:
    """`model.generate`'s greedy text for one prompt, unbatched, stop tokens left out."""
    import torch

    out = model.generate(  # type: ignore[attr-defined]
        torch.tensor([ids]),
        max_new_tokens=max_new_tokens,
        do_sample=False,
        pad_token_id=tokenizer.pad_token_id,  # type: ignore[attr-defined]
        eos_token_id=stops,
    )
    new = [t for t in out[0, len(ids) :].tolist() if t not in stops]
    return tokenizer.decode(new, skip_special_tokens=False)  # type: ignore[attr-defined]


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


def test_greedy_equals_generate_through_cache_growth_and_refills(model_dir: Path) -> None:
    # Outputs longer than the cache's spare room (regrowth) and prompts 60 tokens apart, at batch
    # sizes that force refills of longer prompts into the running cache. (Shrinking needs a long row
    # to leave before shorter ones; test_kv_cache covers it.)
    questions = ["y" * 70, "Hi", "z" * 45, "Count", "w" * 64, "7*8"]
    sampling = SamplingSpec(max_new_tokens=2 * ROOM + 5)
    by_size = {size: _run(model_dir, size, sampling, questions=questions) for size in (2, 6)}
    assert [g.text for g in by_size[2]] == [g.text for g in by_size[6]]
    assert max(g.output_tokens for g in by_size[6]) > ROOM
    _assert_equals_generate(model_dir, questions, by_size[6], sampling.max_new_tokens)


def test_prefill_chunks_stay_within_the_token_budget_and_do_not_change_outputs(model_dir: Path) -> None:
    from sftscope.evaluate.backends.engine import prefill_chunks

    lengths = [3, 4, 4, 9, 10, 30, 31]
    ids = [[5] * n for n in lengths]
    chunks = prefill_chunks(list(range(len(ids))), ids, 20)
    assert [i for chunk in chunks for i in chunk] == list(range(len(ids)))  # every row, in order
    assert chunks == [[0, 1, 2], [3, 4], [5], [6]]  # a 4th row of 9 tokens: 4 x 9 = 36 > 20
    assert all(len(c) == 1 or max(lengths[i] for i in c) * len(c) <= 20 for c in chunks)

    greedy = SamplingSpec(max_new_tokens=24)
    sampled = SamplingSpec(max_new_tokens=24, temperature=0.8, top_p=0.9, seed=3)
    seeds = list(range(len(QUESTIONS)))
    for sampling in (greedy, sampled):
        outputs = {
            budget: [g.text for g in _run(model_dir, 8, sampling, seeds=seeds, prefill_tokens=budget)]
            for budget in (1, 40, 100_000)  # a row per forward, a few, all in one
        }
        assert outputs[1] == outputs[40] == outputs[100_000]


def _generate_with_stats(
    model_dir: Path, prefill_tokens: int, max_new_tokens: int
) -> tuple[list[Generation], RunStats]:
    """Every question in one batch: (the generations, the engine's `RunStats`)."""
    backend = make_backend("transformers", batch_size=len(QUESTIONS), prefill_tokens=prefill_tokens)
    backend.load(str(model_dir))
    prompts = [backend.render([Message(role="user", content=q)], None) for q in QUESTIONS]
    generations = backend.generate(prompts, SamplingSpec(max_new_tokens=max_new_tokens))
    return generations, backend.engine.stats  # type: ignore[attr-defined]


def test_run_stats_count_the_prefill_forwards_and_decode_steps(model_dir: Path) -> None:
    generations, stats = _generate_with_stats(model_dir, prefill_tokens=1, max_new_tokens=24)
    assert stats.prefill_forwards == len(QUESTIONS)  # a budget of 1 token: one prompt per forward
    # All rows start together; the batch decodes until its longest row ends (its first token came
    # from the prefill, an EOS ending it needs one more step).
    longest = max(g.output_tokens for g in generations)
    assert longest - 1 <= stats.decode_steps <= longest
    assert stats.prefill_s > 0 and stats.decode_s > 0
    # One prompt per forward: no padding. A row is in one decode forward per token after its first,
    # and in one more when an EOS (not counted in its output) ends it.
    assert stats.prefill_positions == sum(g.prompt_tokens for g in generations)
    assert stats.decode_positions == sum(
        g.output_tokens - 1 + (g.finish_reason == "stop") for g in generations
    )
    assert {g.finish_reason for g in generations} == {"stop", "length"}  # both endings are counted


def test_run_stats_count_the_padding_of_a_shared_prefill(model_dir: Path) -> None:
    generations, stats = _generate_with_stats(model_dir, prefill_tokens=100_000, max_new_tokens=4)
    assert stats.prefill_forwards == 1
    assert stats.prefill_positions == len(QUESTIONS) * max(g.prompt_tokens for g in generations)


def test_an_eager_attention_model_gets_an_additive_mask_and_equals_generate(model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sftscope.evaluate.backends.engine import Engine

    model = AutoModelForCausalLM.from_pretrained(model_dir, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    prompts = [tokenizer(q, add_special_tokens=False).input_ids for q in ("Hi", "x" * 30, "Count to ten")]
    engine = Engine(model, tokenizer, batch_size=2, eos_ids={tokenizer.eos_token_id})  # forces a refill
    texts: dict[int, str] = {}
    engine.run(
        prompts, SamplingSpec(max_new_tokens=12), [0] * 3, [False] * 3, lambda i, g: texts.update({i: g.text})
    )
    for i, ids in enumerate(prompts):
        assert _generate_alone(model, tokenizer, ids, 12, [tokenizer.eos_token_id]) == texts[i]


def test_attention_without_a_4d_mask_path_is_refused(model_dir: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sftscope.errors import SftscopeError
    from sftscope.evaluate.backends.engine import Engine

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    model.config._attn_implementation = "flash_attention_2"  # what a GPU user might load
    with pytest.raises(SftscopeError, match=r"sdpa or eager attention.*'flash_attention_2'.*--backend vllm"):
        Engine(model, AutoTokenizer.from_pretrained(model_dir), batch_size=2, eos_ids={0})


def test_a_model_saved_without_a_pad_token_is_evaluated_unchanged(model_dir: Path, tmp_path: Path) -> None:
    # A base such as SmolLM2 has no pad token; adding one would add an output row it could sample.
    import shutil

    from transformers import AutoTokenizer

    from sftscope.evaluate.backends.hf import eos_ids
    from sftscope.models.loading import load_model

    bare = tmp_path / "no-pad"
    shutil.copytree(model_dir, bare)
    tokenizer = AutoTokenizer.from_pretrained(bare)
    tokenizer.pad_token = None
    tokenizer.save_pretrained(bare)
    vocab = load_model(str(bare)).get_input_embeddings().num_embeddings

    backend = make_backend("transformers", batch_size=8)
    backend.load(str(bare))
    assert backend.tokenizer.pad_token is None  # type: ignore[attr-defined]
    assert backend.model.get_input_embeddings().num_embeddings == vocab  # type: ignore[attr-defined]
    prompts = [backend.render([Message(role="user", content=q)], None) for q in QUESTIONS]
    generations = backend.generate(prompts, SamplingSpec(max_new_tokens=16))  # padded prefill

    model = load_model(str(bare))
    stops = sorted(eos_ids(model, tokenizer))
    tokenizer.pad_token_id = stops[0]  # `generate` wants one for its own bookkeeping
    for prompt, generation in zip(prompts, generations, strict=True):
        ids = tokenizer(prompt, add_special_tokens=False).input_ids
        assert _generate_alone(model, tokenizer, ids, 16, stops) == generation.text
