"""Verifiable instruction checks in the style of IFEval (Zhou et al. 2023), strict mode.

Instructions use IFEval's ids and keyword names, so its rows convert one to one: each instruction
is ``{"id": "length_constraints:number_words", "relation": "at least", "num_words": 100}``. They
come from ``meta["instructions"]`` (a list), or else from the gold as a JSON string of that list.
``None``-valued keywords are dropped: IFEval's HF rows carry every keyword of every instruction.

Score = the share of instructions followed; the item is correct iff all are followed. Counting
follows IFEval's definitions (words are ``\\w+`` runs, paragraphs split by ``***``, bullets are lines
opening with ``*`` or ``-``, highlights are ``*...*`` spans), and the language checks use langdetect
as IFEval does. Two counts approximate nltk models that need downloaded data: sentences end at
``.!?`` (plus closing quotes) but not after a few abbreviations such as "Dr.", as with punkt;
capital words are ``\\w+`` runs joined by ``-`` or ``.``, as nltk's word tokenizer keeps them.

Strict mode is the default; ``mode: loose`` is IFEval's loose mode, which also tries the response
without its first line, its last line or both, and without ``*`` (`loose_variants`).

``semantics`` says how the text of an instruction is matched. ``sftscope`` (the default) takes
keywords, forbidden words, section splitters and postscript markers literally, and reads a fenced
JSON answer whatever the case of its ``json`` tag. ``lm-eval`` reproduces lm-eval 0.4's checkers
(IFEval's own) for comparison with published numbers: those strings are regular expressions there
(a keyword "(really" is an invalid pattern, and the item an `error`; "colou?r" matches "color"), the
P.S. shapes are recognised only as "P.S." and "P.P.S" exactly, only ``json``, ``Json`` and ``JSON``
fence tags are dropped, and `startend:start_checker` (not in IFEval) is unknown. Neither strips the
response here; the sweep hands over the final part with its surrounding blank lines removed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from functools import partial
from typing import Any

from langdetect import DetectorFactory, LangDetectException, detect

from sftscope.scoring.result import ScoreItem, ScoreResult, ScorerParamError, unparsable

Check = Callable[..., bool]
# langdetect samples n-grams at random; a fixed seed makes every verdict repeatable.
DetectorFactory.seed = 0
_RELATIONS: dict[str, Callable[[int, int], bool]] = {
    "less than": lambda value, bound: value < bound,
    "at least": lambda value, bound: value >= bound,
}


def _relation(value: int, relation: str, bound: int) -> bool:
    if relation not in _RELATIONS:
        raise ValueError(f"relation must be one of {sorted(_RELATIONS)}, got {relation!r}")
    return _RELATIONS[relation](value, int(bound))


def _words(text: str) -> list[str]:
    return re.findall(r"\w+", text)


def _number_words(text: str, *, num_words: int, relation: str) -> bool:
    return _relation(len(_words(text)), relation, num_words)


# Abbreviations of punkt's English model that commonly precede a name or an example.
_ABBREVIATIONS = ("mr", "mrs", "ms", "dr", "prof", "e.g", "i.e", "vs")
_SENTENCE_BREAK = re.compile(
    r"(?<=[.!?])"
    + "".join(rf"(?<!\b{re.escape(a)}\.)" for a in _ABBREVIATIONS)
    + r"[\"'\u201d\u2019)\]]*\s+",
    re.IGNORECASE,
)


def _number_sentences(text: str, *, num_sentences: int, relation: str) -> bool:
    sentences = [s for s in _SENTENCE_BREAK.split(text.strip()) if _words(s)]
    return _relation(len(sentences), relation, num_sentences)


def _number_paragraphs(text: str, *, num_paragraphs: int) -> bool:
    paragraphs = re.split(r"\s?\*\*\*\s?", text)
    # Empty pieces are allowed only at the edges (a leading or trailing divider).
    if any(not p.strip() for p in paragraphs[1:-1]):
        return False
    return sum(1 for p in paragraphs if p.strip()) == int(num_paragraphs)


def _leading_word(paragraph: str) -> str:
    """IFEval's first word: leading quotes dropped, cut at the first of ``.,?!'"``, lowercased."""
    word = paragraph.split()[0].lstrip("'").lstrip('"')
    return re.split(r"[.,?!'\"]", word, maxsplit=1)[0].lower()


