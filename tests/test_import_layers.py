"""Imports flow one way. Each unit below is a subpackage of ``analytics`` (``analytics.store``,
``analytics.deployments``, …), a top-level module of it, or ``assessment``/``dashboards``; an
import between two units is an edge, lazy imports inside functions included. A cycle means two
units can no longer change on their own; the CLI, at the top, once sat in two."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def unit_of(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] in ("dashboards", "assessment"):
        return parts[0]
    if parts[0] != "analytics":
        return None
    if len(parts) == 1:
        return "analytics"
    candidate = ROOT / "analytics" / parts[1]
    return f"analytics.{parts[1]}" if candidate.is_dir() or candidate.with_suffix(".py").exists() else None


def import_graph() -> dict[str, dict[str, str]]:
    """unit -> {imported unit: one file with such an import}."""
    graph: dict[str, dict[str, str]] = defaultdict(dict)
    for package in ("analytics", "assessment", "dashboards"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            unit = unit_of(module)
            assert unit is not None
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                names: list[str] = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    # `from analytics import store` names the subpackage in the alias
                    names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                for name in names:
                    target = unit_of(name)
                    if target and target != unit and target != "analytics":
                        graph[unit].setdefault(target, str(path.relative_to(ROOT)))
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[list[str]]:
    """Strongly connected components of more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, {}):
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
            if len(component) > 1:
                found.append(sorted(component))

    for node in list(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert cycles({"a": {"b": "x"}, "b": {"c": "y"}, "c": {"a": "z"}, "d": {"a": "w"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b": "x"}, "b": {}}) == []


def test_no_two_units_import_each_other() -> None:
    graph = import_graph()
    assert "analytics.store" in graph["analytics.cli"]  # the scan sees imports at all
    found = cycles(graph)
    detail = [
        f"{a} -> {b} ({graph[a][b]})"
        for component in found for a in component for b in graph[a] if b in component
    ]
    assert not found, "import cycles:\n" + "\n".join(detail)


def test_deriving_deployments_depends_on_no_source_of_rows() -> None:
    """Collectors, importers and the receiver feed analytics.deployments; it must not call back."""
    feeders = {"analytics.collectors", "analytics.importers", "analytics.webhooks", "analytics.cli",
               "analytics.demo", "dashboards"}
    assert not feeders & set(import_graph()["analytics.deployments"])


def test_only_analytics_store_opens_a_database() -> None:
    """The engine underneath can change: only analytics.store connects, attaches or names the
    DuckLake catalog; everyone else gets a connection from it (and may use duckdb's types)."""
    opening = ("duckdb.connect(", "ATTACH ", "ducklake:")
    outside = [
        f"{path.relative_to(ROOT)}: {needle}"
        for package in ("analytics", "assessment", "dashboards")
        for path in sorted((ROOT / package).rglob("*.py"))
        if not path.is_relative_to(ROOT / "analytics" / "store")
        for needle in opening
        if needle in path.read_text()
    ]
    assert outside == [], outside
    assert "duckdb.connect(" in (ROOT / "analytics" / "store" / "connection.py").read_text()
