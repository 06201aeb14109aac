"""Answer extraction from the final part of a response (reasoning is already stripped by the caller).

Every scorer reads answers through these functions, so "what counts as the answer" has one
definition. Priority, highest first:

1. the last ``\\boxed{...}`` / ``\\fbox{...}`` (the instruction suffix asks for it);
2. the last explicit answer phrase: "The answer is 73.", "Final answer: 5 cm";
3. scorer-specific fallbacks (math-verify's own search, the last line, ...).

Markdown bold is removed before phrases are searched: ``**73**`` and "The answer is **73**." must
not be false negatives (Math-Verify#76).
"""

from __future__ import annotations

import re

_BOXED = re.compile(r"\\(?:boxed|fbox)\s*\{")
_BOLD = re.compile(r"\*\*(.+?)\*\*|__(.+?)__", re.DOTALL)
# A connector is required: "the answer, we find" or "answers vary" are prose, not answers.
_ANSWER_PHRASE = re.compile(
    r"\banswer(?:\s+(?:is|would\s+be|should\s+be|will\s+be|must\s+be)\b|\s*[:=])"
    r"[ \t]*:?[ \t]*(?P<rest>[^\n]+)",
    re.IGNORECASE,
)
# A sentence ends at . ! ? followed by whitespace or the end; a decimal point is followed by a digit.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_MATH_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))


def last_boxed(text: str) -> str | None:
    """The content of the last ``\\boxed{}`` or ``\\fbox{}`` (nested and escaped braces handled).

    Only the last occurrence counts: when it is never closed (output cut off inside the answer) or
    empty, the result is None rather than an earlier, abandoned answer.
    """
    matches = list(_BOXED.finditer(text))
    if not matches:
        return None
    start = matches[-1].end()
    depth = 1
    i = start
    while i < len(text):
        char = text[i]
        if char == "\\":
            i += 2  # \{ and \} are literal braces, not grouping
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                content = text[start:i].strip()
                return content or None
        i += 1
    return None


def strip_bold(text: str) -> str:
    """Remove markdown bold markers, keeping their content: ``**73**`` -> ``73``."""
    return _BOLD.sub(lambda m: m.group(1) if m.group(1) is not None else m.group(2), text)


def strip_math_delimiters(text: str) -> str:
    """``$5$``, ``\\(5\\)``, ``\\[5\\]`` -> ``5``; other text unchanged."""
    text = text.strip()
    for left, right in _MATH_DELIMITERS:
        if len(text) > len(left) + len(right) and text.startswith(left) and text.endswith(right):
            return text[len(left) : -len(right)].strip()
    return text


def answer_phrase(text: str) -> str | None:
    """The answer stated by the last "answer is X" / "Answer: X" phrase, up to the end of its sentence."""
    text = strip_bold(text)
    # Overlapping search: in "Answer: the final answer is 5." the inner phrase is the last one.
    last, position = None, 0
    while (match := _ANSWER_PHRASE.search(text, position)) is not None:
        last, position = match, match.start() + 1
    if last is None:
        return None
    rest = last.group("rest")
    end = _SENTENCE_END.search(rest)
    answer = strip_math_delimiters(rest[: end.start()] if end else rest)
    return answer or None


def answer_span(text: str) -> str | None:
    """The explicitly marked answer: the last boxed content, else the last answer phrase."""
    boxed = last_boxed(text)
    if boxed is not None:
        return strip_bold(boxed).strip()
    return answer_phrase(text)


def last_line(text: str) -> str | None:
    """The last non-empty line, bold removed and trailing sentence period dropped."""
    lines = [line.strip() for line in strip_bold(text).splitlines() if line.strip()]
    if not lines:
        return None
    line = lines[-1]
    if line.endswith(".") and not line.endswith(".."):
        line = line[:-1].rstrip()
    return strip_math_delimiters(line) or None


def final_answer(text: str) -> str | None:
    """The marked answer span, else the last line: the reading for free-form (non-math) answers."""
    return answer_span(text) or last_line(text)
