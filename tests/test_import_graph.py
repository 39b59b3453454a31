"""The import graph of ``frontier`` and ``objectives``, read from the source with ``ast``.

Every ``import`` counts, at module level, inside functions and under ``TYPE_CHECKING``:
a lazy import still ties two modules together. The rules:

- no cycles between modules;
- the engine (``frontier``) uses only the objectives' declared API: public modules (no
  ``_``-prefixed part) that declare ``__all__``, and only the names listed there;
- the objectives use only the engine's public API: public modules, and of their names
  those in ``__all__``, or without a leading underscore where a module declares none;
- inside the engine, a private module (``frontier.arch._adapter``) or a private name
  (``_clone``) is used only within the package it belongs to (``frontier.arch`` and
  below); another package reaches it through its public modules and names.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("frontier", "objectives")


@dataclass(frozen=True)
class Import:
    """``importer`` imports ``module`` (one of ours), or ``name`` from it when not None."""

    importer: str
    module: str
    name: str | None
    line: int

    def __str__(self) -> str:
        what = self.module if self.name is None else f"{self.module}.{self.name}"
        return f"{self.importer}:{self.line} imports {what}"


@cache
def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the packages (a package is its __init__)."""
    out: dict[str, Path] = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def _ours(name: str) -> bool:
    return name.split(".")[0] in PACKAGES


@cache
def imports_of(name: str) -> tuple[Import, ...]:
    """Every import of one of our modules by ``name``, wherever it is in the file."""
    mods = modules()
    tree = ast.parse(mods[name].read_text(), filename=str(mods[name]))
    out: list[Import] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [Import(name, a.name, None, node.lineno) for a in node.names if _ours(a.name)]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                package = name if _is_package(name) else name.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            if not _ours(base):
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                if sub in mods:
                    out.append(Import(name, sub, None, node.lineno))
                else:
                    out.append(Import(name, base, alias.name, node.lineno))
    return tuple(out)


@cache
def declared_all(name: str) -> frozenset[str] | None:
    """The names in a module's literal ``__all__``, or None where it declares none."""
    tree = ast.parse(modules()[name].read_text())
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        if isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            value = ast.literal_eval(node.value) if node.value is not None else None
            assert isinstance(value, list | tuple), f"{name}: __all__ is not a literal list"
            return frozenset(value)
    return None


def graph() -> dict[str, set[str]]:
    """Module -> the modules it imports (ours only, itself excluded)."""
    mods = modules()
    out: dict[str, set[str]] = {m: set() for m in mods}
    for m in mods:
        for imp in imports_of(m):
            assert imp.module in mods, f"{imp}: no such module"
            if imp.module != m:
                out[m].add(imp.module)
    return out


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(edges[v]):
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
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def _private(module: str) -> bool:
    return any(p.startswith("_") and not p.endswith("__") for p in module.split("."))


def api_violations(importer_pkg: str, target_pkg: str, *, strict: bool) -> list[str]:
    """Imports from ``importer_pkg`` into ``target_pkg`` that reach past its public API.

    Public: a module without a ``_``-prefixed part; of its names, those in its ``__all__``,
    or where it declares none (only allowed when not ``strict``), those without a leading
    underscore (PEP 8).
    """
    bad: list[str] = []
    for m in modules():
        if m.split(".")[0] != importer_pkg:
            continue
        for imp in imports_of(m):
            if imp.module.split(".")[0] != target_pkg:
                continue
            if _private(imp.module):
                bad.append(f"{imp} (a private module)")
                continue
            if imp.name is None:
                continue
            public = declared_all(imp.module)
            if public is None and strict:
                bad.append(f"{imp} ({imp.module} declares no __all__)")
            elif public is None and imp.name.startswith("_"):
                bad.append(f"{imp} (a private name)")
            elif public is not None and imp.name not in public:
                bad.append(f"{imp} ({imp.name} is not in {imp.module}.__all__)")
    return bad


