"""Import structure of the ``kdistill`` package: no cycles, no upward edges between tiers, no private cross-package imports.

Every module under ``src/kdistill`` is parsed with :mod:`ast` (nothing is imported), and every
``import`` / ``from ... import`` statement is an edge -- module level, inside functions, classes,
``try`` or ``if TYPE_CHECKING`` blocks alike. Relative imports are resolved against the importing
module; ``from X import name`` is an edge to ``X.name`` when that is a module of the package, else
to ``X``. ``import a.b.c`` is an edge to ``a.b.c`` only (no implicit edges to the parent packages,
so a package ``__init__`` importing its own submodules is not a cycle).

Rules:

(a) no import cycle between kdistill modules;
(b) no edge ``a -> b`` with ``tier(b) < tier(a)``, tiers (prefix match, so a module may become a package):
    0 ``kdistill.cli``; 1 ``kdistill.api`` and the ``kdistill`` package ``__init__``; 2 ``kdistill.recipes``,
    ``kdistill.search``, ``kdistill.provision`` (they run whole runs);
    4 ``kdistill.config``, ``kdistill.errors``; 3 everything else (engine, students, data, losses, compress ...);
(c) no import of a private name (``_x``, not ``__dunder__``) -- an imported name or a module path component --
    of ``kdistill.P`` from outside the first-level package ``kdistill.P`` (a top-level module such as
    ``kdistill/api.py`` is its own package).
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass
from pathlib import Path

PACKAGE = "kdistill"
SRC = Path(__file__).resolve().parents[1] / "src"

TIERS: tuple[tuple[str, int], ...] = (
    ("kdistill.cli", 0),
    ("kdistill.api", 1),
    ("kdistill.recipes", 2),
    ("kdistill.search", 2),  # search and provisioning orchestrate whole runs, as recipes do
    ("kdistill.provision", 2),
    ("kdistill.config", 4),
    ("kdistill.errors", 4),
)
MIDDLE_TIER = 3


@dataclass(frozen=True)
class Edge:
    """``src`` imports ``dst`` at ``file:line``; ``names`` are the plain names taken by ``from dst import ...``."""

    src: str
    dst: str
    file: str
    line: int
    names: tuple[str, ...] = ()

    def where(self) -> str:
        return f"{self.file}:{self.line}"


# ----------------------------------------------------------------------------- building the graph


def module_names(root: Path, package: str = PACKAGE) -> tuple[dict[str, Path], set[str]]:
    """``({module name: file}, {package names})`` for every ``.py`` under ``root/package``.

    Directories without ``__init__.py`` count as (namespace) packages too.
    """
    modules: dict[str, Path] = {}
    packages: set[str] = set()
    for path in sorted((root / package).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if "__pycache__" in parts:
            continue
        for i in range(1, len(parts)):
            packages.add(".".join(parts[:i]))
        if parts[-1] == "__init__":
            parts = parts[:-1]
            packages.add(".".join(parts))
        modules[".".join(parts)] = path
    return modules, packages


def _resolve_relative(importer: str, is_package: bool, level: int, module: str | None) -> str:
    base = importer.split(".") if is_package else importer.split(".")[:-1]
    if level > 1:
        base = base[: len(base) - (level - 1)]
    return ".".join([*base, *(module.split(".") if module else [])])


def edges_of(source: str, importer: str, is_package: bool, known: set[str], file: str,
             package: str = PACKAGE) -> list[Edge]:
    """Every import edge of one module's ``source`` to a module of ``package`` (``known`` = its module/package names)."""
    out: list[Edge] = []
    inside = lambda name: name == package or name.startswith(package + ".")  # noqa: E731
    for node in ast.walk(ast.parse(source, filename=file)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if inside(alias.name):
                    out.append(Edge(importer, alias.name, file, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            base = _resolve_relative(importer, is_package, node.level, node.module) if node.level else node.module
            if not base or not inside(base):
                continue
            plain: list[str] = []
            for alias in node.names:
                full = f"{base}.{alias.name}"
                if alias.name != "*" and full in known:
                    out.append(Edge(importer, full, file, node.lineno))
                else:
                    plain.append(alias.name)
            if plain:
                out.append(Edge(importer, base, file, node.lineno, tuple(plain)))
    return out


def package_graph(root: Path = SRC, package: str = PACKAGE) -> list[Edge]:
    modules, packages = module_names(root, package)
    known = set(modules) | packages
    edges: list[Edge] = []
    for name, path in modules.items():
        file = str(path.relative_to(root.parent)) if root.parent in path.parents else str(path)
        edges += edges_of(path.read_text(encoding="utf-8"), name, path.name == "__init__.py", known, file, package)
    return edges


# ----------------------------------------------------------------------------- the three rules


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def tier(module: str) -> int:
    if module == PACKAGE:
        return 1
    for prefix, level in TIERS:
        if module == prefix or module.startswith(prefix + "."):
            return level
    return MIDDLE_TIER


def first_level(module: str) -> str:
    """``kdistill.compress.schedule`` -> ``kdistill.compress``; ``kdistill.api`` -> itself; ``kdistill`` -> itself."""
    return ".".join(module.split(".")[:2])


def find_cycles(edges: list[Edge]) -> list[tuple[list[str], list[Edge]]]:
    """Import cycles: for each strongly connected component with more than one module, the distinct
    shortest cycles through each of its edges (``[a, b, ..., a]``) and the edges that make them.
    Self-imports are ignored."""
    graph: dict[str, dict[str, list[Edge]]] = {}
    for e in edges:
        if e.src != e.dst:
            graph.setdefault(e.src, {}).setdefault(e.dst, []).append(e)
            graph.setdefault(e.dst, {})
    # Tarjan's strongly connected components (iterative)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[set[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is None:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    comp = set()
                    while True:
                        top = stack.pop()
                        on_stack.discard(top)
                        comp.add(top)
                        if top == node:
                            break
                    if len(comp) > 1:
                        components.append(comp)
            elif child not in index:
                index[child] = low[child] = counter
                counter += 1
                stack.append(child)
                on_stack.add(child)
                work.append((child, iter(sorted(graph[child]))))
            elif child in on_stack:
                low[node] = min(low[node], index[child])

    def shortest_path(a: str, b: str, comp: set[str]) -> list[str]:
        prev: dict[str, str | None] = {a: None}
        queue = deque([a])
        while queue:
            node = queue.popleft()
            if node == b:
                break
            for nxt in sorted(graph[node]):
                if nxt in comp and nxt not in prev:
                    prev[nxt] = node
                    queue.append(nxt)
        path, node = [], b
        while node is not None:
            path.append(node)
            node = prev[node]
        return path[::-1]

    cycles: list[tuple[list[str], list[Edge]]] = []
    seen: set[tuple[str, ...]] = set()
    for comp in sorted(components, key=sorted):
        for a in sorted(comp):
            for b in sorted(graph[a]):
                if b not in comp:
                    continue
                cycle = [a, *shortest_path(b, a, comp)]  # a -> b -> ... -> a
                ring = cycle[:-1]
                key = tuple(ring[ring.index(min(ring)):] + ring[: ring.index(min(ring))])
                if key in seen:
                    continue
                seen.add(key)
                cycles.append((cycle, [graph[x][y][0] for x, y in zip(cycle, cycle[1:])]))
    return cycles


def upward_edges(edges: list[Edge]) -> list[Edge]:
    return [e for e in edges if tier(e.dst) < tier(e.src)]


def private_imports(edges: list[Edge]) -> list[tuple[Edge, str]]:
    """``(edge, private part)`` for every import of a private module or name across first-level packages."""
    out = []
    for e in edges:
        if first_level(e.src) == first_level(e.dst):
            continue
        private = [p for p in e.dst.split(".")[1:] if _is_private(p)] + [n for n in e.names if _is_private(n)]
        if private:
            out.append((e, ", ".join(private)))
    return out


def problems(edges: list[Edge]) -> list[str]:
    """One line per offending edge (cycle edges grouped per cycle); empty when the graph is clean."""
    lines: list[str] = []
    for cycle, cycle_edges in find_cycles(edges):
        lines.append(f"import cycle {cycle}: " + "; ".join(f"{e.src} -> {e.dst} at {e.where()}" for e in cycle_edges))
    for e in upward_edges(edges):
        lines.append(f"upward import {e.src} (tier {tier(e.src)}) -> {e.dst} (tier {tier(e.dst)}) at {e.where()}")
    for e, private in private_imports(edges):
        lines.append(f"private import of {private} from {e.dst} into {e.src} (package {first_level(e.src)}) at {e.where()}")
    return lines


# ----------------------------------------------------------------------------- tests


def test_kdistill_import_graph_is_acyclic_layered_and_uses_no_private_names_across_packages():
    edges = package_graph()
    assert len(edges) > 50, f"only {len(edges)} import edges found under {SRC / PACKAGE}; is the path right?"
    found = problems(edges)
    assert not found, f"{len(found)} import-structure problem(s):\n" + "\n".join(found)


def _graph(modules: dict[str, str]) -> list[Edge]:
    """Edges of an in-memory package: ``{module name: source}`` (names ending in ``__init__`` are packages)."""
    names = {m.removesuffix(".__init__") for m in modules}
    known = names | {".".join(m.split(".")[:i]) for m in names for i in range(1, len(m.split(".")))}
    edges = []
    for m, source in modules.items():
        name = m.removesuffix(".__init__")
        edges += edges_of(source, name, m.endswith(".__init__"), known, f"{m.replace('.', '/')}.py")
    return edges


def test_checker_finds_a_cycle_including_function_level_and_relative_imports():
    edges = _graph({
        "kdistill.__init__": "",
        "kdistill.a": "from kdistill.b import f\n",
        "kdistill.b": "def f():\n    from . import a\n",
        "kdistill.c": "import kdistill.a\n",
    })
    cycles = find_cycles(edges)
    assert [c for c, _ in cycles] == [["kdistill.a", "kdistill.b", "kdistill.a"]]
    assert [e.where() for e in cycles[0][1]] == ["kdistill/a.py:1", "kdistill/b.py:2"]
    assert any("import cycle" in p and "kdistill/b.py:2" in p for p in problems(edges))


def test_checker_package_init_importing_its_submodules_is_no_cycle():
    edges = _graph({
        "kdistill.__init__": "",
        "kdistill.p.__init__": "from kdistill.p.x import g\nfrom . import y\n",
        "kdistill.p.x": "from kdistill.p import y\n",  # y is a module: an edge to kdistill.p.y, not to the package
        "kdistill.p.y": "import kdistill.errors\n",
        "kdistill.errors": "",
    })
    assert {(e.src, e.dst) for e in edges} == {
        ("kdistill.p", "kdistill.p.x"), ("kdistill.p", "kdistill.p.y"), ("kdistill.p.x", "kdistill.p.y"),
        ("kdistill.p.y", "kdistill.errors")}
    assert problems(edges) == []


def test_checker_finds_upward_and_private_cross_package_imports():
    edges = _graph({
        "kdistill.__init__": "__version__ = '0'\n",
        "kdistill.api": "from kdistill.compress.schedule import _helper, run\nfrom kdistill import __version__\n",
        "kdistill.cli": "from kdistill.api import run\n",
        "kdistill.compress.__init__": "",
        "kdistill.compress.schedule": "def run():\n    from kdistill import api\n    from ._impl import _x\n",
        "kdistill.compress._impl": "",
        "kdistill.engine": "from kdistill.compress import _impl\nfrom kdistill.config import X\n",
        "kdistill.config": "from kdistill.engine import train\n",
    })
    up = {(e.src, e.dst, e.where()) for e in upward_edges(edges)}
    assert up == {("kdistill.compress.schedule", "kdistill.api", "kdistill/compress/schedule.py:2"),
                  ("kdistill.config", "kdistill.engine", "kdistill/config.py:1")}
    private = {(e.src, e.dst, what) for e, what in private_imports(edges)}
    # api -> schedule._helper and engine -> compress._impl cross packages; schedule -> _impl stays inside compress
    assert private == {("kdistill.api", "kdistill.compress.schedule", "_helper"),
                       ("kdistill.engine", "kdistill.compress._impl", "_impl")}
    assert {tuple(c) for c, _ in find_cycles(edges)} == {
        ("kdistill.api", "kdistill.compress.schedule", "kdistill.api"),
        ("kdistill.config", "kdistill.engine", "kdistill.config")}
    assert len(problems(edges)) == 6
