"""The package's layers, held to docs/architecture.md: imports go one way, and no import circle at
any level (module or subpackage, function-level imports included).

Read from the source with `ast`, so an import hidden inside a function counts like any other.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
PACKAGE = ROOT / "server" / "wxlogin"
ARCHITECTURE = ROOT / "docs" / "architecture.md"

# Lowest first; a module may import from its own layer and the layers below it. "base" is the
# package's own top-level modules; "face" its __init__ and __main__, which nothing imports.
LAYERS = ("base", "storage", "wechat", "login", "http", "ops", "face")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, source: str, known: Iterable[str], *, is_package: bool) -> set[str]:
    """Every module of ours that `name` imports, anywhere in its body."""
    known = set(known)
    found: set[str] = set()
    for node in ast.walk(ast.parse(source, name)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names if alias.name in known)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:  # `from . import scenes` imports the module scenes
                sub = f"{target}.{alias.name}"
                found.add(sub if sub in known else target)
    return {module for module in found if module in known and module != name}


def graph() -> dict[str, set[str]]:
    found = modules()
    return {
        name: imports_of(name, path.read_text(), found, is_package=path.name == "__init__.py")
        for name, path in found.items()
    }


def layer(module: str) -> str:
    parts = module.split(".")
    if module in ("wxlogin", "wxlogin.__main__"):
        return "face"
    if len(parts) == 2 and (PACKAGE / f"{parts[1]}.py").is_file():
        return "base"
    return parts[1]


def cycles(edges: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (or a self-loop): Tarjan."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1 or node in edges.get(node, ()):
                found.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def upward(edges: Mapping[str, set[str]]) -> list[str]:
    """Imports that go up the layers."""
    return sorted(
        f"{source} ({layer(source)}) imports {target} ({layer(target)})"
        for source, targets in edges.items()
        for target in targets
        if LAYERS.index(layer(target)) > LAYERS.index(layer(source))
    )


def packages_graph(edges: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """The same imports seen one level up: between layers."""
    up: dict[str, set[str]] = {}
    for source, targets in edges.items():
        up.setdefault(layer(source), set()).update(
            layer(target) for target in targets if layer(target) != layer(source)
        )
    return up


def test_no_import_circle_between_modules() -> None:
    assert cycles(graph()) == []


def test_no_import_circle_between_layers_and_imports_go_down() -> None:
    edges = graph()
    assert upward(edges) == []
    assert cycles(packages_graph(edges)) == []


def test_every_module_belongs_to_a_known_layer() -> None:
    assert {layer(name) for name in modules()} <= set(LAYERS)


def test_a_new_circle_or_an_upward_import_is_caught() -> None:
    """The checks themselves can fail: a function-level import of the app factory from a
    handler (the very circle this package once hid) is found by both."""
    edges = graph()
    assert "wxlogin.http.app" in edges["wxlogin.ops.cli"]
    source = "def handler():\n    from ..http.app import create_app\n"
    tree_imports = imports_from_source("wxlogin.login.operations", source)
    assert tree_imports == {"wxlogin.http.app"}
    bad = {name: set(targets) for name, targets in edges.items()}
    bad["wxlogin.login.operations"] |= tree_imports
    assert upward(bad) == [
        "wxlogin.login.operations (login) imports wxlogin.http.app (http)"
    ]
    assert any("wxlogin.login.operations" in cycle for cycle in cycles(bad))
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def imports_from_source(name: str, source: str) -> set[str]:
    return imports_of(name, source, modules(), is_package=False)


@pytest.mark.parametrize(
    "package", sorted(p.parent.name for p in PACKAGE.glob("*/__init__.py")), ids=str
)
def test_every_subpackage_says_what_lives_there_and_what_it_may_import(package: str) -> None:
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text()))
    assert doc is not None and "May import" in doc, f"wxlogin/{package}/__init__.py"


def test_the_architecture_doc_matches_the_tree() -> None:
    """Every module is named in docs/architecture.md, and every module it names exists."""
    text = ARCHITECTURE.read_text()
    named = {name for name in re.findall(r"`((?:[a-z0-9_]+/)*[a-z0-9_]+\.py)`", text)
             if not name.startswith("tests/")}
    tree = {str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
            if path.name != "__init__.py" or path.parent == PACKAGE}
    assert tree - named == set(), "modules missing from docs/architecture.md"
    assert named - tree == set(), "docs/architecture.md names modules that do not exist"
    # The layers in the doc's picture, top to bottom, are the ones enforced here.
    order = re.search(r"<!-- layers: ([a-z ,]+) -->", text)
    assert order is not None and order.group(1).split(", ") == list(reversed(LAYERS[:-1]))
