"""Helpers of the SQL graph tests: fixture copies, ingest, graph snapshots."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw

from headrace.graph.ingest import GraphIndex, GraphRunStats
from headrace.sinks.graph_base import GraphStore
from headrace.sinks.graph_sqlite import SqliteGraphStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "sql"
SAKILA = FIXTURES / "sakila"
CHINOOK = FIXTURES / "chinook"


def copy_sql(src: Path, dst: Path, names: list[str] | None = None) -> Path:
    """Copy the ``*.sql`` files of ``src`` (or only ``names``) into ``dst``."""
    dst.mkdir(parents=True, exist_ok=True)
    for path in sorted(src.glob("*.sql")):
        if names is None or path.name in names:
            shutil.copy(path, dst / path.name)
    return dst


def ingest(
    graph: Path,
    root: Path,
    factory: Callable[[apsw.Connection], GraphStore] | None = None,
    **kw: Any,
) -> GraphRunStats:
    with GraphIndex(graph, store_factory=factory, **kw) as index:
        return index.ingest([str(root)])


def snapshot(graph: Path) -> list[dict[str, Any]]:
    """The canonical dump of the graph (nodes with their files, then edges)."""
    with GraphIndex(graph) as index:
        return list(index.store.dump())  # type: ignore[attr-defined]


def query(graph: Path, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with GraphIndex(graph) as index:
        store = index.store
        assert isinstance(store, SqliteGraphStore)
        return [tuple(r) for r in store.conn.execute(sql, params)]


def contributions(graph: Path) -> list[tuple[Any, ...]]:
    """Every per-file contribution row of the embedded store, ordered."""
    with GraphIndex(graph) as index:
        store = index.store
        assert isinstance(store, SqliteGraphStore)
        rows = list(store.contributions())
    nodes = [r for r in rows if r[0] == "n"]
    edges = [r for r in rows if r[0] == "e"]
    return sorted(nodes, key=repr) + sorted(edges, key=repr)
