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
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict

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
    kind: Literal["countdown", "arithmetic", "reasoning_gym", "instructions", "safety"]
    """Which generator builds the examples."""
    tag: Tag
    """The evaluation's domain tag."""
    scorer: str
    """Name of the sftscope.scoring scorer that grades this domain."""
    scorer_params: dict[str, Any] = {}
    """Params of that scorer (e.g. the refusal scorer's expect='refuse' or 'comply')."""
    weight: float
    """Share of the pretraining mix (before normalisation over all domains)."""
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
    from sftscope.data import countdown

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


def mix_counts(total: int, names: list[str] | None = None) -> dict[str, int]:
    """Examples per domain for a corpus of `total`, proportional to the pretraining weights of the
    named domains (all by default), by largest remainders so that the counts sum to `total`."""
    specs = domains() if names is None else [domain(name) for name in names]
    weight_sum = sum(d.weight for d in specs)
    exact = {d.name: total * d.weight / weight_sum for d in specs}
    counts = {name: int(value) for name, value in exact.items()}
    by_remainder = sorted(exact, key=lambda name: exact[name] - counts[name], reverse=True)
    for name in by_remainder[: total - sum(counts.values())]:
        counts[name] += 1
    return counts


def build_corpus(total: int, seed: int, names: list[str] | None = None) -> list[Example]:
    """The train split in the pretraining mix (of the named domains), shuffled: the pretraining
    corpus of the micro bases, and the replay share of an SFT data spec."""
    counts = mix_counts(total, names)
    rows = [row for name, n in counts.items() for row in generate(name, split="train", n=n, seed=seed)]
    random.Random(seed).shuffle(rows)
    return rows