def _owner(module: str) -> str | None:
    """The package a private module belongs to (the part before its first ``_`` part),
    or None for a public module."""
    parts = module.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not part.endswith("__"):
            return ".".join(parts[:i])
    return None


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def private_reaches(package: str) -> list[str]:
    """Imports inside ``package`` of another package's private modules or names."""
    bad: list[str] = []
    for m in modules():
        if m.split(".")[0] != package:
            continue
        for imp in imports_of(m):
            if imp.module.split(".")[0] != package:
                continue
            owner = _owner(imp.module)
            if owner is not None and not _within(m, owner):
                bad.append(f"{imp} (private to {owner})")
            elif imp.name is not None and imp.name.startswith("_") and not imp.name.endswith("__"):
                home = imp.module if _is_package(imp.module) else imp.module.rpartition(".")[0]
                if not _within(m, home):
                    bad.append(f"{imp} (a private name of {home})")
    return bad


# --------------------------------------------------------------------------- the rules


def test_the_graph_is_read_from_every_module() -> None:
    g = graph()
    assert {"frontier", "frontier.cli", "objectives", "objectives.tasks"} <= set(g)
    # imports inside functions and relative imports are seen
    assert "frontier.models" in g["frontier"]  # lazy, in __getattr__
    assert "frontier.errors" in g["objectives"] or "frontier.errors" in g["objectives._base"]


def test_no_cycles_between_modules() -> None:
    found = cycles(graph())
    assert not found, "import cycles: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_engine_uses_only_the_objectives_public_api() -> None:
    bad = api_violations("frontier", "objectives", strict=True)
    assert not bad, "\n".join(bad)


def test_the_objectives_use_only_the_engines_public_api() -> None:
    bad = api_violations("objectives", "frontier", strict=False)
    assert not bad, "\n".join(bad)


def test_no_package_reaches_into_another_ones_private_modules() -> None:
    bad = private_reaches("frontier")
    assert not bad, "\n".join(bad)


#: The engine's packages, lowest first: a package imports only from its own layer and
#: those below (the top-level modules, ``frontier.errors`` and the like, sit apart).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("arch", "data", "models"),
    ("importance", "pruning", "export"),
    ("study", "laws", "plots"),
    ("search",),
    ("report", "repair", "reconstruct"),
    ("cli",),
)
MAX_MODULE_LINES = 400


def _layer(module: str) -> int | None:
    parts = module.split(".")
    if len(parts) < 2 or not _is_package(".".join(parts[:2])):
        return None
    for level, names in enumerate(LAYERS):
        if parts[1] in names:
            return level
    raise AssertionError(f"{module}: its package is in no layer of LAYERS")


def upward_imports() -> list[str]:
    """Imports from a package of the engine into a package of a higher layer."""
    bad = []
    for m in modules():
        if m.split(".")[0] != "frontier" or (low := _layer(m)) is None:
            continue
        for imp in imports_of(m):
            high = _layer(imp.module) if imp.module.startswith("frontier.") else None
            if high is not None and high > low:
                bad.append(f"{imp} (layer {low} imports layer {high})")
    return bad


def test_no_package_imports_upward() -> None:
    bad = upward_imports()
    assert not bad, "\n".join(bad)


def test_no_module_is_longer_than_the_house_allows() -> None:
    long = {
        m: n
        for m, path in modules().items()
        if (n := len(path.read_text().splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


# --------------------------------------------------------------------------- the checker


def test_the_private_rule_sees_a_reach_and_allows_its_own_package() -> None:
    assert _owner("frontier.arch._adapter") == "frontier.arch"
    assert _owner("frontier._io") == "frontier"
    assert _owner("frontier.arch.weights") is None
    assert _within("frontier.arch.weights", "frontier.arch")
    assert not _within("frontier.search.trial", "frontier.arch")
    assert not _within("frontier.archive", "frontier.arch")


def test_cycle_finder_finds_a_two_module_cycle_and_ignores_a_chain() -> None:
    assert cycles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [["a", "b"]]
    assert cycles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(
    ("module", "private"),
    [
        ("frontier._io", True),
        ("frontier.arch._weights", True),
        ("objectives._lm", True),
        ("frontier.data.mirror", False),
        ("frontier", False),
        ("frontier.__main__", False),
    ],
)
def test_private_modules_are_those_with_an_underscore_part(module: str, private: bool) -> None:
    assert _private(module) is private
