"""Stop strings never fire inside <think>, and incremental detokenization matches a full decode."""

from __future__ import annotations

from pathlib import Path

from sftscope.evaluate.backends.stops import StopWatcher, find_stop, inside_think, opens_think


def test_stop_inside_think_is_ignored() -> None:
    text = "<think>Question: is it? Question: no</think> answer Question: next"
    assert find_stop(text, ["Question:"], think_open=False) == text.index("Question: next")
    assert find_stop("no stops here", ["Question:"], think_open=False) is None
    # A prompt that pre-fills <think> leaves the tag out of the generated text.
    assert find_stop("Q: a</think>Q: b", ["Q:"], think_open=True) == len("Q: a</think>")
    assert find_stop("Q: a</think>Q: b", ["Q:"], think_open=False) == 0
    assert find_stop("<think>x Q: y", ["Q:"], think_open=False) is None  # still thinking: never stops


def test_earliest_of_several_stops_and_think_state() -> None:
    assert find_stop("abc END xyz STOP", ["STOP", "END"], think_open=False) == 4
    assert inside_think("<think>a</think><think>b", 24, think_open=False)
    assert opens_think("<|assistant|>\n<think>\n") and not opens_think("<think>x</think>")


def test_watcher_text_equals_full_decode_and_finds_the_stop(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    text = "<think>think END inside</think>answer END tail"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    watcher = StopWatcher(tokenizer, ["END"], think_open=False)
    found = None
    for token in ids:
        found = watcher.push(token)
        if found is not None:
            break
    assert found == text.index("END tail")
    assert watcher.text == tokenizer.decode(watcher.ids, skip_special_tokens=False)
    assert watcher.text[:found] == "<think>think END inside</think>answer "
