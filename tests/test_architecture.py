"""The shape of the package: the core knows nothing built on it, and no module imports,
even lazily, a module that imports it back (type-only imports aside, each with a reason)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import maestro_lite

PACKAGE = Path(maestro_lite.__file__).parent
ROOT = PACKAGE.parent

FRONT_ENDS = ("maestro_lite.cli", "maestro_lite.__main__")
"""The layer allowed to import the pipelines (and the evals): the ``maestro`` command."""


def _modules() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _targets(module: str, node: ast.Import | ast.ImportFrom) -> set[str]:
    """The package modules an import statement of ``module`` runs: what it names (a name
    from a package is that package's ``__init__``; a submodule, that submodule), and the
    packages above it that ``module`` is not itself inside (Python runs them first)."""
    if isinstance(node, ast.Import):
        named = [alias.name for alias in node.names]
    else:
        base = module.split(".")
        if MODULES[module].name != "__init__.py":
            base.pop()
        if node.level:
            base = base[: len(base) - node.level + 1]
            source = ".".join([*base, *([node.module] if node.module else [])])
        else:
            source = node.module or ""
        named = [
            f"{source}.{alias.name}" if f"{source}.{alias.name}" in MODULES else source
            for alias in node.names
        ]
    out: set[str] = set()
    for name in named:
        while name and name not in MODULES:
            name = name.rpartition(".")[0]
        if not name:
            continue  # outside the package
        out.add(name)
        parent = name.rpartition(".")[0]
        while parent:
            if not module.startswith(parent + "."):
                out.add(parent)
            parent = parent.rpartition(".")[0]
    out.discard(module)
    return out


def _imports(module: str) -> set[str]:
    """Every package module ``module`` imports at run time, at the top or in a function
    (not under ``if TYPE_CHECKING:``)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking(child):
                for other in child.orelse:
                    visit(other)
            elif isinstance(child, ast.Import | ast.ImportFrom):
                found.update(_targets(module, child))
            else:
                visit(child)

    visit(ast.parse(MODULES[module].read_text(encoding="utf-8")))
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return groups


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = {module: _imports(module) for module in MODULES}
    assert _cycles(graph) == []


def test_the_cycle_check_sees_lazy_imports_and_packages_run_first() -> None:
    # Not vacuous: the graph holds the edges a cycle would be made of.
    worker = _imports("maestro_lite.scheduling.worker")
    assert {"maestro_lite.scheduling.jobs", "maestro_lite.orchestrator"} <= worker
    # A lazy import inside a function counts; so does the package it runs first.
    assert "maestro_lite.embeddings.hashing" in _imports("maestro_lite.embeddings")
    assert "maestro_lite.cli" in _imports("maestro_lite.__main__")
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_every_type_only_import_says_why() -> None:
    unexplained = []
    for module, path in MODULES.items():
        lines = path.read_text(encoding="utf-8").splitlines()
        for number, line in enumerate(lines):
            if line.strip() == "if TYPE_CHECKING:" and not lines[number - 1].strip().startswith(
                "# Type-only: "
            ):
                unexplained.append(f"{module}:{number + 1}")
    assert unexplained == []


def test_nothing_below_the_cli_imports_the_pipelines_or_the_evals() -> None:
    below = [m for m in MODULES if not m.startswith(FRONT_ENDS)]
    script = f"""
import importlib, json, sys
missing = []
for name in {below!r}:
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as exc:  # an optional extra this environment lacks
        if (exc.name or "").split(".")[0] in ("maestro_lite", "pipelines", "evals"):
            raise
        missing.append(name)
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("pipelines", "evals"))
print(json.dumps({{"loaded": loaded, "missing": missing}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["loaded"] == []
    assert len(report["missing"]) < len(below) // 2  # the check imported most of the package
    # And the CLI does load them, so the check can tell the difference.
    cli = subprocess.run(
        [sys.executable, "-c", "import sys, maestro_lite.cli; print('pipelines' in sys.modules)"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    assert cli.stdout.strip() == "True"


def test_test_doubles_live_in_testing_not_at_the_top_level() -> None:
    import maestro_lite.testing

    doubles = {"FunctionModel", "ModelCall", "ScriptedModel"}
    assert doubles <= set(maestro_lite.testing.__all__)
    assert not doubles & set(maestro_lite.__all__)
    with pytest.warns(DeprecationWarning, match="maestro_lite.testing"):
        assert maestro_lite.ScriptedModel is maestro_lite.testing.ScriptedModel
    with pytest.raises(AttributeError):
        _ = maestro_lite.NoSuchThing
