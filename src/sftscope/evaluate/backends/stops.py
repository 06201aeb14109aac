"""Stop strings that never fire inside a <think> block, and incremental detokenization to find them.

lm-eval checks stop strings by re-decoding the tail of every row for every stop string at every
step, and lets them fire inside the reasoning (PR #3700). Here a row's text grows by the few
characters of its newest token (decoded from a short window of ids, as vLLM/TGI do), and only the
new characters plus a stop string's length are searched.
"""

from __future__ import annotations

from typing import Any

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"


def opens_think(prompt: str) -> bool:
    """True when the prompt ends inside a think block (templates that pre-fill '<think>\\n')."""
    return prompt.rfind(THINK_OPEN) > prompt.rfind(THINK_CLOSE)


def inside_think(text: str, position: int, think_open: bool) -> bool:
    """Whether `position` of a generated text lies inside a think block (the prompt may have opened it)."""
    opened, closed = text.rfind(THINK_OPEN, 0, position), text.rfind(THINK_CLOSE, 0, position)
    if opened == -1 and closed == -1:
        return think_open
    return opened > closed


def find_stop(text: str, stops: list[str], think_open: bool, start: int = 0) -> int | None:
    """Earliest position >= start where a stop string begins outside a think block, or None."""
    best: int | None = None
    for stop in stops:
        position = text.find(stop, start)
        while position != -1 and (best is None or position < best):
            if not inside_think(text, position, think_open):
                best = position
                break
            position = text.find(stop, position + 1)
    return best


class StopWatcher:
    """One generating row: its text, decoded incrementally, and the position of a stop string."""

    def __init__(self, tokenizer: Any, stops: list[str], think_open: bool) -> None:
        self.tokenizer = tokenizer
        self.stops = stops
        self.think_open = think_open
        self.longest = max(len(s) for s in stops)
        self.ids: list[int] = []
        self.text = ""
        # ids[prefix:read] were decoded last time; decoding from `prefix` keeps the tokenizer's
        # context (leading spaces, multi-byte characters) without decoding the whole row.
        self.prefix = 0
        self.read = 0

    def push(self, token: int) -> int | None:
        """Add one generated token; return the text position where a stop string begins, if one did."""
        self.ids.append(token)
        before = self.tokenizer.decode(self.ids[self.prefix : self.read], skip_special_tokens=False)
        after = self.tokenizer.decode(self.ids[self.prefix :], skip_special_tokens=False)
        if len(after) <= len(before) or after.endswith("\ufffd"):
            return None  # an incomplete multi-byte character: wait for the next token
        new = after[len(before) :]
        self.prefix, self.read = self.read, len(self.ids)
        start = max(0, len(self.text) - self.longest + 1)
        self.text += new
        return find_stop(self.text, self.stops, self.think_open, start)
