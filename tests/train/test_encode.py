"""Tokenization boundaries and the max-length policies, with their counts."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from sftscope.data.records import user_example
from sftscope.errors import InputError
from sftscope.train.encode import Encoded, apply_length_policy, encode_dataset, encode_example, load_examples

sys.path.insert(0, str(Path(__file__).parent))  # --import-mode=importlib: shared helpers by path
from test_train_support import toy_data_dir


def test_prompt_is_the_chat_template_and_the_completion_ends_with_eos(tiny_model_dir: Path) -> None:
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    item = encode_example(tokenizer, user_example("2+2?", reasoning="add", final="4"), suffix="Be brief.")
    prompt = tokenizer.decode(item.input_ids[: item.prompt_len])
    assert prompt == "<|user|>\n2+2?\nBe brief.<|end|>\n<|assistant|>\n"
    assert tokenizer.decode(item.input_ids[item.prompt_len :]) == "<think>\nadd\n</think>\n\n4</s>"


def _items() -> tuple[list[Encoded], list[str]]:
    items = [Encoded(list(range(5)), 2), Encoded(list(range(12)), 3), Encoded(list(range(9)), 8)]
    return items, ["short", "long", "long-prompt"]


def test_truncate_cuts_the_completion_tail_and_counts() -> None:
    items, ids = _items()
    kept, report = apply_length_policy(items[:2], ids[:2], 8, "truncate", "data.jsonl")
    assert [len(k) for k in kept] == [5, 8] and kept[1].input_ids == list(range(8))
    assert (report.examples, report.kept, report.truncated, report.dropped) == (2, 2, 1, 0)
    assert report.truncated_ids == ["long"]
    with pytest.raises(InputError, match="prompt alone") as info:
        apply_length_policy(items, ids, 8, "truncate", "data.jsonl")
    assert info.value.field == "long-prompt"
    # The remedy is one the policy in force is not: truncate cannot cut a prompt, drop skips it.
    assert "set length_policy=drop" in info.value.reason and "truncate or drop" not in info.value.reason


def test_drop_leaves_long_examples_out_and_counts() -> None:
    items, ids = _items()
    kept, report = apply_length_policy(items, ids, 8, "drop", "data.jsonl")
    assert kept == [items[0]]
    assert (report.kept, report.dropped, report.dropped_ids) == (1, 2, ["long", "long-prompt"])


def test_error_names_the_example() -> None:
    items, ids = _items()
    with pytest.raises(InputError, match="12 tokens") as info:
        apply_length_policy(items, ids, 10, "error", "data.jsonl")
    assert info.value.field == "long"
    assert "length_policy=error; set length_policy=truncate or drop" in info.value.reason
    with pytest.raises(InputError, match="no example fits"):
        apply_length_policy(items, ids, 2, "drop", "data.jsonl")


def test_a_data_directory_or_a_file(tiny_model_dir: Path, tmp_path: Path) -> None:
    data = toy_data_dir(tmp_path / "data", count=6)
    assert len(load_examples(data)) == len(load_examples(data / "train.jsonl")) == 6
    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    encoded, _ = encode_dataset(
        tokenizer, load_examples(data), suffix=None, max_length=10_000, policy="error", source="x"
    )
    cut = sorted(len(item) for item in encoded)[3]
    _, report = encode_dataset(
        tokenizer, load_examples(data), suffix=None, max_length=cut, policy="drop", source="x"
    )
    assert report.examples == 6 and report.kept >= 4 and report.kept + report.dropped == 6
    with pytest.raises(InputError, match="does not exist"):
        load_examples(tmp_path / "nowhere")
