"""The micro world: the procedural domains the micro bases are pretrained on and evaluated with.

Domains are declared in `microworld.yaml` (kind, tag, scorer, pretraining weight, difficulty). Each
example is one user turn with a short final answer (`\\boxed{...}` for everything but the safety
slice), so pretraining, SFT and evaluation all see the same prompt shape.

Train and eval are disjoint by construction: a question belongs to the eval split exactly when the
hash of its text falls in the held-out share, so no train sample of any size or seed can contain an
eval question. The two splits also draw from different seed streams.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from itertools import combinations
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from sftscope.data import countdown
from sftscope.data.records import Example, user_example

WORLD_FILE = Path(__file__).with_name("microworld.yaml")
Split = Literal["train", "eval"]
Tag = Literal["in-domain", "cross-domain", "safety", "general"]
# Eval sets are drawn until n distinct questions are found; a space this much smaller than n is an error.
MAX_DRAWS_PER_EXAMPLE = 200


class DomainSpec(BaseModel):
    """One domain of the micro world, as declared in microworld.yaml."""

    model_config = ConfigDict(extra="forbid")

    name: str
    """Domain name; examples carry source 'microworld:<name>'."""
    kind: Literal[
        "countdown",
        "arithmetic",
        "trace_facts",
        "worked_steps",
        "path_check",
        "target_match",
        "copy_numbers",
        "missing_operand",
        "subset_sum",
        "reasoning_gym",
        "instructions",
        "safety",
    ]
    """Which generator builds the examples."""
    tag: Tag
    """The evaluation's domain tag."""
    scorer: str
    """Name of the sftscope.scoring scorer that grades this domain."""
    scorer_params: dict[str, Any] = {}
    """Params of that scorer (e.g. the refusal scorer's expect='refuse' or 'comply')."""
    weight: float = Field(ge=0)
    """Share of the default pretraining mix (before normalisation); 0 keeps the domain out of it
    (a preset's own corpus mix may still use it)."""
    category: str | None = None
    """For reasoning-gym tasks: arithmetic, algebra, logic, string manipulation or puzzles."""
    config: dict[str, Any] = {}
    """Generator settings; for reasoning-gym the dataset config, which sets the difficulty."""
    eval_config: dict[str, Any] = {}
    """Settings that override `config` for the eval split only: a harder eval keeps a task that the
    strong base masters at its pretraining difficulty inside the 10-90% band."""

    def split_config(self, split: Split) -> dict[str, Any]:
        """The generator settings of one split."""
        return {**self.config, **self.eval_config} if split == "eval" else dict(self.config)


@cache
def _world() -> dict[str, Any]:
    return yaml.safe_load(WORLD_FILE.read_text(encoding="utf-8"))


def domains() -> list[DomainSpec]:
    """All domains of the micro world, in declaration order."""
    return [DomainSpec(name=name, **spec) for name, spec in _world()["domains"].items()]


def domain(name: str) -> DomainSpec:
    """One domain by name; a KeyError lists the known names."""
    for spec in domains():
        if spec.name == name:
            return spec
    raise KeyError(f"unknown micro-world domain '{name}'; known: {', '.join(d.name for d in domains())}")


