"""Examples -> token ids with a trained-span marker, under an explicit max-length policy.

The prompt goes through the chat template (plus the instruction suffix) and is masked; the completion
is the response plus EOS, and every completion token, EOS included, is trained.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sftscope.data.chat import render_example
from sftscope.data.io import read_records
from sftscope.data.records import Example
from sftscope.errors import InputError
from sftscope.train.config import TrainConfig


@dataclass(frozen=True)
class Encoded:
    """One example as token ids: the first `prompt_len` are the prompt (masked), the rest are trained."""

    input_ids: list[int]
    prompt_len: int

    def __len__(self) -> int:
        return len(self.input_ids)

    @property
    def num_targets(self) -> int:
        """Trained positions: every completion token (the very first token of a row is never predicted)."""
        return len(self.input_ids) - max(self.prompt_len, 1)


@dataclass
class LengthReport:
    """What the max-length policy did, reported to the user and saved with the run."""

    examples: int = 0
    kept: int = 0
    truncated: int = 0
    dropped: int = 0
    truncated_ids: list[str] = field(default_factory=list)
    dropped_ids: list[str] = field(default_factory=list)


def data_file(data: str | Path) -> Path:
    """A data directory means its train.jsonl; a file is used as it is."""
    path = Path(data)
    return path / "train.jsonl" if path.is_dir() else path


def load_examples(data: str | Path) -> list[Example]:
    """The training examples, from a data directory or a .jsonl/.parquet file."""
    path = data_file(data)
    records = read_records(path).records
    if not records:
        raise InputError(str(path), "no training examples")
    return records


def encode_example(tokenizer: Any, example: Example, suffix: str | None) -> Encoded:
    """Tokenize prompt and completion separately, so the boundary is exact whatever the tokenizer merges."""
    prompt, completion = render_example(tokenizer, example, suffix)
    # The chat template already holds any BOS/special tokens; adding them again would double them.
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
    if not completion_ids:
        raise InputError(example.source or "data", "empty completion after tokenization", field=example.id)
    return Encoded(input_ids=list(prompt_ids) + list(completion_ids), prompt_len=len(prompt_ids))


def apply_length_policy(
    encoded: list[Encoded], ids: list[str], max_length: int, policy: str, source: str
) -> tuple[list[Encoded], LengthReport]:
    """Keep, right-truncate or drop over-long examples (or stop), and count what happened.

    Truncation cuts the completion's tail (as the reference study did); an example whose prompt alone
    leaves no room for a completion token cannot be truncated and is an error under every policy but drop.
    """
    report = LengthReport(examples=len(encoded))
    kept: list[Encoded] = []
    for item, example_id in zip(encoded, ids, strict=True):
        if len(item) <= max_length:
            kept.append(item)
            continue
        if policy == "drop":
            report.dropped += 1
            report.dropped_ids.append(example_id)
            continue
        if policy == "truncate" and item.prompt_len < max_length:
            kept.append(Encoded(item.input_ids[:max_length], item.prompt_len))
            report.truncated += 1
            report.truncated_ids.append(example_id)
            continue
        if policy == "truncate":  # only the completion can be cut
            problem = f"its prompt alone ({item.prompt_len} tokens) leaves no room for a completion token"
            remedy = "length_policy=truncate cuts completions only; set length_policy=drop to skip it"
        else:
            problem = "it is longer"
            remedy = "length_policy=error; set length_policy=truncate or drop"
        raise InputError(
            source,
            f"example is {len(item)} tokens and {problem} under max_length={max_length} "
            f"({remedy}, or raise max_length)",
            field=example_id,
        )
    report.kept = len(kept)
    if not kept:
        raise InputError(source, f"no example fits max_length={max_length}")
    return kept, report


def encode_dataset(
    tokenizer: Any, examples: list[Example], *, suffix: str | None, max_length: int, policy: str, source: str
) -> tuple[list[Encoded], LengthReport]:
    """Encode every example, then apply the max-length policy."""
    encoded = [encode_example(tokenizer, example, suffix) for example in examples]
    return apply_length_policy(encoded, [e.id for e in examples], max_length, policy, source)


def encode_training_data(tokenizer: Any, config: TrainConfig) -> tuple[list[Encoded], LengthReport]:
    """A run's training data, encoded as the config says (suffix, max length and its policy): what
    both training engines train on."""
    return encode_dataset(
        tokenizer,
        load_examples(config.data),
        suffix=config.suffix,
        max_length=config.max_length,
        policy=config.length_policy,
        source=str(data_file(config.data)),
    )
