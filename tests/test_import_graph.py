"""The house has no import cycles: a static walk (``ast``) over every module of ``station``.

Nodes are the top-level packages and modules of ``station`` (``catalog``, ``audit``, ``custody``,
…) plus ``station_testbed``; an edge is any import a module makes of another node — at module
level or inside a function (lazy imports still make a dependency), not under ``TYPE_CHECKING``.
Entry points are left out as sources: the command modules (``station.cli`` and every module in
its ``_COMMAND_MODULES``), ``station.__main__``, and the numbered migration steps, which the
migration runner loads by number and nothing imports by name. Inside each package the modules
must not import each other in a circle either (``catalog.db`` ↔ ``catalog.migrations``).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import pytest

import station
from station.cli import _COMMAND_MODULES

ROOT = Path(station.__file__).resolve().parent
REPO = ROOT.parent
ENTRY_POINTS = {"station.cli", "station.__main__", *_COMMAND_MODULES}

Graph = dict[str, dict[str, set[str]]]  # node -> node -> modules making the import


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def is_entry_point(mod: str) -> bool:
    last = mod.rsplit(".", 1)[-1]
    is_step = mod.startswith("station.catalog.migrations.m") and last[1:5].isdigit()
    return mod in ENTRY_POINTS or is_step


def imported(tree: ast.Module, mod: str, is_package: bool) -> Iterable[str]:
    """Every module name a file imports (``from a import b`` gives ``a`` and ``a.b``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # annotations only
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = mod.split(".") if is_package else mod.split(".")[:-1]
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join([*pkg, base] if base else pkg)
            yield base
            yield from (f"{base}.{a.name}" for a in node.names)


def modules(roots: Iterable[Path]) -> Iterable[tuple[str, Path]]:
    for root in roots:
        for path in sorted(root.rglob("*.py")):
            yield module_name(path), path


def build(roots: Iterable[Path], known: set[str] | None = None) -> tuple[Graph, Graph]:
    """(graph of top-level nodes, graph of modules within each package)."""
    files = dict(modules(roots))
    known = known or set(files)
    between: Graph = defaultdict(lambda: defaultdict(set))
    within: Graph = defaultdict(lambda: defaultdict(set))
    for mod, path in files.items():
        if is_entry_point(mod):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for name in imported(tree, mod, path.name == "__init__.py"):
            if name not in known or name == mod:
                continue
            src, dst = node_of(mod), node_of(name)
            if src != dst:
                between[src][dst].add(mod)
            elif mod.count(".") > 1:
                within[mod][name].add(mod)
    return between, within


def node_of(mod: str) -> str:
    parts = mod.split(".")
    return ".".join(parts[:2]) if parts[0] == "station" and len(parts) > 1 else parts[0]


def cycles(graph: Graph) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def explain(graph: Graph, comp: list[str]) -> str:
    return "; ".join(
        f"{a} -> {b} ({', '.join(sorted(graph[a][b]))})"
        for a in comp
        for b in comp
        if b in graph.get(a, {})
    )


@pytest.fixture(scope="module")
def house() -> tuple[Graph, Graph]:
    return build([ROOT, REPO / "station_testbed"])


def test_no_cycles_between_packages(house: tuple[Graph, Graph]) -> None:
    between, _ = house
    assert "station.catalog" in between and "station.audit" in between["station.usb_dock"]
    found = cycles(between)
    assert not found, "\n".join(explain(between, c) for c in found)


def test_no_cycles_between_modules_of_a_package(house: tuple[Graph, Graph]) -> None:
    _, within = house
    # catalog.db opens and migrates; the runner's transaction comes from catalog.txn
    assert "station.catalog.migrations" in within["station.catalog.db"]
    found = cycles(within)
    assert not found, "\n".join(explain(within, c) for c in found)


def test_composition_root_and_bench_sit_on_top(house: tuple[Graph, Graph]) -> None:
    """Only the command layer reaches the daemon's assembly (``station.app``); only the demo
    command reaches the dock bench (``station_testbed``)."""
    between, _ = house
    users_of_app = {m for src in between for m in between[src].get("station.app", set())}
    users_of_bench = {m for src in between for m in between[src].get("station_testbed", set())}
    assert users_of_app == set()  # station.app.cli, its command, is an entry point
    assert users_of_bench == set()  # station.demo is a command module, an entry point
    for mod in ("station.app.cli", "station.demo"):
        assert mod in ENTRY_POINTS


def test_the_walk_finds_a_planted_cycle(tmp_path: Path) -> None:
    """The same walk over a small tree with a lazy import in a circle reports it."""
    pkg = tmp_path / "station"
    for sub in ("low", "high"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "high" / "a.py").write_text("from station.low.b import f\n")
    (pkg / "low" / "b.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from station.high import a\n"
        "def f():\n    from station.high.a import f as g\n    return g\n"
    )
    (pkg / "low" / "c.py").write_text("from . import d\n")
    (pkg / "low" / "d.py").write_text("from .c import x\n")
    global REPO
    saved, REPO = REPO, tmp_path
    try:
        between, within = build([pkg])
    finally:
        REPO = saved
    assert cycles(between) == [["station.high", "station.low"]]
    assert cycles(within) == [["station.low.c", "station.low.d"]]