def _nth_paragraph_first_word(text: str, *, num_paragraphs: int, nth_paragraph: int, first_word: str) -> bool:
    paragraphs = text.split("\n\n")
    nth = int(nth_paragraph)
    # IFEval counts only non-empty paragraphs but indexes all of them, so an empty piece (from a
    # leading "\n\n" or from "\n\n\n\n") before the nth paragraph makes it miss.
    if sum(1 for p in paragraphs if p.strip()) != int(num_paragraphs) or not 0 < nth <= int(num_paragraphs):
        return False
    paragraph = paragraphs[nth - 1].strip()
    return bool(paragraph) and _leading_word(paragraph) == first_word.lower()


def _number_bullets(text: str, *, num_bullets: int) -> bool:
    bullets = re.findall(r"^\s*\*[^\*].*$", text, re.MULTILINE) + re.findall(r"^\s*-.*$", text, re.MULTILINE)
    return len(bullets) == int(num_bullets)


def _number_highlights(text: str, *, num_highlights: int) -> bool:
    spans = re.findall(r"\*[^\n\*]*\*", text) + re.findall(r"\*\*[^\n\*]*\*\*", text)
    return sum(1 for span in spans if span.strip("*").strip()) >= int(num_highlights)


def _pattern(text: str, literal: bool) -> str:
    """The regular expression of an instruction's string: itself (lm-eval) or escaped (sftscope)."""
    return re.escape(text) if literal else text


def _multiple_sections(text: str, *, section_spliter: str, num_sections: int, literal: bool = True) -> bool:
    sections = re.split(rf"\s?{_pattern(section_spliter.strip(), literal)}\s?\d+\s?", text)
    return len(sections) - 1 >= int(num_sections)


def _parses_as_json(body: str) -> bool:
    try:
        json.loads(body)
    except ValueError:
        return False
    return True


def _json_format(text: str) -> bool:
    body = text.strip()
    body = re.sub(r"^```(?:json)?\s*", "", body, flags=re.IGNORECASE)
    return _parses_as_json(re.sub(r"\s*```$", "", body))


def _json_format_lm_eval(text: str) -> bool:
    body = text.strip()
    for tag in ("```json", "```Json", "```JSON", "```"):
        body = body.removeprefix(tag)
    return _parses_as_json(body.removesuffix("```").strip())


def _title(text: str) -> bool:
    titles = re.findall(r"<<[^\n]+>>", text)
    return any(title.lstrip("<").rstrip(">").strip() for title in titles)


def _keywords_exist(text: str, *, keywords: list[str], literal: bool = True) -> bool:
    return all(re.search(_pattern(k, literal), text, re.IGNORECASE) for k in keywords)


def _forbidden_words(text: str, *, forbidden_words: list[str], literal: bool = True) -> bool:
    return not any(re.search(rf"\b{_pattern(w, literal)}\b", text, re.IGNORECASE) for w in forbidden_words)


def _keyword_frequency(
    text: str, *, keyword: str, frequency: int, relation: str, literal: bool = True
) -> bool:
    found = re.findall(_pattern(keyword.strip(), literal), text, re.IGNORECASE)
    return _relation(len(found), relation, frequency)


def _letter_frequency(text: str, *, letter: str, let_frequency: int, let_relation: str) -> bool:
    return _relation(text.lower().count(letter.strip().lower()), let_relation, let_frequency)


def _capital_word_frequency(text: str, *, capital_frequency: int, capital_relation: str) -> bool:
    # nltk's tokenizer keeps "STATE-OF-THE-ART" and "U.S.A" whole, so each counts once.
    capitals = [w for w in re.findall(r"\w+(?:[-.]\w+)*", text) if w.isupper()]
    return _relation(len(capitals), capital_relation, capital_frequency)


