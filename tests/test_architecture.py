"""The import rules of docs/architecture.md, checked on the source tree.

Stages meet only through files and the documented contract modules; nothing imports in a cycle; a
function-local import of an sftscope module is allowed only where it says why (an optional heavy
dependency deferred on purpose), with a `# deferred:` comment on its line.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "sftscope"
STAGES = ("data", "train", "evaluate", "analyze", "report", "study")
# Which stage may import which other stage's modules. Everything else goes through the contract
# modules below every stage (rundir, analysis_file, hashing, stats, config, errors, ...).
ALLOWED = {
    "data": set(),
    "train": {"data"},  # training reads data directories through data's record and chat modules
    "evaluate": {"data"},  # tasks render prompts with data.chat and load sources with data.io
    "analyze": {"evaluate.store"},  # the results store's read API
    "report": set(),
    "study": {"data", "train", "evaluate", "analyze", "report"},  # the orchestrator runs stage commands
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _imports(path: Path, module: str) -> list[tuple[str, int, bool, str]]:
    """(imported sftscope module, line, at module level, the source line)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    lines = path.read_text(encoding="utf-8").splitlines()
    found = []
    top_level = {id(n) for n in tree.body}
    type_checking = set()
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_checking |= {id(n) for n in ast.walk(node)}
    for node in ast.walk(tree):
        if id(node) in type_checking:
            continue
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module
            if node.level:
                pkg = module.split(".") if path.name == "__init__.py" else module.split(".")[: -node.level]
                base = ".".join([*pkg, node.module])
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        for name in names:
            if name.startswith("sftscope"):
                found.append((name, node.lineno, id(node) in top_level, lines[node.lineno - 1]))
    return found


def _stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def test_stages_import_each_other_only_as_documented() -> None:
    modules = _modules()
    bad = []
    for module, path in modules.items():
        mine = _stage(module)
        if mine is None:
            continue
        for name, line, _, _ in _imports(path, module):
            theirs = _stage(name)
            if theirs is None or theirs == mine:
                continue
            target = name.removeprefix("sftscope.")
            if not any(target == a or target.startswith(a + ".") for a in ALLOWED[mine]):
                bad.append(f"{path.relative_to(SRC.parent)}:{line} imports {name}")
    assert not sorted(set(bad)), "\n".join(sorted(set(bad)))


def test_function_local_imports_say_why() -> None:
    bad = []
    for module, path in _modules().items():
        for _, line, top, text in _imports(path, module):
            if not top and "# deferred:" not in text:
                bad.append(f"{path.relative_to(SRC.parent)}:{line} {text.strip()}")
    assert not sorted(set(bad)), "\n".join(sorted(set(bad)))


def test_no_import_cycles() -> None:
    modules = _modules()
    graph: dict[str, set[str]] = defaultdict(set)
    for module, path in modules.items():
        for name, _, top, _ in _imports(path, module):
            if not top:
                continue
            while name not in modules and "." in name:
                name = name.rsplit(".", 1)[0]
            if name in modules and name != module and not module.startswith(name + "."):
                graph[module].add(name)
    seen: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        seen[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if seen.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in seen:
                visit(nxt)
        stack.pop()
        seen[node] = 2

    for node in sorted(modules):
        if node not in seen:
            visit(node)
    assert not cycles, "\n".join(cycles)


SHARED_HELPERS = (
    "file_sha256",  # hashing
    "json_sha256",
    "bootstrap_curve",  # the paired prompt bootstrap
    "percentile",
    "atomic_file",  # atomic writes
    "write_json_atomic",
    "parse_overrides",  # key=value overrides
)


@pytest.mark.parametrize("helper", SHARED_HELPERS)
def test_shared_helpers_exist_once(helper: str) -> None:
    where = [
        str(path.relative_to(SRC.parent))
        for path in SRC.rglob("*.py")
        if f"def {helper}(" in path.read_text(encoding="utf-8")
    ]
    assert len(where) == 1, where


def test_temporary_files_are_renamed_into_place_only_by_the_shared_helpers() -> None:
    """Atomic writes go through `outdir.atomic_file`; an `os.replace` elsewhere is a second copy."""
    allowed = {"outdir.py", "checkpoints.py", "sharding.py", "graph.py", "merge.py"}  # folders, not files
    found = [
        f"{path.relative_to(SRC.parent)}:{i}"
        for path in SRC.rglob("*.py")
        if path.name not in allowed
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "os.replace(" in line or ".replace(path)" in line
    ]
    assert not found, found
