"""The package's shape: folders follow the data flow, no import cycles, short functions,
and the four-pattern task's classes named only where the task is defined.

tasks -> data -> models -> evaluation -> harness -> leaderboard -> cli: a module imports
only from its own stage or an earlier one (imports inside functions count too), plus the
shared leaves (errors, atomic, hashing, version, bounds).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import thyroid_bench

PACKAGE = Path(thyroid_bench.__file__).parent
STAGES = ("tasks", "data", "models", "evaluation", "harness", "leaderboard", "cli")
SHARED = ("errors", "atomic", "hashing", "version", "bounds", "locking")
MAX_FUNCTION_LINES = 100
FOUR_PATTERN_NAMES = ("diffusely_increased", "diffusely_decreased", "focal_increased",
                      "heterogeneous_uptake")
# Where the four-pattern classes may be spelled out: the task's definition and the
# synthetic generator that simulates its readers.
FOUR_PATTERN_HOMES = ("tasks/four_pattern.py", "data/synthetic/generator.py")


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(path: Path, name: str) -> set[str]:
    """Package modules that ``path`` imports, anywhere in the file (resolved to modules)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if is_pkg else name.split(".")[:-1]
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in MODULES else base)
    return {m for m in found if m in MODULES and m != name}


GRAPH = {name: _imports(path, name) for name, path in MODULES.items()}


def _stage(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) == 1:
        return None  # the package root: a facade over everything
    if parts[1] in SHARED:
        return -1
    if parts[1] == "testing":
        return len(STAGES)  # fixture code may use every stage
    return STAGES.index(parts[1])


def test_every_module_belongs_to_a_stage():
    for name in MODULES:
        parts = name.split(".")
        assert len(parts) == 1 or parts[1] in STAGES + SHARED + ("testing",), name


def test_stages_import_only_earlier_stages():
    wrong = []
    for name, deps in GRAPH.items():
        mine = _stage(name)
        if mine is None:
            continue
        for dep in deps:
            theirs = _stage(dep)
            if theirs is None or theirs > mine or (mine == -1 and theirs != -1):
                wrong.append(f"{name} imports {dep}")
    assert not wrong, "imports against the data flow:\n" + "\n".join(sorted(wrong))


def test_no_import_cycles():
    # Tarjan's strongly connected components: any component of two or more is a cycle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in GRAPH:
        if v not in index:
            visit(v)
    assert not cycles, f"import cycles: {cycles}"


def test_the_checker_sees_a_cycle_and_a_backward_import():
    """The two checks above would fail on a real fault: try them on a made-up graph."""
    saved = dict(GRAPH)
    try:
        GRAPH["thyroid_bench.tasks.registry"] = GRAPH["thyroid_bench.tasks.registry"] | {
            "thyroid_bench.leaderboard"}
        with pytest.raises(AssertionError, match="tasks.registry imports thyroid_bench.leaderboard"):
            test_stages_import_only_earlier_stages()
        GRAPH["thyroid_bench.leaderboard"] = GRAPH["thyroid_bench.leaderboard"] | {
            "thyroid_bench.tasks.registry"}
        with pytest.raises(AssertionError, match="import cycles"):
            test_no_import_cycles()
    finally:
        GRAPH.clear()
        GRAPH.update(saved)


def _functions():
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                yield name, node


def test_no_function_over_100_lines():
    long = [f"{name}.{fn.name}: {fn.end_lineno - fn.lineno + 1} lines"
            for name, fn in _functions() if fn.end_lineno - fn.lineno + 1 > MAX_FUNCTION_LINES]
    assert not long, "functions over 100 lines:\n" + "\n".join(long)


def _string_literals(path: Path) -> list[tuple[int, str]]:
    """String constants of a module, docstrings excluded."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) \
                and isinstance(body[0].value, ast.Constant):
            docstrings.add(id(body[0].value))
    return [(n.lineno, n.value) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docstrings]


def test_four_pattern_classes_are_named_only_by_the_task_and_its_generator():
    found = []
    for name, path in MODULES.items():
        rel = path.relative_to(PACKAGE).as_posix()
        if rel in FOUR_PATTERN_HOMES:
            continue
        for line, text in _string_literals(path):
            if any(c in text for c in FOUR_PATTERN_NAMES):
                found.append(f"{rel}:{line}: {text[:60]!r}")
    assert not found, "four-pattern class names outside the task's definition:\n" + "\n".join(found)
