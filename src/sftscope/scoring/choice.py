"""Multiple-choice letter extraction: explicit statements first, stray capitals never.

"I think A is wrong, so B" names two letters and states neither as the answer; reading the last
capital letter of the prose would be a guess. So a letter counts only when it is *marked*:

1. explicitly, the last of: an answer statement ("Answer: C", "the correct answer is (c)",
   "I choose B"), a self-correction ("No wait, it's B", "Actually, it's B", "Correction: B"; not a
   cleft sentence, "Actually, it is B that most pick") or the last ``\\boxed{C}``, whichever comes
   later in the text;
2. else a line that is only a letter ("(C)", "C.", "**C**"), or a last line that opens with one
   ("C. 42", "(C) 42"), or a text that ends in a conclusion ("..., so B.");
3. else the last bold letter (``**C**`` inside a sentence).

A letter after a statement may be an English word: a lower-case one that does not end its clause
("the answer is a bit unclear"), or the article A and the pronoun I before a lower-case word
("Answer: A careful reading shows ...", "Answer: I think ..."). The pronoun states the letter its
verb goes on to ("Answer: I think B", "I'd say B") or nothing; the article defers to a letter the
sentence restates ("..., it is B."), and without one A stays option A: "I choose A over B" and
"Answer: A seems right, not C" are far likelier than an article opening a sentence that names no
option. A lower-case word states nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from sftscope.scoring.extract import last_boxed, strip_bold
from sftscope.scoring.result import ScoreItem, ScoreResult, graded, unparsable

DEFAULT_LETTERS = "ABCDEFGHIJ"  # MMLU-Pro has ten options; GPQA four.

_LETTER = r"(?P<open>[(\[])?(?P<letter>[A-Za-z])(?(open)[)\]])(?![A-Za-z0-9_])"
_STATEMENT = re.compile(
    r"(?:\b(?:answer|option|choice)(?:\s+(?:is|would\s+be|should\s+be|must\s+be)\b|\s*:)"
    r"|\bI\s+(?:choose|pick|select)\b|\bI'?ll\s+go\s+with\b"
    # Only a correction that restates the answer: "Actually, A is tempting" states nothing.
    r"|(?P<correction>\b(?:no,?\s+wait|wait,?\s+no|actually)[,.!]?\s+it(?:'s|\s+is)\b)|\bcorrection(?=\s*:))"
    r"\s*:?\s*(?:(?:option|choice|letter)\s+)?" + _LETTER,
    re.IGNORECASE,
)
# "Actually, it is B that most people pick": a cleft sentence, not a correction.
_CLEFT = re.compile(r"\s+(?:that|which|who)\b")
# What restates the answer after an article or a pronoun that opened an answer statement.
_CAPITAL = _LETTER.replace("[A-Za-z]", "[A-Z]")
_IT_IS = re.compile(r"\b(?:is|it's|be|was)\s+(?:(?:option|choice)\s+)?" + _CAPITAL)
_PRONOUN_STATES = re.compile(
    r"I(?:'d\s+say|'ll\s+go\s+with|\s+(?:think|believe|guess|say|would\s+say|choose|pick|select"
    r"|go\s+with|will\s+go\s+with))\s+(?:(?:it's|it\s+is|the\s+answer\s+is)\s+)?(?:(?:option|choice)\s+)?"
    + _CAPITAL
)
# The article and the pronoun go on with a word ("A careful", "I think", "I'd"); a letter that is
# the answer goes on with a reason or a verdict ("A because", "I is larger").
_WORD_NEXT = re.compile(r"'|[ \t]+(?!(?:because|since|as|and|or|but|so|is|which|with)\b)[a-z]")
_CLAUSE_END = re.compile(r"\s*(?:[.,;:!?)\]]|$)")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n")
_LETTER_LINE = re.compile(r"\s*[(\[]?(?P<letter>[A-Za-z])[)\]]?[.:)]?\s*")
_OPTION_LINE = re.compile(r"\s*(?:\((?P<p>[A-Z])\)|(?P<d>[A-Z])[.)])\s+\S")
# "..., so B." closing the whole text: a conclusion, even without the word "answer".
_CONCLUSION = re.compile(
    r"\b(?i:so|thus|therefore|hence)[,:]?\s+(?:it\s+is\s+|it's\s+)?\(?(?P<letter>[A-Z])\)?[.!]?\s*$"
)
_BOLD_LETTER = re.compile(r"\*\*\s*[(\[]?(?P<letter>[A-Z])[)\]]?[.:]?\s*\*\*")
_BOXED_WRAPPERS = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\s*\{([^{}]*)\}")


def _is_word(text: str, match: re.Match[str]) -> bool:
    """Whether the letter `match` found is an English word rather than an option letter."""
    letter = match.group("letter")
    if match.group("open"):
        return False
    if letter.islower():
        return not _CLAUSE_END.match(text, match.end())
    return letter in "AI" and _WORD_NEXT.match(text, match.end()) is not None


def _restated_letter(text: str, start: int, pattern: re.Pattern[str], *, at_start: bool) -> str | None:
    """The letter `pattern` restates from `start` (at `start` itself, with `at_start`) within the
    sentence, when it ends its clause or is bracketed ("I think A is wrong, so B" restates none)."""
    end = _SENTENCE_END.search(text, start)
    find = pattern.match if at_start else pattern.search
    match = find(text, start, end.start() if end else len(text))
    if match and (match.group("open") or _CLAUSE_END.match(text, match.end())):
        return match.group("letter")
    return None


def _stated_letter(text: str, match: re.Match[str]) -> str | None:
    """The letter an answer statement states, if any (see the module docstring)."""
    letter = match.group("letter")
    if match.group("correction") and _CLEFT.match(text, match.end()):
        return None
    if not _is_word(text, match):
        return letter
    if letter == "I":  # the pronoun: "Answer: I think B" states B, "Answer: I hope so" nothing
        return _restated_letter(text, match.start("letter"), _PRONOUN_STATES, at_start=True)
    if letter == "A":  # the article: "Answer: A careful reading shows it is B" restates B; with
        # no restatement ("I choose A over B", "A for sure, not C") the A is the answer
        return _restated_letter(text, match.end(), _IT_IS, at_start=False) or letter
    return None  # a lower-case word: "the answer is a bit unclear"


def _statement_letter(text: str) -> tuple[int, str] | None:
    """Position and letter of the last explicit answer statement."""
    found = None
    for match in _STATEMENT.finditer(text):
        letter = _stated_letter(text, match)
        if letter is not None:
            found = (match.start(), letter.upper())
    return found


def _boxed_letter(text: str) -> tuple[int, str] | None:
    content = last_boxed(text)
    if content is None:
        return None
    content = _BOXED_WRAPPERS.sub(r"\1", content)
    match = _LETTER_LINE.fullmatch(content)
    return (text.rfind("\\boxed"), match.group("letter").upper()) if match else None


def extract_choice(prediction: str, letters: str = DEFAULT_LETTERS) -> str | None:
    """The chosen letter (upper case), or None when no letter is marked as the answer."""
    text = strip_bold(prediction)
    explicit = [found for found in (_statement_letter(text), _boxed_letter(text)) if found is not None]
    if explicit:
        letter = max(explicit)[1]
        return letter if letter in letters else None
    lines = [line for line in prediction.splitlines() if line.strip()]
    for line in reversed(lines):
        match = _LETTER_LINE.fullmatch(line.replace("**", ""))
        if match and match.group("letter").upper() in letters:
            return match.group("letter").upper()
    if lines and (match := _OPTION_LINE.match(lines[-1].replace("**", ""))):
        letter = match.group("p") or match.group("d")
        if letter in letters:
            return letter
    if (match := _CONCLUSION.search(text)) and match.group("letter") in letters:
        return match.group("letter")
    bold = [m.group("letter") for m in _BOLD_LETTER.finditer(prediction) if m.group("letter") in letters]
    return bold[-1] if bold else None


def check_choice(item: ScoreItem, params: Mapping[str, Any]) -> ScoreResult:
    """Score a multiple-choice answer. Params: `letters` (the valid option letters, default A-J)."""
    letters = str(params.get("letters", DEFAULT_LETTERS)).upper()
    gold = (item.gold or "").strip().strip("()[]. ").upper()
    if len(gold) != 1 or gold not in letters:
        raise ValueError(f"the choice scorer needs a gold letter among {letters}, got {item.gold!r}")
    letter = extract_choice(item.prediction, letters)
    if letter is None:
        return unparsable()
    return graded(letter == gold, letter)