def _response_language(text: str, *, language: str) -> bool:
    try:
        return detect(text) == language
    except LangDetectException:  # no letters to go by: IFEval counts the instruction as followed
        return True


def _english_lowercase(text: str) -> bool:
    return text.islower() and _response_language(text, language="en")


def _english_capital(text: str) -> bool:
    return text.isupper() and _response_language(text, language="en")


def _placeholders(text: str, *, num_placeholders: int) -> bool:
    return len(re.findall(r"\[.*?\]", text)) >= int(num_placeholders)


# The two markers IFEval generates, matched with or without a space inside ("P. S.").
_POSTSCRIPTS = {"P.S.": r"\s*p\.\s?s\..*$", "P.P.S": r"\s*p\.\s?p\.\s?s.*$"}


def _postscript(text: str, *, postscript_marker: str, literal: bool = True) -> bool:
    marker = postscript_marker.strip()
    # sftscope knows the two shapes in any case; lm-eval only exactly as IFEval writes them.
    shape = marker.upper() if literal else marker
    pattern = _POSTSCRIPTS.get(shape, rf"\s*{_pattern(marker.lower(), literal)}.*$")
    return re.search(pattern, text.lower(), re.MULTILINE) is not None


def _end_checker(text: str, *, end_phrase: str) -> bool:
    return text.strip().strip('"').lower().endswith(end_phrase.strip().lower())


def _start_checker(text: str, *, start_phrase: str) -> bool:
    return text.strip().strip('"').lower().startswith(start_phrase.strip().lower())


def _quotation(text: str) -> bool:
    body = text.strip()
    return len(body) > 1 and body[0] == '"' and body[-1] == '"'


def _constrained_response(text: str) -> bool:
    return any(option in text for option in ("My answer is yes.", "My answer is no.", "My answer is maybe."))


def _two_responses(text: str) -> bool:
    parts = [p.strip() for p in text.split("******")]
    parts = [p for i, p in enumerate(parts) if p or i not in (0, len(parts) - 1)]
    return len(parts) == 2 and all(parts) and parts[0] != parts[1]


def _repeat_prompt(text: str, *, prompt_to_repeat: str) -> bool:
    return text.strip().lower().startswith(prompt_to_repeat.strip().lower())


CHECKS: dict[str, Check] = {
    "length_constraints:number_words": _number_words,
    "length_constraints:number_sentences": _number_sentences,
    "length_constraints:number_paragraphs": _number_paragraphs,
    "length_constraints:nth_paragraph_first_word": _nth_paragraph_first_word,
    "detectable_format:number_bullet_lists": _number_bullets,
    "detectable_format:number_highlighted_sections": _number_highlights,
    "detectable_format:multiple_sections": _multiple_sections,
    "detectable_format:json_format": _json_format,
    "detectable_format:title": _title,
    "detectable_format:constrained_response": _constrained_response,
    "keywords:existence": _keywords_exist,
    "keywords:forbidden_words": _forbidden_words,
    "keywords:frequency": _keyword_frequency,
    "keywords:letter_frequency": _letter_frequency,
    "change_case:english_lowercase": _english_lowercase,
    "change_case:english_capital": _english_capital,
    "change_case:capital_word_frequency": _capital_word_frequency,
    "punctuation:no_comma": lambda text: "," not in text,
    "detectable_content:number_placeholders": _placeholders,
    "detectable_content:postscript": _postscript,
    "startend:end_checker": _end_checker,
    "startend:start_checker": _start_checker,  # not in IFEval: "start your answer with ..."
    "startend:quotation": _quotation,
    "combination:two_responses": _two_responses,
    "combination:repeat_prompt": _repeat_prompt,
    "language:response_language": _response_language,
}


# lm-eval 0.4's checkers where they differ; IFEval has no start checker.
LM_EVAL_CHECKS: dict[str, Check] = {
    **{name: check for name, check in CHECKS.items() if name != "startend:start_checker"},
    "keywords:existence": partial(_keywords_exist, literal=False),
    "keywords:forbidden_words": partial(_forbidden_words, literal=False),
    "keywords:frequency": partial(_keyword_frequency, literal=False),
    "detectable_format:multiple_sections": partial(_multiple_sections, literal=False),
    "detectable_format:json_format": _json_format_lm_eval,
    "detectable_content:postscript": partial(_postscript, literal=False),
}
SEMANTICS: dict[str, dict[str, Check]] = {"sftscope": CHECKS, "lm-eval": LM_EVAL_CHECKS}


