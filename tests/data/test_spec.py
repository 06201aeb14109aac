"""The YAML data spec: the shipped specs validate, and every mistake is located by file, line and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sftscope.data.chat import DEFAULT_SUFFIX
from sftscope.data.sources import CountdownSource, FileSource, HfSource
from sftscope.data.spec import TRANSFORMS, dump_spec, load_spec
from sftscope.data.transforms import StripReasoning, Verify
from sftscope.errors import InputError

SPECS = Path(__file__).parents[2] / "specs" / "data"
MICRO = ["countdown-long-cot-verified", "countdown-short-cot", "countdown-answer-only", "countdown-corrupted"]
REFERENCE = ["math-cot", "math-nocot", "numina", "countdown-cot"]
FILE = "sources:\n  - {kind: file, path: a.jsonl}\n"


def write(tmp_path: Path, text: str, name: str = "spec.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", MICRO)
def test_micro_demo_specs_validate(name: str) -> None:
    spec = load_spec(SPECS / f"{name}.yaml")
    assert spec.name == name
    (source,) = spec.sources
    assert isinstance(source, CountdownSource) and source.n <= 5000
    names = [step.kind for step in spec.transforms]
    assert names[0] == "verify"
    assert ("corrupt" in names) == (name == "countdown-corrupted")


def test_micro_conditions_share_their_problems() -> None:
    sources = [load_spec(SPECS / f"{name}.yaml").sources[0] for name in MICRO]
    assert len({(s.n, s.seed, str(s.settings)) for s in sources}) == 1  # type: ignore[union-attr]


def test_replay_condition_holds_the_long_cot_teacher_and_the_pretraining_mix() -> None:
    from sftscope.data.sources import MicroworldSource, MixSource

    (mix,) = load_spec(SPECS / "countdown-long-cot-replay.yaml").sources
    assert isinstance(mix, MixSource)
    countdown, replay = (part.source for part in mix.parts)
    (long_cot,) = load_spec(SPECS / "countdown-long-cot-verified.yaml").sources
    assert countdown == long_cot  # the same teacher, settings and seed as the long-CoT condition
    assert isinstance(replay, MicroworldSource) and replay.domains is None
    assert [part.weight for part in mix.parts] == [0.7, 0.3]


@pytest.mark.parametrize("name", REFERENCE)
def test_reference_specs_validate_against_the_released_hub_sets(name: str) -> None:
    spec = load_spec(SPECS / f"{name}.yaml")
    (source,) = spec.sources
    assert isinstance(source, HfSource) and source.path.startswith("jasonrqh/")
    assert source.mapping is not None and source.mapping.question == "question"
    assert source.mapping.response == "response" and source.mapping.answer == "answer"
    assert spec.suffix == DEFAULT_SUFFIX
    steps = spec.transforms
    assert any(getattr(t, "n", None) == 20480 for t in steps)
    kinds = {type(t) for t in steps}
    assert (Verify in kinds) == (name in {"math-cot", "math-nocot"})
    assert (StripReasoning in kinds) == (name == "math-nocot")


def test_resolved_spec_round_trips_with_defaults_and_absolute_paths(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "sources:\n  - {kind: file, path: rows.jsonl}\n"
        "transforms:\n  - strip_reasoning\n  - {kind: verify, scorer: math}\n  - kind: dedupe\n",
    )
    spec = load_spec(path)
    assert spec.name == "spec" and spec.seed == 0
    source = spec.sources[0]
    assert isinstance(source, FileSource) and source.path == str(tmp_path / "rows.jsonl")
    verify = spec.transforms[1]
    assert isinstance(verify, Verify) and verify.timeout_s == 5.0
    text = dump_spec(spec)
    assert "timeout_s: 5.0" in text and "- kind: strip_reasoning" in text
    elsewhere = tmp_path / "elsewhere"  # absolute paths: the resolved spec loads the same from anywhere
    elsewhere.mkdir()
    assert load_spec(write(elsewhere, text, "resolved.yaml")) == spec


def test_no_suffix_survives_the_resolved_spec(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "suffix: null\nsources: [{kind: file, path: a.jsonl}]\n"))
    assert spec.suffix is None
    assert load_spec(write(tmp_path, dump_spec(spec), "resolved.yaml")).suffix is None


def test_countdown_settings_are_checked_and_spelled_out(tmp_path: Path) -> None:
    spec = load_spec(write(tmp_path, "sources:\n  - {kind: countdown, n: 5, settings: {max_numbers: 4}}\n"))
    assert spec.sources[0].settings["max_numbers"] == 4  # type: ignore[union-attr]
    assert "min_value" in spec.sources[0].settings  # type: ignore[union-attr]
    with pytest.raises(InputError) as error:
        load_spec(write(tmp_path, "sources:\n  - kind: countdown\n    n: 5\n    settings: {colour: red}\n"))
    assert (error.value.line, error.value.field) == (4, "sources[0].settings")
    assert "colour: unknown setting" in error.value.reason
    bad = "sources:\n  - {kind: countdown, n: 5, settings: {colour: red, min_value: x}}\n"
    with pytest.raises(InputError) as error:
        load_spec(write(tmp_path, bad))
    assert error.value.reason == (
        "colour: unknown setting; "
        "min_value: Input should be a valid integer, unable to parse string as an integer"
    )
    with pytest.raises(InputError) as error:  # a check across settings, without pydantic's prefixes
        load_spec(
            write(
                tmp_path,
                "sources:\n  - {kind: countdown, n: 5, settings: {min_numbers: 5, max_numbers: 3}}\n",
            )
        )
    assert error.value.reason == "min_numbers must not exceed max_numbers"


def test_a_fixed_search_order_needs_worked_endings_and_three_numbers(tmp_path: Path) -> None:
    source = "sources:\n  - kind: countdown\n    n: 5\n    search_order: fixed\n"
    (ok,) = load_spec(write(tmp_path, source + "    worked_endings: true\n")).sources
    assert isinstance(ok, CountdownSource) and ok.search_order == "fixed"
    for extra in ("", "    worked_endings: true\n    settings: {min_numbers: 3, max_numbers: 4}\n"):
        with pytest.raises(InputError) as error:
            load_spec(write(tmp_path, source + extra))
        assert (error.value.line, error.value.field) == (4, "sources[0].search_order")
        assert "worked_endings: true" in error.value.reason


@pytest.mark.parametrize(
    ("text", "line", "field", "message"),
    [
        ("sources:\n  - kind: file\n    path: a.jsonl\n    colour: red\n", 4, "sources[0].colour",
         "unknown key"),
        ("name: x\nsourcez: []\n", 2, "sourcez", "unknown key"),
        (f"{FILE}transforms:\n  - kind: verify\n    scorer: math\n    retries: 3\n", 6,
         "transforms[0].retries", "unknown key"),
        (f"{FILE}transforms:\n  - {{kind: verify, scorer: physics}}\n", 4,
         "transforms[0].scorer", "Input should be 'math' or 'countdown'"),
        (f"{FILE}transforms:\n  - {{kind: verify}}\n", 4, "transforms[0].scorer", "required key is missing"),
        ("sources:\n  - {url: http://x}\n", 2, "sources[0]",
         "missing kind; known: file, hf, countdown, microworld, mix"),
        ("sources:\n  - {kind: url, path: http://x}\n", 2, "sources[0].kind",
         "unknown kind 'url'; known: file, hf, countdown, microworld, mix"),
        ("sources:\n  - {kind: hf, path: a/b, mapping: {question: q, colour: x}}\n", 2,
         "sources[0].mapping.colour", "unknown key"),
        (f"{FILE}transforms:\n  - {{kind: subsample, n: 3, fraction: 0.5}}\n", 4,
         "transforms[0]", "exactly one of n or fraction"),
        ("sources: []\n", 1, "sources", "at least 1 item"),
        ("sources:\n  - kind: microworld\n    n: 3\n    domains: [countdown, nope]\n", 4,
         "sources[0].domains", "unknown micro-world domain(s) ['nope']"),
        ("sources:\n  - kind: microworld\n    n: 3\n    domains: [instructions, arith_facts]\n", 2,
         "sources[0]", "['arith_facts'] are outside the default mix (weight 0) and would get no rows"),
        ("sources:\n  - {kind: microworld, n: 3, domains: [instructions], weights: {instructions: 1}}\n", 2,
         "sources[0]", "either domains"),
        ("sources:\n  - {kind: microworld, n: 3, weights: {arith_fact: 1}}\n", 2,
         "sources[0]", "unknown micro-world domain 'arith_fact'"),
    ],
)  # fmt: skip
def test_spec_mistakes_name_file_line_and_field(
    tmp_path: Path, text: str, line: int, field: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as error:
        load_spec(path)
    assert error.value.file == str(path)
    assert (error.value.line, error.value.field) == (line, field)
    assert message in error.value.reason


def test_unknown_transform_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, f"{FILE}transforms:\n  - {{kind: verify, scorer: math}}\n  - {{kind: shuffle}}\n")
    with pytest.raises(InputError) as error:
        load_spec(path)
    assert (error.value.line, error.value.field) == (5, "transforms[1].kind")
    assert "unknown kind 'shuffle'" in error.value.reason
    assert all(name in error.value.reason for name in TRANSFORMS)


def test_duplicate_keys_and_broken_yaml_are_located(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="duplicate key") as error:
        load_spec(write(tmp_path, "seed: 1\nsources: [{kind: file, path: a.jsonl}]\nseed: 2\n"))
    assert error.value.line == 3
    with pytest.raises(InputError, match="invalid YAML") as error:
        load_spec(write(tmp_path, "sources:\n  - path: [a.jsonl\n"))
    assert error.value.line is not None
    with pytest.raises(InputError, match="does not exist"):
        load_spec(tmp_path / "missing.yaml")


def test_a_local_tokenizer_folder_is_relative_to_the_spec(tmp_path: Path) -> None:
    (tmp_path / "tok").mkdir()
    local = load_spec(write(tmp_path, "tokenizer: tok\nsources: [{kind: file, path: a.jsonl}]\n"))
    assert local.tokenizer == str(tmp_path / "tok")
    hub = load_spec(
        write(tmp_path, "tokenizer: Qwen/Qwen3-14B-Base\nsources: [{kind: file, path: a.jsonl}]\n")
    )
    assert hub.tokenizer == "Qwen/Qwen3-14B-Base"


def test_microworld_replay_mixes_into_a_condition_from_the_train_split(tmp_path: Path) -> None:
    from sftscope.data.build import build_dataset
    from sftscope.data.io import read_records
    from sftscope.data.microworld import split_of

    spec = write(
        tmp_path,
        "seed: 3\nsources:\n  - kind: mix\n    total: 20\n    parts:\n"
        "      - {weight: 3, source: {kind: countdown, n: 15, style: long-cot}}\n"
        "      - {weight: 1, source: {kind: microworld, n: 5, domains: [chain_sum, safety_forbidden]}}\n",
    )
    card = build_dataset(spec, tmp_path / "out")
    rows = read_records(tmp_path / "out" / "train.jsonl").records
    replay = [r for r in rows if r.source.startswith("microworld:")]
    assert len(rows) == 20 and len(replay) == 5
    assert {r.source for r in replay} <= {"microworld:chain_sum", "microworld:safety_forbidden"}
    assert all(split_of(r.question) == "train" for r in replay)
    loads = {entry["source"]: entry for entry in card["sources"]}
    assert loads["microworld:chain_sum+safety_forbidden"] == {
        "source": "microworld:chain_sum+safety_forbidden",
        "kind": "microworld",
        "role": "train",
        "rows": 5,
        "bad_rows": 0,
    }


def test_microworld_replay_weights_reach_domains_outside_the_default_mix(tmp_path: Path) -> None:
    from sftscope.data.build import build_dataset
    from sftscope.data.io import read_records

    spec = write(
        tmp_path, "sources:\n  - {kind: microworld, n: 30, weights: {arith_facts: 2, worked_steps: 1}}\n"
    )
    card = build_dataset(spec, tmp_path / "out")
    rows = read_records(tmp_path / "out" / "train.jsonl").records
    sources = [r.source for r in rows]
    assert sources.count("microworld:arith_facts") == 20 and sources.count("microworld:worked_steps") == 10
    assert card["sources"][0]["source"] == "microworld:arith_facts+worked_steps"
