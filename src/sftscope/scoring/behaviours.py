"""Transparent lexicon-and-pattern classifier for the four reasoning behaviours of Gandhi et al. 2025.

Backtracking, verification, subgoal setting and backward chaining. Gandhi et al. used an LLM judge;
the default here is a list of regular expressions so that every count can be traced to the exact
phrase that produced it (`explain`). The patterns are calibrated on the labelled traces in
`sftscope/analyze/data/behaviour_traces.jsonl`; precision and recall come from
`sftscope.analyze.calibration`. Each pattern is written to need *reasoning context*, because the
bare words ("wait", "check", "first", "back") are common in ordinary prose: "wait time is 5 minutes"
and "check-in at 3pm" must not count.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

BEHAVIOURS: tuple[str, ...] = ("backtracking", "verification", "subgoal_setting", "backward_chaining")

_FLAGS = re.IGNORECASE | re.MULTILINE


def _compile(*patterns: str) -> tuple[re.Pattern[str], ...]:
    return tuple(re.compile(p, _FLAGS) for p in patterns)


# A "wait" only marks a backtrack when it is an interjection: followed by punctuation, or opening a
# sentence and followed by a pronoun/negation ("Wait that's wrong"). "Wait time", "wait 5 minutes",
# "waiting" stay out.
_SENTENCE_START = r"(?:^|(?<=[.!?:;\n])\s*|(?<=\*\*))"
PATTERNS: dict[str, tuple[re.Pattern[str], ...]] = {
    "backtracking": _compile(
        r"\bwait\s*[,.!—–…]|\bwait\s+(?:-|a\s+(?:moment|minute|second)\s*[,.!])",
        _SENTENCE_START + r"wait\s+(?:no|that|this|i|we|actually|but|hmm|,)\b",
        r"\b(?:hmm+|oops|no)\s*[,.!]\s*(?:that|this|it)(?:'s|\s+is|\s+does(?:n't|\s+not))\s+"
        r"(?:not|wrong|incorrect|too|work)",
        r"\b(?:that|this|it)(?:'s|\s+is)\s+(?:not\s+(?:right|correct|it|quite|the\s+target|-?\d+\b)|wrong|incorrect)\b",
        r"\b(?:that|this|it)\s+(?:does(?:n't|\s+not)|won't|will\s+not)\s+(?:work|give|reach|equal|get)\b",
        r"\blet\s+(?:me|us)\s+(?:re-?consider|re-?think|re-?evaluate|re-?examine|re-?do|try\s+again"
        r"|start\s+over|go\s+back|backtrack|try\s+(?:a\s+|something\s+)?(?:different|another|else)"
        r"|correct\s+(?:that|this|myself))",
        r"\blet's\s+(?:re-?consider|re-?think|try\s+again|start\s+over|go\s+back|backtrack"
        r"|try\s+(?:a\s+)?(?:different|another))",
        r"\b(?:i|we)\s+(?:made\s+(?:a|an)\s+(?:mistake|error)|miscalculated|messed\s+up)",
        r"\b(?:on\s+second\s+thought|that\s+was\s+a\s+mistake|my\s+mistake)\b",
        r"\b(?:(?:that|this)\s+approach|this\s+path|that\s+path)\s+(?:fails|doesn't|does\s+not|won't|is\s+a\s+dead)",
        r"\bdead\s+end\b",
        r"\b(?:scrap|scratch|forget)\s+that\b",
        _SENTENCE_START + r"(?:hold\s+on|oh\s+no)\s*[,.!]",
        r"\b(?:i|we)\s+(?:misread|misunderstood|forgot|overlooked|double-counted|miscounted|mixed\s+up)\b",
        r"\b(?:not\s+quite|no\s+luck|off\s+by\s+(?:one|\d+)|(?:one|\d+)\s+(?:short|too\s+(?:many|few|much)))\b",
        r"\b(?:doesn't|does\s+not|didn't|did\s+not)\s+(?:seem|look)\s+right\b",
        r"\b(?:that's|that\s+is|it's|this\s+is)\s+too\s+(?:big|large|small|high|low)\b",
    ),
    # "check" needs a reasoning frame (let me/let's/to check, check that/whether/if/by/:) and is
    # excluded when it is part of a compound noun (check-in, checkout, checklist, paycheck).
    "verification": _compile(
        r"\b(?:let\s+me|let's|let\s+us|i'll|we\s+can|i\s+can|to|now)\s+(?:double[-\s]?)?(?:check|verify|confirm)"
        r"(?![-\s]?(?:in|out|list|box|point|mark|book)\b)",
        r"\bdouble[-\s]?check(?:ing|ed)?\b",
        r"\b(?:check|checking|verify|verifying)\s+(?:that|whether|if|by|this|the\s+(?:answer|result|solution|sum"
        r"|product|calculation|arithmetic))\b",
        _SENTENCE_START + r"(?:\*\*)?(?:check(?:ing)?|verif(?:y|ying|ication)|sanity\s+check)(?:\*\*)?\s*:",
        r"\b(?:let\s+me|let's|to)\s+(?:make\s+sure|test\s+(?:the|this|my|our|it))\b",
        r"\bplug(?:ging)?\s+(?:it|them|this|\S+\s*=\s*\S+)?\s*(?:back\s+)?in\b",
        _SENTENCE_START + r"consistent\b|\bis\s+consistent\s+with\b|\bholds\s+up\b",
        r"\b(?:plug(?:ging)?|substitut(?:e|ing))\s+(?:\S+\s+){0,3}?back\b",
        r"\bsanity[-\s]check\b",
        r"\b(?:which|this|that|it)\s+(?:matches|equals|gives|is)\s+(?:the\s+)?(?:target|expected|desired)\b",
        r"\b(?:which|this|that|it)\s+(?:checks\s+out|is\s+(?:correct|consistent))\b",
        r"[✓✔]",
        r"\bconfirm(?:s|ed|ing)?\s+(?:that|by|with|the\s+(?:answer|result))\b",
    ),
    "subgoal_setting": _compile(
        _SENTENCE_START + r"(?:\*\*)?(?:first|firstly|first\s+of\s+all)\s*,",
        _SENTENCE_START + r"(?:\*\*)?step\s+\d+\s*[:.)]",
        r"\b(?:break|split|decompose)\s+(?:this|it|the\s+(?:problem|task))\s+(?:down|into)\b",
        r"\bsub-?(?:goals?|problems?|tasks?)\b",
        r"\b(?:first|next)\s+(?:i|we)\s+(?:need|have|want)\s+to\s+(?:find|compute|calculate|determine|get|solve|make)\b",
        r"\b(?:i|we)\s+(?:need|have)\s+to\s+first\b",
        r"\bfirst\s*,?\s+(?:count|find|compute|calculate|determine|factor|simplify|solve|list|split|identify"
        r"|work\s+out|figure\s+out|isolate|expand|rewrite)\b",
        _SENTENCE_START + r"(?:\*\*)?(?:goal|sub-?goal|plan|strategy)(?:\*\*)?\s*:",
        r"\b(?:i|we)\s+(?:need|have)\s+to\s+(?:know|find\s+out|figure\s+out)\b",
        r"\b(?:our|my|the)\s+(?:plan|strategy)\s+(?:is|will\s+be)\b",
        r"\b(?:once\s+we\s+(?:have|know)|after\s+that)\s*,?\s+(?:we|i)\s+can\b",
        r"\bthe\s+(?:first|second|next|final)\s+(?:step|part)\s+is\s+to\b",
    ),
    # Backward chaining: reasoning from the goal to what would be needed. In Countdown it reads
    # "to get 24 we need 4 * 6"; the number after "to get/reach/make" keeps "to get to school" out.
    "backward_chaining": _compile(
        r"\bwork(?:ing|ed)?\s+back(?:wards?)?\b",
        r"\b(?:start(?:ing)?|begin(?:ning)?|reason(?:ing)?)\s+(?:backwards?\s+)?from\s+the\s+(?:target|goal|answer"
        r"|end|result|conclusion)\b",
        r"\bstart(?:ing)?\s+(?:from|with)\s+what\s+(?:we|i)\s+(?:want|need)\b",
        r"\b(?:make|need|get)\s+(?:a\s+)?-?\d+\s+(?:from|out\s+of|using)\b",
        r"\bthe\s+(?:rest|remaining\s+numbers?)\s+(?:to\s+)?(?:make|give|equal)\s+-?\d+",
        r"\b(?:we|i)\s+(?:want|need)\s+(?:the\s+)?(?:total|sum|result|product|remainder|answer|output)\s+to\s+"
        r"(?:be|equal)\b",
        r"\bto\s+(?:answer|solve|find|determine|get)\s+(?:that|this|it)\s*,\s+(?:we|i)\s+(?:need|must|have\s+to)\b",
        r"\b(?:to|in\s+order\s+to)\s+(?:get|reach|make|obtain|hit|end\s+up\s+with)\s+(?:to\s+)?-?\d+(?:\.\d+)?\s*,?"
        r"\s+(?:we|i)\s+(?:would\s+)?(?:need|require|must|have\s+to|should)\b",
        r"\b(?:what|which)\s+(?:number|value|values|numbers)\s+(?:do|would|must)\s+(?:we|i)\s+need\b",
        r"\bthe\s+(?:last|final)\s+(?:step|operation)\s+(?:must|should|would|has\s+to)\s+be\b",
        r"\bfor\s+this\s+to\s+(?:equal|be|reach|give)\b.{0,40}\b(?:need|must|require)",
        r"\b(?:what|which)\s+(?:would|must)\s+(?:be\s+)?true\s+for\b",
        r"\b(?:need|needs)\s+to\s+(?:be|equal|make)\s+-?\d+(?:\.\d+)?\s*(?:,|so|which|because)",
    ),
}


@dataclass(frozen=True)
class BehaviourCounts:
    """How often each behaviour occurs in one text (episodes of nearby phrase matches)."""

    backtracking: int = 0
    verification: int = 0
    subgoal_setting: int = 0
    backward_chaining: int = 0

    def present(self) -> dict[str, bool]:
        """Behaviour name -> occurs at least once."""
        return {name: count > 0 for name, count in asdict(self).items()}

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# Matches closer than this many characters are one episode: "Wait, that's wrong. Let me try again."
# is a single backtrack, not three. An equation in between ("25+3=28, too small. 25*3=75, too big")
# means a new attempt was made, so the matches stay separate episodes.
_EPISODE_GAP = 30


# One alternation per behaviour, matched against lower-cased text: one scan instead of a dozen and no
# case folding per character, about twice as fast on long traces. Non-overlapping leftmost matches
# are enough, since overlapping phrases merge into one episode anyway.
_LOWER = {
    name: re.compile("|".join(f"(?:{p.pattern})" for p in patterns), re.MULTILINE)
    for name, patterns in PATTERNS.items()
}
_FOLDED = {name: re.compile(p.pattern, _FLAGS) for name, p in _LOWER.items()}


def episodes(text: str, behaviour: str) -> list[tuple[int, int]]:
    """(start, end) spans of one behaviour's matches, merged into episodes so one act counts once."""
    lowered = text.lower()
    # A few characters change length when lower-cased (e.g. "İ"); spans must index `text` itself.
    matches = (
        _LOWER[behaviour].finditer(lowered)
        if len(lowered) == len(text)
        else _FOLDED[behaviour].finditer(text)
    )
    spans = [(m.start(), max(m.end(), m.start() + 1)) for m in matches]
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        gap = text[merged[-1][1] : start] if merged else ""
        if merged and start < merged[-1][1] + _EPISODE_GAP and "=" not in gap:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


def explain(text: str) -> dict[str, list[str]]:
    """Behaviour name -> the matched episodes (text spans), so a count can be audited."""
    return {name: [text[s:e] for s, e in episodes(text, name)] for name in BEHAVIOURS}


def detect(text: str) -> BehaviourCounts:
    """Count the four behaviours in a reasoning trace."""
    return BehaviourCounts(**{name: len(episodes(text, name)) for name in BEHAVIOURS})


def has_backtracking(text: str) -> bool:
    """True when the text contains at least one backtracking phrase."""
    return any(p.search(text) for p in PATTERNS["backtracking"])