def instructions_of(item: ScoreItem) -> list[dict[str, Any]]:
    """The item's instruction list, from meta["instructions"] or the gold JSON."""
    instructions = item.meta.get("instructions")
    if instructions is None:
        if item.gold is None:
            raise ValueError("the ifeval scorer needs meta['instructions'] or a JSON list as gold")
        instructions = json.loads(item.gold)
    if not isinstance(instructions, list) or not instructions:
        raise ValueError("ifeval instructions must be a non-empty list of {'id': ..., kwargs} objects")
    return instructions


def wants_unstripped(params: Mapping[str, Any]) -> bool:
    """lm-eval's checkers see the response as generated; ours see it stripped."""
    return params.get("semantics", "sftscope") == "lm-eval"


def follows(text: str, instruction: Mapping[str, Any], semantics: str = "sftscope") -> bool:
    """Whether `text` follows one instruction; ValueError for an unknown id or bad keywords."""
    kwargs = {k: v for k, v in instruction.items() if k != "id" and v is not None}
    checks = SEMANTICS[semantics]
    check = checks.get(str(instruction.get("id")))
    if check is None:
        raise ValueError(f"unknown ifeval instruction {instruction.get('id')!r}; known: {', '.join(checks)}")
    try:
        return check(text, **kwargs)
    except TypeError as exc:  # missing or unexpected keyword: name the instruction, not the lambda
        raise ValueError(f"bad keywords for ifeval instruction {instruction['id']!r}: {exc}") from None


MODES = ("strict", "loose")


def validate_params(params: Mapping[str, Any]) -> None:
    """`mode` is strict or loose; `semantics` sftscope or lm-eval."""
    mode = params.get("mode", "strict")
    if mode not in MODES:
        raise ScorerParamError("ifeval", "mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    semantics = params.get("semantics", "sftscope")
    if semantics not in SEMANTICS:
        raise ScorerParamError(
            "ifeval", "semantics", f"must be one of {', '.join(SEMANTICS)}, got {semantics!r}"
        )


def loose_variants(text: str) -> list[str]:
    """IFEval's loose reading: the response, without its first line, without its last line, and
    without both (a model's "Sure, here it is:" or sign-off), each also with every ``*`` removed."""
    lines = text.split("\n")
    cuts = [text, "\n".join(lines[1:]).strip(), "\n".join(lines[:-1]).strip(), "\n".join(lines[1:-1]).strip()]
    return [variant for cut in cuts for variant in (cut, cut.replace("*", ""))]


def _follows_loosely(text: str, instruction: Mapping[str, Any], semantics: str) -> bool:
    # The reference skips empty variants (a one-line response has nothing left without its first line).
    return any(
        follows(variant, instruction, semantics) for variant in loose_variants(text) if variant.strip()
    )


def check_ifeval(item: ScoreItem, params: Mapping[str, Any]) -> ScoreResult:
    """Score = share of instructions followed; correct iff all are. `mode`: strict (the default) or
    loose (an instruction counts as followed when any of the `loose_variants` follows it);
    `semantics`: sftscope (the default) or lm-eval (see the module's docstring)."""
    instructions = instructions_of(item)
    if not item.prediction.strip():
        return unparsable()
    check = _follows_loosely if params.get("mode", "strict") == "loose" else follows
    semantics = params.get("semantics", "sftscope")
    verdicts = [(str(i.get("id")), check(item.prediction, i, semantics)) for i in instructions]
    passed = sum(ok for _, ok in verdicts)
    extracted = "; ".join(f"{name}={'ok' if ok else 'fail'}" for name, ok in verdicts)
    outcome = "correct" if passed == len(verdicts) else "wrong"
    return ScoreResult(outcome, passed / len(verdicts), extracted)