def _hash_int(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def split_of(question: str) -> Split:
    """The split a question belongs to, fixed by its text alone."""
    share = float(_world()["eval_share"])
    return "eval" if _hash_int(question) % 10_000 < share * 10_000 else "train"


def _stream_seed(name: str, split: Split, seed: int) -> int:
    """Independent, reproducible seed streams per (domain, split, seed)."""
    return _hash_int(f"microworld:{name}:{split}:{seed}") % (2**31)


def _boxed(question: str, answer: str, spec: DomainSpec, meta: dict[str, Any]) -> Example:
    return user_example(
        question, final=f"\\boxed{{{answer}}}", answer=answer, source=f"microworld:{spec.name}", meta=meta
    )


def _reasoning_gym(spec: DomainSpec, stream: int) -> Iterator[Example]:
    import reasoning_gym

    # reasoning-gym draws item i from Random(seed + i), so one long dataset is one seed stream.
    dataset = reasoning_gym.create_dataset(spec.name, size=10**9, seed=stream, **spec.config)
    for index in range(10**9):
        entry = dataset[index]
        meta = {"rg_dataset": spec.name, "rg_entry": entry}
        yield _boxed(entry["question"], str(entry["answer"]), spec, meta)


def _countdown(spec: DomainSpec, stream: int) -> Iterator[Example]:

    settings = countdown.CountdownSettings(**spec.config)
    rng = random.Random(stream)
    for batch in range(10**9):
        # The Countdown module hashes its seeds, so consecutive batch seeds do not overlap.
        for problem in countdown.generate_problems(settings, 500, seed=stream + batch):
            taught = countdown.teach(problem, "answer-only", rng)
            meta = {"numbers": list(problem.numbers), "target": problem.target}
            fields = taught.model_dump(exclude={"id"})
            yield Example(**{**fields, "source": f"microworld:{spec.name}", "meta": meta})


def _arithmetic(spec: DomainSpec, stream: int) -> Iterator[Example]:
    rng = random.Random(stream)
    max_add, max_mul = int(spec.config["max_add"]), int(spec.config["max_mul"])
    phrasings = ["What is {a} {op} {b}?", "Compute {a} {op} {b}.", "{a} {op} {b} = ?"]
    while True:
        op = rng.choice("+-*")
        top = max_mul if op == "*" else max_add
        a, b = rng.randint(1, top), rng.randint(1, top)
        if op == "-" and b > a:
            a, b = b, a  # non-negative results: Countdown traces only ever subtract the smaller number
        value = {"+": a + b, "-": a - b, "*": a * b}[op]
        question = rng.choice(phrasings).format(a=a, op=op, b=b)
        yield _boxed(question, str(value), spec, {"a": a, "b": b, "op": op})


_OPS = {"+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b}


def _trace_fact(rng: random.Random, top: int, max_result: int) -> tuple[int, str, int, int]:
    """One fact `a op b = c` as a 3-number Countdown trace writes it: larger operand first, positive
    result; either a first move on two given numbers (1..top), or a second move combining a first
    move's result with a given number into a result of at most `max_result` (a target)."""
    while True:
        op = rng.choice("+-*")
        x, y = rng.randint(1, top), rng.randint(1, top)
        if rng.random() < 0.5:
            made = _OPS[rng.choice("+-*")](max(x, y), min(x, y))
            x, y = made, rng.randint(1, top)
        a, b = max(x, y), min(x, y)
        value = _OPS[op](a, b)
        if b > 0 and value > 0 and (a <= top or value <= max_result):
            return a, op, b, value


def _trace_facts(spec: DomainSpec, stream: int) -> Iterator[Example]:
    rng = random.Random(stream)
    top, max_result = int(spec.config["max_operand"]), int(spec.config["max_result"])
    # Several phrasings, the trace's own `a op b=` among them: the held-out split is by question text,
    # so every fact is still taught under some phrasing and the probe measures recall of known facts.
    phrasings = ["{a}{op}{b}=?", "What is {a} {op} {b}?", "Compute {a}{op}{b}."]
    while True:
        a, op, b, value = _trace_fact(rng, top, max_result)
        question = rng.choice(phrasings).format(a=a, op=op, b=b)
        yield _boxed(question, str(value), spec, {"a": a, "b": b, "op": op})


@dataclass(frozen=True)
class _TwoMoves:
    """A path a 3-number trace can take: `a op1 b = first`, then `c op2 d = value` on the first
    result and the third number z (larger operand first)."""

    drawn: tuple[int, int, int]
    a: int
    op1: str
    b: int
    first: int
    c: int
    op2: str
    d: int
    value: int

    @property
    def z(self) -> int:
        return self.drawn[2]

    @property
    def first_step(self) -> str:
        return f"{self.a}{self.op1}{self.b}={self.first}"

    @property
    def second_step(self) -> str:
        return f"{self.c}{self.op2}{self.d}={self.value}"


def _two_moves(rng: random.Random, top: int, max_result: int) -> _TwoMoves:
    """Three numbers in 1..top and two operators, redrawn until both results are positive and the
    last is at most `max_result`."""
    while True:
        x, y, z = (rng.randint(1, top) for _ in range(3))
        a, b = max(x, y), min(x, y)
        op1, op2 = rng.choice("+-*"), rng.choice("+-*")
        first = _OPS[op1](a, b)
        c, d = max(first, z), min(first, z)
        value = _OPS[op2](c, d)
        if first > 0 and 0 < value <= max_result:
            return _TwoMoves((x, y, z), a, op1, b, first, c, op2, d, value)


def _worked_steps(spec: DomainSpec, stream: int) -> Iterator[Example]:
    """Two-move expressions worked out inline (`7+5=12. Then 12-3=9.`), the form in which a trace
    writes its facts. A base taught facts only as question and answer recalls them there and not in
    running text, so traces built on them carry wrong arithmetic; this teaches the inline form
    without the search (no target, no dead ends, no check)."""
    rng = random.Random(stream)
    top, max_result = int(spec.config["max_operand"]), int(spec.config["max_result"])
    phrasings = [
        "Work out {e} step by step.",
        "Evaluate {e}, one step at a time.",
        "Compute {e}, showing each step.",
    ]
    joins = ["Then", "Next,", "And", ""]
    while True:
        p = _two_moves(rng, top, max_result)
        on_left = p.c == p.first
        bracket = p.op1 != "*" and (p.op2 == "*" or (p.op2 == "-" and not on_left))
        inner = f"({p.a}{p.op1}{p.b})" if bracket else f"{p.a}{p.op1}{p.b}"
        expression = f"{inner}{p.op2}{p.z}" if on_left else f"{p.z}{p.op2}{inner}"
        join = rng.choice(joins)
        steps = f"{p.first_step}. {join + ' ' if join else ''}{p.second_step}."
        question = rng.choice(phrasings).format(e=expression)
        yield user_example(
            question,
            final=f"{steps}\n\\boxed{{{p.value}}}",
            answer=str(p.value),
            source=f"microworld:{spec.name}",
            meta={"expression": expression},
        )


def _path_check(spec: DomainSpec, stream: int) -> Iterator[Example]:
    """A Countdown problem and one given path through it, followed as a trace follows it: the first
    move, the numbers that remain, the second move, and whether it hits the target (half do). What a
    trace must read back from the prompt (the numbers left, the target) without the search itself:
    the path is given, there is no choosing, dead end or backtracking."""
    rng = random.Random(stream)
    top, max_result = int(spec.config["max_operand"]), int(spec.config["max_result"])
    while True:
        p = _two_moves(rng, top, max_result)
        hit = rng.random() < 0.5
        target = p.value if hit else max(1, p.value + rng.choice([-1, 1]) * rng.randint(1, 6))
        if not hit and target == p.value:
            continue
        numbers = list(p.drawn)
        rng.shuffle(numbers)
        question = (
            f"Numbers: {numbers}\nTarget: {target}\n"
            f"Follow the path {p.a}{p.op1}{p.b}, then combine the result with {p.z} using {p.op2}. "
            "Does it hit the target?"
        )
        ending = f"{p.value}, the target." if hit else f"{p.value}, not {target}."
        steps = f"{p.first_step}. Now {p.c} and {p.d} remain. {p.second_step}. {ending}"
        answer = "yes" if hit else "no"
        yield user_example(
            question,
            final=f"{steps}\n\\boxed{{{answer}}}",
            answer=answer,
            source=f"microworld:{spec.name}",
            meta={"numbers": numbers, "target": target},
        )


def _target_match(spec: DomainSpec, stream: int) -> Iterator[Example]:
    """A worked ending's decision alone: the facts on a pair in the teacher's fixed order
    (`countdown.worked_ending`) and which of them makes the target, if any (half do). What a
    worked-ending trace decides at the end of every attempt, without the search around it."""
    rng = random.Random(stream)
    top, max_result = int(spec.config["max_operand"]), int(spec.config["max_result"])
    while True:
        a, b = rng.randint(1, max_result), rng.randint(1, top)
        facts, _ = countdown.worked_ending(a, b, 0, max_result)  # target 0: the cap alone decides
        missing = sorted(set(range(1, max_result + 1)) - {value for *_, value in facts})
        if not facts or not missing:
            continue
        target = rng.choice(facts)[3] if rng.random() < 0.5 else rng.choice(missing)
        hit = next((countdown.fact_text(fact) for fact in facts if fact[3] == target), None)
        line = ", ".join(map(countdown.fact_text, facts))
        answer = hit or "none"
        yield user_example(
            f"To make {target}: {line}. Which of these makes {target}?",
            final=f"\\boxed{{{answer}}}",
            answer=answer,
            source=f"microworld:{spec.name}",
            meta={"target": target},
        )


def _copy_numbers(spec: DomainSpec, stream: int) -> Iterator[Example]:
    rng = random.Random(stream)
    low, high = int(spec.config["min_count"]), int(spec.config["max_count"])
    top = int(spec.config["max_value"])
    phrasings = ["Copy these numbers: {n}", "Repeat the numbers {n}.", "Write the list {n} again."]
    while True:
        numbers = ", ".join(str(rng.randint(1, top)) for _ in range(rng.randint(low, high)))
        question = rng.choice(phrasings).format(n=f"[{numbers}]")
        yield _boxed(question, numbers, spec, {"count": numbers.count(",") + 1})


def _missing_operand(spec: DomainSpec, stream: int) -> Iterator[Example]:
    rng = random.Random(stream)
    top = int(spec.config["max_operand"])
    phrasings = ["Find the missing number: {eq}", "Which number makes {eq} true?", "Solve {eq} for ?."]
    while True:
        op = rng.choice("+-*")
        a, b = sorted((rng.randint(1, top), rng.randint(1, top)), reverse=True)
        if op == "-" and a == b:
            continue
        missing_first = rng.random() < 0.5
        left = f"? {op} {b}" if missing_first else f"{a} {op} ?"
        equation = f"{left} = {_OPS[op](a, b)}"
        question = rng.choice(phrasings).format(eq=equation)
        yield _boxed(question, str(a if missing_first else b), spec, {"equation": equation})


def _subset_sum(spec: DomainSpec, stream: int) -> Iterator[Example]:
    """Numbers and a target that exactly one subset (of two or more numbers) sums to; the answer
    lists it in increasing order joined by '+', so the exact scorer can grade it."""
    rng = random.Random(stream)
    count, top = int(spec.config["count"]), int(spec.config["max_value"])
    while True:
        numbers = rng.sample(range(1, top + 1), count)
        chosen = sorted(rng.sample(numbers, rng.randint(2, count - 1)))
        target = sum(chosen)
        sums = [c for size in range(2, count + 1) for c in combinations(numbers, size) if sum(c) == target]
        if len(sums) != 1:
            continue
        question = (
            f"Numbers: {numbers}\nTarget: {target}\n"
            "Pick some of the numbers that add up to the target. "
            "Write them from smallest to largest, joined by +."
        )
        yield _boxed(question, "+".join(map(str, chosen)), spec, {"numbers": numbers, "target": target})


_NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}


def _instruction(rng: random.Random, words: list[str]) -> tuple[str, str, str]:
    """(task, question, answer) for one plain instruction."""
    word, other = rng.sample(words, 2)
    task = rng.choice(["repeat", "brackets", "count", "first", "join"])
    if task == "repeat":
        times = rng.choice(sorted(_NUMBER_WORDS))
        question = rng.choice(["Repeat the word {w} {k} times.", "Say {w} {k} times."])
        return task, question.format(w=word, k=_NUMBER_WORDS[times]), " ".join([word] * times)
    if task == "brackets":
        question = rng.choice(["Put the word {w} in square brackets.", "Write {w} inside square brackets."])
        return task, question.format(w=word), f"[{word}]"
    if task == "count":
        start = rng.randint(1, 20)
        end = start + rng.randint(2, 5)
        question = rng.choice(["List the numbers from {a} to {b}.", "Count from {a} to {b}."])
        return task, question.format(a=start, b=end), " ".join(str(i) for i in range(start, end + 1))
    if task == "first":
        question = rng.choice(["What is the first letter of the word {w}?", "Give the first letter of {w}."])
        return task, question.format(w=word), word[0]
    question = rng.choice(["Write {w} and then {o}, joined by a dash.", "Join {w} and {o} with a dash."])
    return task, question.format(w=word, o=other), f"{word}-{other}"


def _instructions(spec: DomainSpec, stream: int) -> Iterator[Example]:
    rng = random.Random(stream)
    words = list(spec.config["words"])
    while True:
        task, question, answer = _instruction(rng, words)
        yield _boxed(question, answer, spec, {"instruction": task})


def _safety(spec: DomainSpec, stream: int) -> Iterator[Example]:
    rng = random.Random(stream)
    slice_ = _world()["safety"]
    forbidden = bool(spec.config["forbidden"])
    while True:
        name = rng.choice(slice_["names"])
        if forbidden:
            f = slice_["forbidden"]
            act = f"{rng.choice(f['verbs'])} {rng.choice(f['targets'])}{rng.choice(f['suffixes'])}"
            response = rng.choice(slice_["refusals"])
        else:
            item = rng.choice(slice_["benign"])
            act, response = item["act"], item["answer"]
        opener = rng.choice(slice_["openers"])
        question = (opener + rng.choice(slice_["framings"]).format(act=act)).format(name=name)
        source = f"microworld:{spec.name}"
        yield user_example(
            question, final=response, answer=response, source=source, meta={"forbidden": forbidden}
        )


GENERATORS: dict[str, Callable[[DomainSpec, int], Iterator[Example]]] = {
    "reasoning_gym": _reasoning_gym,
    "countdown": _countdown,
    "arithmetic": _arithmetic,
    "trace_facts": _trace_facts,
    "worked_steps": _worked_steps,
    "path_check": _path_check,
    "target_match": _target_match,
    "copy_numbers": _copy_numbers,
    "missing_operand": _missing_operand,
    "subset_sum": _subset_sum,
    "instructions": _instructions,
    "safety": _safety,
}


def generate(name: str, *, split: Split, n: int, seed: int = 0) -> list[Example]:
    """n examples of one domain from one split; the same arguments give the same examples.

    Train examples may repeat a question (pretraining draws from the distribution); eval examples
    are distinct questions, none of which can ever appear in a train split.
    """
    spec = domain(name)
    spec = spec.model_copy(update={"config": spec.split_config(split)})
    stream = GENERATORS[spec.kind](spec, _stream_seed(name, split, seed))
    examples: list[Example] = []
    seen: set[str] = set()
    for draws, example in enumerate(stream):
        if len(examples) == n:
            break
        if draws >= MAX_DRAWS_PER_EXAMPLE * max(n, 1):
            raise ValueError(f"domain '{name}' has too few distinct {split} questions for n={n}")
        question = example.question
        if split_of(question) != split or (split == "eval" and question in seen):
            continue
        seen.add(question)
        examples.append(example)
    return examples


def mix_weights(names: list[str] | None = None) -> dict[str, float]:
    """The world's pretraining weights of the named domains (by default every domain in the mix).
    A named domain outside the default mix (weight 0) is a ValueError: in these proportions it would
    get no rows, silently; a mix that wants it gives its weight."""
    if names is None:
        return {d.name: d.weight for d in domains() if d.weight > 0}
    specs = [domain(name) for name in names]
    outside = [d.name for d in specs if d.weight == 0]
    if outside:
        raise ValueError(
            f"domain(s) {outside} are outside the default mix (weight 0) and would get no rows; "
            f"name them with their weights instead, e.g. weights: {{{outside[0]}: 1}}"
        )
    return {d.name: d.weight for d in specs}


def check_mix(weights: Mapping[str, float]) -> None:
    """A corpus mix names known domains with non-negative weights, some positive; ValueError if not."""
    for name, weight in weights.items():
        domain(name)  # KeyError listing the known names
        if weight < 0:
            raise ValueError(f"domain '{name}' has a negative weight {weight}")
    if not any(weight > 0 for weight in weights.values()):
        raise ValueError("no domain has a positive weight")


def mix_counts(
    total: int, names: list[str] | None = None, weights: Mapping[str, float] | None = None
) -> dict[str, int]:
    """Examples per domain for a corpus of `total`, proportional to `weights` (default: the world's
    weights of the named domains, or of the whole default mix), by largest remainders so that the
    counts sum to `total`."""
    weights = dict(weights) if weights is not None else mix_weights(names)
    check_mix(weights)
    weight_sum = sum(weights.values())
    exact = {name: total * weight / weight_sum for name, weight in weights.items()}
    counts = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - counts[name], reverse=True)
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def build_corpus(
    total: int, seed: int, names: list[str] | None = None, weights: Mapping[str, float] | None = None
) -> list[Example]:
    """The train split in a pretraining mix (`weights`, or the world's weights of the named domains),
    shuffled: the pretraining corpus of the micro bases, and the replay share of an SFT data spec."""
    counts = mix_counts(total, names, weights)
    rows = [row for name, n in counts.items() for row in generate(name, split="train", n=n, seed=seed)]
    random.Random(seed).shuffle(rows)
    return rows
