"""Embedded graph store choice: SQLite graph tables (headrace's store) vs kuzu, same rows.

    flock /tmp/headrace-bench.lock python bench/sql_graph_store.py [--files 200] [--repeats 2]

Rows: the fragments (per-file entity and relation contributions) of ``--files``
variants of the shared Sakila/Chinook schemas (as in ``bench/sql_ingest.py``,
parsed once, before timing). Each store gets the same sequence, in groups of about
5,000 rows: ``UNWIND`` batches of 500 node rows, then 500 edge rows (edges
``MATCH`` their endpoints), then one "finish" per file. Then a second pass where
every file changed (new generation): the old contributions must go.

- ``sqlite``: ``SqliteGraphStore`` exactly as the ingest drives it (finish = drop
  other generations, delete orphans, recompute the touched entities);
- ``kuzu`` (``pip install kuzu==0.11.3``; skipped if absent): ``MERGE`` of
  ``(:Entity)-[:DEFINED_IN {gen, role, props}]->(:File)`` and ``(:Entity)-[:LINK
  {key, file, gen}]->(:Entity)`` in Cypher ``UNWIND`` batches; its finish only
  deletes the file's other-generation contributions (less work than SQLite's:
  no orphan sweep, no property refresh), so the comparison favours kuzu.

- ``falkordb`` (``--falkordb-python /path/to/python3.12`` with ``falkordblite``
  installed; embedded FalkorDB needs Python >= 3.12): the same Cypher as kuzu, run
  by ``bench/sql_graph_falkordb.py`` in that interpreter on the same rows.

Printed per store: rows/s for the first load and for the all-changed pass, a
shortest-path query (payment → film over foreign keys, median of 20), file size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sql_ingest import DATA, variant

from headrace.graph.build import build_fragment
from headrace.graph.model import Fragment
from headrace.parsers.sql.dialect import detect_dialect
from headrace.parsers.sql.script import ScriptParser
from headrace.sinks.graph_base import EdgeRow, NodeRow, props_json

BATCH = 500
GROUP_ROWS = 5000
PATH_SRC = "relation:db01.main.payment"  # variant 11: the SQLite Sakila
PATH_DST = "relation:db01.main.film"


def fragments(files: int, gen: str) -> list[Fragment]:
    bases = sorted(DATA.glob("*/*.sql"))
    texts = [p.read_text(encoding="utf-8") for p in bases]
    parsers: dict[str, ScriptParser] = {}
    out = []
    for k in range(files):
        i = k % len(bases)
        path = f"/corpus/db{k % 10:02d}/v{k:05d}-{bases[i].name}"
        data = variant(texts[i], k).encode()
        dialect = detect_dialect(path, texts[i][:65536])
        parser = parsers.setdefault(dialect, ScriptParser(dialect))
        result, _ = parser.parse(data)
        out.append(build_fragment(path, gen, f"db{k % 10:02d}", result))
    return out


def groups(frags: list[Fragment]) -> list[list[Fragment]]:
    out: list[list[Fragment]] = [[]]
    rows = 0
    for frag in frags:
        out[-1].append(frag)
        rows += len(frag.nodes) + len(frag.edges)
        if rows >= GROUP_ROWS:
            out.append([])
            rows = 0
    return [g for g in out if g]


def rows_of(group: list[Fragment]) -> tuple[list[NodeRow], list[EdgeRow]]:
    nodes = [
        NodeRow(f.path, f.gen, n.key, n.kind, n.name, n.role, n.line, n.props)
        for f in group
        for n in f.nodes.values()
    ]
    edges = [
        EdgeRow(f.path, f.gen, e.key, e.type, e.src, e.dst, e.props)
        for f in group
        for e in f.edges.values()
    ]
    return nodes, edges


class Store:
    name = ""
    file: Path  # the store's file or folder (its size is reported)

    def group(self) -> Any: ...
    def write_nodes(self, rows: Sequence[NodeRow]) -> None: ...
    def write_edges(self, rows: Sequence[EdgeRow]) -> None: ...
    def finish(self, frag: Fragment) -> None: ...
    def path(self, src: str, dst: str) -> list[str] | None: ...
    def close(self) -> None: ...


class SqliteStore(Store):
    name = "sqlite"

    def __init__(self, folder: Path) -> None:
        from headrace.ledger.db import connect
        from headrace.sinks.graph_sqlite import SqliteGraphStore

        self.file = folder / "graph.sqlite"
        self.conn = connect(self.file)
        self.store = SqliteGraphStore(self.conn)

    def group(self) -> Any:
        return self.store.group()

    def write_nodes(self, rows: Sequence[NodeRow]) -> None:
        self.store.write_nodes(rows)

    def write_edges(self, rows: Sequence[EdgeRow]) -> None:
        self.store.write_edges(rows)

    def finish(self, frag: Fragment) -> None:
        self.store.finish_file(frag.path, frag.gen, list(frag.nodes), list(frag.edges))

    def path(self, src: str, dst: str) -> list[str] | None:
        return self.store.path(src, dst, ["REFERENCES"], 6)

    def close(self) -> None:
        self.conn.close()


class KuzuStore(Store):
    name = "kuzu"
    SCHEMA = (
        "CREATE NODE TABLE Entity(key STRING, kind STRING, name STRING, props STRING,"
        " PRIMARY KEY (key))",
        "CREATE NODE TABLE File(path STRING, PRIMARY KEY (path))",
        "CREATE REL TABLE DEFINED_IN(FROM Entity TO File, gen STRING, role INT64, props STRING)",
        "CREATE REL TABLE LINK(FROM Entity TO Entity, key STRING, type STRING, file STRING,"
        " gen STRING, props STRING)",
    )

    def __init__(self, folder: Path) -> None:
        import kuzu

        self.file = folder / "graph.kuzu"
        self.db = kuzu.Database(str(self.file))
        self.conn = kuzu.Connection(self.db)
        for statement in self.SCHEMA:
            self.conn.execute(statement)

    def group(self) -> Any:
        import contextlib

        return contextlib.nullcontext()

    def write_nodes(self, rows: Sequence[NodeRow]) -> None:
        params = [
            {
                "file": r.file,
                "gen": r.gen,
                "key": r.key,
                "kind": r.kind,
                "name": r.name,
                "role": r.role,
                "props": props_json(r.props),
            }
            for r in rows
        ]
        self.conn.execute(
            "UNWIND $rows AS r MERGE (f:File {path: r.file}) MERGE (n:Entity {key: r.key})"
            " ON CREATE SET n.kind = r.kind, n.name = r.name, n.props = r.props"
            " MERGE (n)-[d:DEFINED_IN]->(f) SET d.gen = r.gen, d.role = r.role, d.props = r.props",
            {"rows": params},
        )

    def write_edges(self, rows: Sequence[EdgeRow]) -> None:
        params = [
            {
                "key": r.key,
                "type": r.type,
                "src": r.src,
                "dst": r.dst,
                "file": r.file,
                "gen": r.gen,
                "props": props_json(r.props),
            }
            for r in rows
        ]
        self.conn.execute(
            "UNWIND $rows AS r MATCH (a:Entity {key: r.src}), (b:Entity {key: r.dst})"
            " MERGE (a)-[e:LINK {key: r.key, file: r.file}]->(b)"
            " SET e.gen = r.gen, e.type = r.type, e.props = r.props",
            {"rows": params},
        )

    def finish(self, frag: Fragment) -> None:
        params = {"p": frag.path, "g": frag.gen}
        self.conn.execute(
            "MATCH (:Entity)-[d:DEFINED_IN]->(:File {path: $p}) WHERE d.gen <> $g DELETE d", params
        )
        self.conn.execute(
            "MATCH (:Entity)-[e:LINK]->(:Entity) WHERE e.file = $p AND e.gen <> $g DELETE e",
            params,
        )

    def path(self, src: str, dst: str) -> list[str] | None:
        result: Any = self.conn.execute(  # (kuzu is installed for this benchmark only)
            "MATCH p = (a:Entity {key: $s})-[:LINK* SHORTEST 1..6 (r, n | WHERE r.type ="
            " 'REFERENCES')]-(b:Entity {key: $d}) RETURN properties(nodes(p), 'key') AS keys",
            {"s": src, "d": dst},
        )
        while result.has_next():
            row = result.get_next()
            assert isinstance(row, list)  # (a dict only for get_as_dict)
            return list(row[0])
        return None

    def close(self) -> None:
        self.conn.close()
        self.db.close()


def load(store: Store, frags: list[Fragment]) -> float:
    started = time.perf_counter()
    for group in groups(frags):
        nodes, edges = rows_of(group)
        with store.group():
            for i in range(0, len(nodes), BATCH):
                store.write_nodes(nodes[i : i + BATCH])
            for i in range(0, len(edges), BATCH):
                store.write_edges(edges[i : i + BATCH])
            for frag in group:
                store.finish(frag)
    return time.perf_counter() - started


def size_of(path: Path) -> int:
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return sum(
        Path(f"{path}{s}").stat().st_size
        for s in ("", "-wal", ".wal")
        if Path(f"{path}{s}").exists()
    )


def measure(
    make: Callable[[Path], Store], first: list[Fragment], second: list[Fragment]
) -> dict[str, Any]:
    folder = Path(tempfile.mkdtemp(prefix="graph-store-"))
    store = make(folder)
    rows = sum(len(f.nodes) + len(f.edges) for f in first)
    t_load = load(store, first)
    t_change = load(store, second)
    src, dst = PATH_SRC, PATH_DST
    trail = store.path(src, dst)
    times = []
    for _ in range(20):
        t = time.perf_counter()
        store.path(src, dst)
        times.append(time.perf_counter() - t)
    store.close()
    size = size_of(store.file)
    shutil.rmtree(folder, ignore_errors=True)
    return {
        "store": store.name,
        "rows": rows,
        "load_rows_per_s": round(rows / t_load),
        "changed_rows_per_s": round(rows / t_change),
        "path_ms": round(statistics.median(times) * 1000, 2),
        "path": [k.split(":", 1)[1] for k in trail] if trail else None,
        "size_mb": round(size / 1e6, 1),
    }


def falkordb_rows(first: list[Fragment], second: list[Fragment], out: Path) -> None:
    """The rows of both passes as JSON, for the FalkorDB leg in another interpreter."""

    def dump(frags: list[Fragment]) -> list[dict[str, Any]]:
        passes = []
        for group in groups(frags):
            nodes, edges = rows_of(group)
            passes.append(
                {
                    "nodes": [
                        {
                            "file": r.file,
                            "gen": r.gen,
                            "key": r.key,
                            "kind": r.kind,
                            "name": r.name,
                            "role": r.role,
                            "props": props_json(r.props),
                        }
                        for r in nodes
                    ],
                    "edges": [
                        {
                            "key": r.key,
                            "type": r.type,
                            "src": r.src,
                            "dst": r.dst,
                            "file": r.file,
                            "gen": r.gen,
                            "props": props_json(r.props),
                        }
                        for r in edges
                    ],
                    "files": [[f.path, f.gen] for f in group],
                }
            )
        return passes

    rows = sum(len(f.nodes) + len(f.edges) for f in first)
    data = {"rows": rows, "passes": [dump(first), dump(second)], "path": [PATH_SRC, PATH_DST]}
    out.write_text(json.dumps(data))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--falkordb-python", help="a Python >= 3.12 with falkordblite installed (optional)"
    )
    args = parser.parse_args()
    first = fragments(args.files, "g1")
    second = fragments(args.files, "g2")
    makers: list[Callable[[Path], Store]] = [SqliteStore]
    try:
        import kuzu

        print(f"kuzu {kuzu.__version__}")
        makers.append(KuzuStore)
    except ImportError:
        print("kuzu not installed (pip install kuzu==0.11.3): skipped")
    rows_file = Path(tempfile.mkdtemp(prefix="falkordb-rows-")) / "rows.json"
    if args.falkordb_python:
        falkordb_rows(first, second, rows_file)
    leg = Path(__file__).with_name("sql_graph_falkordb.py")
    for _ in range(args.repeats):
        for make in makers:
            print(json.dumps(measure(make, first, second)), flush=True)
        if args.falkordb_python:
            proc = subprocess.run(
                [args.falkordb_python, str(leg), str(rows_file)],
                capture_output=True,
                text=True,
                check=False,
            )
            lines = [x for x in proc.stdout.splitlines() if x.startswith("{")]
            print(lines[-1] if lines else f"falkordb failed: {proc.stderr[-1500:]}", flush=True)


if __name__ == "__main__":
    main()
