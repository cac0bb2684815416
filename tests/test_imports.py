"""edgessl's import graph, read with ``ast`` (nothing is imported): no cycles, no arrow up.

Every import statement counts, at module level or inside a function (a lazy import that points
up is still a design cycle), in every form: ``import a.b``, ``from a import b`` (``b`` a module
or a name), ``from . import x`` and ``from ..b import y``, package ``__init__`` re-exports.
The layers are DESIGN.md's "Layout", bottom to top. Also: every module that makes Archs loads
the spaces when it is imported (an Arch is validated by the check its space registered).
"""

from __future__ import annotations

import ast
from collections import deque
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "edgessl"

# A module may import its own layer and the layers below it; the key is the name under edgessl
# (a module or a sub-package; "edgessl" is the root package itself).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("edgessl", "errors", "utils"),
    ("ops", "runtime", "dist"),
    ("arch", "spaces"),
    ("supernet", "models", "baselines", "data", "ssl"),
    ("train", "evaluate", "cost", "deploy", "checkpoint"),
    ("search", "profile", "study"),
    ("cli", "__main__"),
)
SELF_CONTAINED = ("ops", "runtime")  # DESIGN.md: they import nothing of edgessl


def module_names(root: Path) -> dict[str, Path]:
    """Dotted name -> file of every module of the package at ``root``."""
    names = {}
    for path in sorted(root.rglob("*.py")):
        parts = (root.name, *path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _resolve(name: str, known: dict[str, Path]) -> str | None:
    """The module of ``known`` that ``name`` (a module, or a name inside one) lands in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _import_statements(tree: ast.AST, lazy: bool):
    """Every import statement of ``tree``; without ``lazy``, only those run on import (none
    inside a function body)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
        elif lazy or not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            stack.extend(ast.iter_child_nodes(node))


def imports_of(module: str, path: Path, known: dict[str, Path],
               lazy: bool = True) -> list[tuple[str, int]]:
    """(imported module of ``known``, line) for every import statement in the file (with
    ``lazy``, also those inside functions)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in _import_statements(ast.parse(path.read_text(), str(path)), lazy):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            # ``from pkg import sub`` imports the module pkg.sub; ``from mod import name``, mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base
                       for a in node.names]
        for target in targets:
            hit = _resolve(target, known)
            if hit is not None and hit != module:
                found.append((hit, node.lineno))
    return found


def import_graph(root: Path, lazy: bool = True) -> dict[str, dict[str, int]]:
    """module -> {imported module: first line importing it}, inside the package at ``root``
    (without ``lazy``: only the imports that run when the module is imported)."""
    known = module_names(root)
    graph: dict[str, dict[str, int]] = {m: {} for m in known}
    for module, path in known.items():
        for target, line in imports_of(module, path, known, lazy):
            graph[module][target] = min(line, graph[module].get(target, line))
    return graph


def reachable(graph: dict[str, dict[str, int]], start: str) -> set[str]:
    """Every module that importing ``start`` imports, itself included."""
    seen, todo = {start}, [start]
    while todo:
        for nxt in graph[todo.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def makes_archs(path: Path) -> bool:
    """Whether the file builds an Arch: ``Arch(...)``, ``Arch.from_dict/from_json/load``."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            f = node.func
            if isinstance(f, ast.Name) and f.id == "Arch":
                return True
            if (isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name)
                    and f.value.id == "Arch" and f.attr in ("from_dict", "from_json", "load")):
                return True
    return False


def _shortest_cycle(graph: dict[str, dict[str, int]], start: str, within: set[str]) -> list[str]:
    parent = {start: None}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for nxt in graph[node]:
            if nxt == start:
                path = [node]
                while parent[path[-1]] is not None:
                    path.append(parent[path[-1]])
                return [*reversed(path), start]
            if nxt in within and nxt not in parent:
                parent[nxt] = node
                queue.append(nxt)
    raise AssertionError(f"{start} is on no cycle")


