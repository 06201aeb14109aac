"""Answer extraction from the final part of a response (reasoning is already stripped by the caller).

Every scorer reads answers through these functions, so "what counts as the answer" has one
definition. Priority, highest first:

1. the last ``\\boxed{...}`` / ``\\fbox{...}`` (the instruction suffix asks for it);
2. the last explicit answer phrase: "The answer is 73.", "Final answer: 5 cm";
3. scorer-specific fallbacks (math-verify's own search, the last line, ...).

Markdown bold is removed before phrases are searched: ``**73**`` and "The answer is **73**." must
not be false negatives (Math-Verify#76). So are lead-ins such as "To find the answer:", which
introduce the working rather than state an answer.

For math, a phrase is prose around its math ("The answer is therefore 5 marbles."): `math_span`
reads the math out of it, because math-verify would read the words as products of symbols.
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
# "To find the answer: we add 2 and 3." is followed by working, not by the answer; it opens a
# sentence. Mid-sentence, "we multiply 6 by 7 to get the answer: 42" does state the answer.
_LEAD_IN = re.compile(
    r"(?:^|(?<=[.!?\n])|(?<=[.!?]\s))\s*(?:first,?\s+)?(?:to|let'?s|let\s+us)\s+"
    r"(?:find|get|reach|obtain|compute|calculate|determine|work\s+out|figure\s+out)\s+"
    r"(?:the\s+|an\s+|our\s+)?(?:final\s+)?answer\b",
    re.IGNORECASE,
)
# A sentence ends at . ! ? followed by whitespace or the end; a decimal point is followed by a digit.
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_MATH_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
_DELIMITED_MATH = re.compile(r"(?<!\\)\$|\\[(\[]")  # `\$` is a currency sign, not a delimiter
# Commands with their arguments are LaTeX, whatever letters they hold: `\frac`, `\text{ cm}`.
_LATEX_COMMAND = re.compile(r"\\[A-Za-z]+(?:\s*\{[^{}]*\})*")
# A prose word: two letters or more, standing alone ("2ab" is a product), not a term of a sum
# ("a^2 + ab"), not a function name, and not "and"/"or", which math-verify reads as list commas.
_PROSE_WORD = re.compile(
    r"(?<![\w\\])(?<![-+*/^=])(?<![-+*/^=]\s)(?!(?:and|or|sin|cos|tan|log|ln|exp|sqrt|pi)(?!\w))"
    r"[A-Za-z]{2,}(?!\w)",
    re.IGNORECASE,
)
_HAS_MATH = re.compile(r"[\d\\]")
# Words that may lead up to the number of a prose answer without changing it.
_LEADING_WORDS = frozenset(
    [
        "therefore",
        "thus",
        "hence",
        "so",
        "then",
        "now",
        "approximately",
        "about",
        "around",
        "roughly",
        "nearly",
        "almost",
        "exactly",
        "just",
        "simply",
        "clearly",
        "indeed",
        "actually",
        "equal",
        "equals",
        "to",
        "be",
        "is",
        "it",
        "its",
        "the",
        "final",
        "value",
        "result",
        "number",
        "total",
        "sum",
        "we",
        "get",
        "obtain",
        "have",
        "found",
    ]
)
# Words right after a number that make it part of a larger expression or quantity.
_CHANGING_WORDS = frozenset(
    [
        "times",
        "divided",
        "over",
        "plus",
        "minus",
        "mod",
        "modulo",
        "choose",
        "squared",
        "cubed",
        "to",
        "power",
        "factorial",
        "point",
        "hundred",
        "hundreds",
        "thousand",
        "thousands",
        "million",
        "millions",
        "billion",
        "billions",
        "trillion",
        "dozen",
        "dozens",
    ]
)
# A second number in the answer's clause ("7 dollars and 50 cents"); an exponent ("ft^2") is not one.
_ANOTHER_NUMBER = re.compile(r"(?<![\^_\d])\d")
# Where the explanation of a prose answer starts: its numbers are not part of the answer.
_CLAUSE_BREAK = re.compile(r",|;|\b(?:which|because|since|as|where|when|i\.e|e\.g)\b", re.IGNORECASE)
_OPEN_LIST = re.compile(r"\b(?:and|or)$", re.IGNORECASE)


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


def drop_lead_ins(text: str) -> str:
    """Remove lead-ins ("To find the answer"), so no search takes the working after them as the answer."""
    return _LEAD_IN.sub("", text)


def _answer_sentence(text: str) -> str | None:
    """The rest of the sentence after the last "answer is" / "Answer:" phrase, as written."""
    text = drop_lead_ins(strip_bold(text))
    # Overlapping search: in "Answer: the final answer is 5." the inner phrase is the last one.
    last, position = None, 0
    while (match := _ANSWER_PHRASE.search(text, position)) is not None:
        last, position = match, match.start() + 1
    if last is None:
        return None
    rest = last.group("rest")
    end = _SENTENCE_END.search(rest)
    return rest[: end.start()] if end else rest


def answer_phrase(text: str) -> str | None:
    """The answer stated by the last "answer is X" / "Answer: X" phrase, up to the end of its sentence."""
    sentence = _answer_sentence(text)
    if sentence is None:
        return None
    return strip_math_delimiters(sentence) or None


def opening_math(answer: str) -> str:
    """The math that a prose answer opens with: "therefore 5" -> "5", "42, which is 6 times 7" -> "42".

    Prose splits the answer into pieces; the first piece holding a digit or a LaTeX command is the
    answer when the words before it only lead up to it ("therefore", "approximately") and what
    follows explains it (a unit, "which is ..."). Anything else is returned as it is, to be graded
    whole (and so, as a rule, wrong), since reading one number out of it would be a guess that can
    be right by accident:

    - a computation in words ("6 times 7 = 42") is graded on what follows its last "=" (an
      assignment such as "x = 5 when y = 2" stays as it is);
    - a word that changes the number before it ("negative 3", "not 5 but 6", "half of 10") or
      after it ("12 divided by 4", "3 million", "2 to the power of 3") keeps the answer whole;
    - so do two numbers in one clause ("7 dollars and 50 cents", "5, or maybe 6").
    """
    masked = _LATEX_COMMAND.sub(lambda command: "\\" * len(command[0]), answer)
    words = list(_PROSE_WORD.finditer(masked))
    if not words:
        return answer
    head = _CLAUSE_BREAK.split(masked, maxsplit=1)[0]
    if "=" in head and _PROSE_WORD.search(head[: head.rindex("=")]):  # "6 times 7 = 42", not "x = 5"
        return opening_math(answer[head.rindex("=") + 1 :].strip())
    starts = [0] + [word.end() for word in words]
    ends = [word.start() for word in words] + [len(answer)]
    pieces = [answer[start:end].strip(" \t,;:") for start, end in zip(starts, ends, strict=True)]
    first = next((i for i, piece in enumerate(pieces) if _HAS_MATH.search(piece)), None)
    if first is None or _OPEN_LIST.search(pieces[first]):
        return answer
    before = {word.group().lower() for word in words[:first]}
    after = words[first].group().lower() if first < len(words) else None
    clause = _CLAUSE_BREAK.split(masked[ends[first] :], maxsplit=1)[0]
    if before - _LEADING_WORDS or after in _CHANGING_WORDS or _ANOTHER_NUMBER.search(clause):
        return answer
    return pieces[first]


def _boxed_span(text: str) -> str | None:
    boxed = last_boxed(text)
    return None if boxed is None else strip_bold(boxed).strip()


def answer_span(text: str) -> str | None:
    """The explicitly marked answer: the last boxed content, else the last answer phrase."""
    boxed = _boxed_span(text)
    return boxed if boxed is not None else answer_phrase(text)


def math_span(text: str) -> str | None:
    """`answer_span` for math: a phrase without delimited math gives the math its prose opens with.

    Delimited math ("$5$ cm") is left to math-verify, which finds it; boxed content is math as it is.
    """
    boxed = _boxed_span(text)
    if boxed is not None:
        return boxed
    sentence = _answer_sentence(text)
    if sentence is None:
        return None
    answer = strip_math_delimiters(sentence)
    if not _DELIMITED_MATH.search(sentence):
        answer = opening_math(answer)
    return answer or None


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
