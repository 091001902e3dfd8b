"""The FalkorDB leg of ``bench/sql_graph_store.py`` (embedded FalkorDB needs Python >= 3.12).

    python3.12 -m venv /tmp/fvenv && /tmp/fvenv/bin/pip install falkordblite
    /tmp/fvenv/bin/python bench/sql_graph_falkordb.py ROWS.json

``ROWS.json`` is written by ``sql_graph_store.py --falkordb-python``: two passes
(first load, every file changed) of groups of node rows, edge rows and files. The
same work as the kuzu leg: ``UNWIND … MERGE`` batches of 500, contributions as
``DEFINED_IN`` relations, one relation type per schema relation (like the Neo4j
store), a finish per file that deletes the file's other generations; then the
payment → film shortest path over ``REFERENCES``. Prints one JSON line.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 500
TYPES = {
    "CONTAINS",
    "HAS_COLUMN",
    "REFERENCES",
    "READS_FROM",
    "WRITES_TO",
    "ATTACHED_TO",
    "INDEXES",
}


def load(graph: Any, passes: list[list[dict[str, Any]]], n: int) -> float:
    started = time.perf_counter()
    for group in passes[n]:
        nodes, edges, files = group["nodes"], group["edges"], group["files"]
        for i in range(0, len(nodes), BATCH):
            graph.query(
                "UNWIND $rows AS r MERGE (f:File {path: r.file}) MERGE (n:Entity {key: r.key})"
                " ON CREATE SET n.kind = r.kind, n.name = r.name, n.props = r.props"
                " MERGE (n)-[d:DEFINED_IN]->(f)"
                " SET d.gen = r.gen, d.role = r.role, d.props = r.props",
                {"rows": nodes[i : i + BATCH]},
            )
        by_type: dict[str, list[dict[str, Any]]] = {}
        for row in edges:
            by_type.setdefault(row["type"], []).append(row)
        for type_, rows in by_type.items():
            assert type_ in TYPES  # a label is never taken from data unchecked
            for i in range(0, len(rows), BATCH):
                graph.query(
                    "UNWIND $rows AS r MATCH (a:Entity {key: r.src}), (b:Entity {key: r.dst})"
                    f" MERGE (a)-[e:{type_} {{key: r.key, file: r.file}}]->(b)"
                    " SET e.gen = r.gen, e.props = r.props",
                    {"rows": rows[i : i + BATCH]},
                )
        for path, gen in files:
            params = {"p": path, "g": gen}
            graph.query(
                "MATCH (:Entity)-[d:DEFINED_IN]->(:File {path: $p}) WHERE d.gen <> $g DELETE d",
                params,
            )
            graph.query(
                "MATCH (:Entity)-[e]->(:Entity) WHERE e.file = $p AND e.gen <> $g DELETE e",
                params,
            )
    return time.perf_counter() - started


def main() -> None:
    from redislite.falkordb_client import FalkorDB

    data = json.loads(Path(sys.argv[1]).read_text())
    folder = Path(tempfile.mkdtemp(prefix="falkordb-"))
    db = FalkorDB(str(folder / "graph.db"))
    graph = db.select_graph("schema")
    graph.query("CREATE INDEX FOR (n:Entity) ON (n.key)")
    graph.query("CREATE INDEX FOR (f:File) ON (f.path)")
    rows = data["rows"]
    t_load = load(graph, data["passes"], 0)
    t_change = load(graph, data["passes"], 1)
    query = (
        "MATCH (a:Entity {key: $s}), (b:Entity {key: $d})"
        " WITH shortestPath((a)-[:REFERENCES*1..6]->(b)) AS p"  # directed only
        " RETURN [x IN nodes(p) | x.key]"
    )
    params = {"s": data["path"][0], "d": data["path"][1]}
    trail = graph.query(query, params).result_set
    times = []
    for _ in range(20):
        t = time.perf_counter()
        graph.query(query, params)
        times.append(time.perf_counter() - t)
    print(
        json.dumps(
            {
                "store": "falkordb",
                "rows": rows,
                "load_rows_per_s": round(rows / t_load),
                "changed_rows_per_s": round(rows / t_change),
                "path_ms": round(statistics.median(times) * 1000, 2),
                "path": [k.split(":", 1)[1] for k in trail[0][0]] if trail else None,
                "size_mb": None,  # held by the redis-server process, saved on shutdown
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