def cycles(graph: dict[str, dict[str, int]]) -> list[tuple[list[str], list[str]]]:
    """(one shortest cycle, all members) per group of modules that import each other
    (strongly connected components, Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = {stack.pop()}
            while node not in group:
                group.add(stack.pop())
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [(_shortest_cycle(graph, min(g), g), sorted(g)) for g in sorted(groups, key=min)]


def describe(cycle: list[str], graph: dict[str, dict[str, int]], root: Path) -> str:
    """``a (a.py:12) -> b (b.py:3) -> a``: each arrow with the line that makes it."""
    files = module_names(root)
    steps = [f"{a} ({files[a].relative_to(root.parent)}:{graph[a][b]})"
             for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join([*steps, cycle[-1]])


def layer_of(module: str) -> int:
    key = module.split(".")[1] if "." in module else module
    for i, names in enumerate(LAYERS):
        if key in names:
            return i
    raise KeyError(key)


# ---- the walker on a package made for it -------------------------------------------------------
def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    return tmp_path / "pkg"


def test_walker_sees_every_form_of_import(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "from pkg.sub import thing\n",
        "pkg/a.py": "import os\nimport pkg.b as b\n",
        "pkg/b.py": "def f():\n    from . import c\n",
        "pkg/c.py": "from pkg import sub\n",
        "pkg/d.py": "from .sub.deep import x, y\n",
        "pkg/sub/__init__.py": "from .. import a\nfrom .deep import x\n",
        "pkg/sub/deep.py": "class X:\n    def m(self):\n        import pkg.c\n",
    })
    graph = import_graph(root)
    assert graph == {
        "pkg": {"pkg.sub": 1}, "pkg.a": {"pkg.b": 2}, "pkg.b": {"pkg.c": 2},
        "pkg.c": {"pkg.sub": 1}, "pkg.d": {"pkg.sub.deep": 1},
        "pkg.sub": {"pkg.a": 1, "pkg.sub.deep": 2}, "pkg.sub.deep": {"pkg.c": 3}}
    [(cycle, group)] = cycles(graph)
    assert group == ["pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.deep"]
    assert describe(cycle, graph, root) == (
        "pkg.a (pkg/a.py:2) -> pkg.b (pkg/b.py:2) -> pkg.c (pkg/c.py:1) -> "
        "pkg.sub (pkg/sub/__init__.py:1) -> pkg.a")
    on_import = import_graph(root, lazy=False)  # the imports inside functions are left out
    assert on_import["pkg.b"] == on_import["pkg.sub.deep"] == {}
    assert reachable(on_import, "pkg.a") == {"pkg.a", "pkg.b"}
    assert reachable(graph, "pkg.a") == {"pkg.a", "pkg.b", "pkg.c", "pkg.sub", "pkg.sub.deep"}


def test_walker_reports_each_separate_cycle_and_no_acyclic_chain(tmp_path):
    root = _package(tmp_path, {
        "pkg/__init__.py": "",
        "pkg/x.py": "from pkg import y\n",
        "pkg/y.py": "def f():\n    import pkg.x\n",
        "pkg/p.py": "from pkg.q import name\n",
        "pkg/q.py": "from pkg.r import name\n",
        "pkg/r.py": "def g():\n    from pkg.p import name\n",
        "pkg/top.py": "import pkg.x, pkg.p\n",
    })
    found = [cycle for cycle, _ in cycles(import_graph(root))]
    assert found == [["pkg.p", "pkg.q", "pkg.r", "pkg.p"], ["pkg.x", "pkg.y", "pkg.x"]]


# ---- edgessl -------------------------------------------------------------------------------------
def test_edgessl_has_no_import_cycle():
    graph = import_graph(PACKAGE)
    found = [f"{describe(cycle, graph, PACKAGE)}   [{len(group)} modules: {', '.join(group)}]"
             for cycle, group in cycles(graph)]
    assert not found, "import cycles:\n" + "\n".join(found)


def test_every_module_has_a_layer():
    unplaced = sorted({m for m in import_graph(PACKAGE) if _unplaced(m)})
    assert not unplaced, f"modules on no layer of LAYERS (place them): {unplaced}"


def _unplaced(module: str) -> bool:
    try:
        layer_of(module)
    except KeyError:
        return True
    return False


def test_no_arrow_points_up_the_layers():
    graph = import_graph(PACKAGE)
    files = module_names(PACKAGE)
    up = [f"{a} (layer {layer_of(a)}, {files[a].relative_to(PACKAGE.parent)}:{line}) -> "
          f"{b} (layer {layer_of(b)})"
          for a, targets in sorted(graph.items()) if not _unplaced(a)
          for b, line in targets.items() if not _unplaced(b) and layer_of(b) > layer_of(a)]
    assert not up, "imports that point up the layers:\n" + "\n".join(up)


def test_modules_that_make_archs_load_the_space_checks():
    """An Arch is validated by the check its space registered, which happens when
    edgessl.spaces is imported (edgessl.arch imports no space). A module that makes Archs
    must import the spaces when it is itself imported, or calling it first thing in a fresh
    interpreter would refuse every Arch ("unknown space")."""
    on_import = import_graph(PACKAGE, lazy=False)
    missing = [m for m, path in module_names(PACKAGE).items()
               if m != "edgessl.arch" and makes_archs(path)
               and not any(r.split(".")[:2] == ["edgessl", "spaces"]  # a sub-module runs the
                           for r in reachable(on_import, m))]      # package __init__ first
    assert not missing, ("make Archs but do not import edgessl.spaces (directly or through "
                         f"their module-level imports): {sorted(missing)}")


def test_ops_and_runtime_import_nothing_else_of_edgessl():
    graph = import_graph(PACKAGE)
    outside = [f"{a} -> {b}" for a, targets in sorted(graph.items())
               for b in targets for name in SELF_CONTAINED
               if a.startswith(f"edgessl.{name}") and not b.startswith(f"edgessl.{name}")]
    assert not outside, "ops/runtime import other edgessl modules:\n" + "\n".join(outside)
