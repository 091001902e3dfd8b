"""``Neo4jGraphStore``: the same graph in Neo4j, through the official driver.

It implements ``GraphStore`` with the embedded store's semantics, in Cypher:

- an entity is ``(:Entity:<Kind> {key})``; a file's contribution is the
  relationship ``(entity)-[:DEFINED_IN {gen, role, line, props}]->(:File {path})``
  (``props`` is the same JSON text the embedded store keeps);
- a relation is ``(a)-[:<TYPE> {key, by}]->(b)`` where ``by`` lists
  ``"<gen>@<path>"`` for each contributing file;
- ``write_nodes`` / ``write_edges``: one explicit transaction per batch, one
  ``UNWIND $rows … MERGE`` per label or type (labels cannot be parameters; they
  come from fixed whitelists, never from the data); edges ``MATCH`` their
  endpoints;
- ``finish_file``: removes the file's other generations, ``DETACH DELETE``s
  entities nobody contributes any more and copies the best contribution (defining
  before mentioning, then lowest path) onto each touched entity.

The ingest, batching, splitting, retries and ledger are the tested path shared
with the embedded store; only this module talks to the server. A Neo4j server
cannot run on the development machine, so it is exercised there with a recording
double of the driver (query shape, parameters, batching, error translation), not
against a live database.

Errors: ``neo4j.exceptions.TransientError``, ``ServiceUnavailable`` and
``SessionExpired`` become ``TransientError`` (retried); any other driver error
is ``StoreError`` (the batch is split to isolate the rows the server refuses).
"""

from __future__ import annotations

import contextlib
import json
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from headrace.errors import StoreError, TransientError
from headrace.sinks.graph_base import DEFINES, EdgeRow, GraphEdge, GraphNode, NodeRow

LABELS = {
    "database": "Database",
    "schema": "Schema",
    "table": "Table",
    "view": "View",
    "column": "Column",
    "index": "Index",
    "routine": "Routine",
}
REL_TYPES = frozenset(
    {"CONTAINS", "HAS_COLUMN", "REFERENCES", "READS_FROM", "WRITES_TO", "ATTACHED_TO", "INDEXES"}
)

SCHEMA = (
    "CREATE CONSTRAINT headrace_entity_key IF NOT EXISTS FOR (n:Entity) REQUIRE n.key IS UNIQUE",
    "CREATE CONSTRAINT headrace_file_path IF NOT EXISTS FOR (f:File) REQUIRE f.path IS UNIQUE",
)

NODE_MERGE = """
UNWIND $rows AS r
MERGE (f:File {path: r.file})
MERGE (n:Entity {key: r.key})
ON CREATE SET n.kind = r.kind, n.name = r.name
%s
MERGE (n)-[d:DEFINED_IN]->(f)
SET d.gen = r.gen, d.role = r.role, d.line = r.line, d.kind = r.kind, d.name = r.name,
    d.props = r.props
"""

EDGE_MERGE = """
UNWIND $rows AS r
MATCH (a:Entity {key: r.src})
MATCH (b:Entity {key: r.dst})
MERGE (a)-[e:%s {key: r.key}]->(b)
SET e.props = r.props,
    e.by = [x IN coalesce(e.by, []) WHERE NOT x ENDS WITH r.suffix] + (r.gen + r.suffix)
"""

STALE_EDGES = """
MATCH (:File {path: $path})<-[:DEFINED_IN]-(:Entity)-[e]-(:Entity)
WHERE e.by IS NOT NULL
  AND any(x IN e.by WHERE x ENDS WITH $suffix AND ($gen IS NULL OR x <> $gen + $suffix))
WITH DISTINCT e
SET e.by = [x IN e.by WHERE NOT x ENDS WITH $suffix OR ($gen IS NOT NULL AND x = $gen + $suffix)]
WITH e WHERE size(e.by) = 0
DELETE e
"""

STALE_NODES = """
MATCH (n:Entity)-[d:DEFINED_IN]->(:File {path: $path})
WHERE $gen IS NULL OR d.gen <> $gen
WITH n, d, n.key AS key
DELETE d
RETURN collect(key) AS keys
"""

ORPHANS = """
UNWIND $keys AS k
MATCH (n:Entity {key: k})
WHERE NOT (n)-[:DEFINED_IN]->()
DETACH DELETE n
"""

REFRESH = """
UNWIND $keys AS k
MATCH (n:Entity {key: k})-[d:DEFINED_IN]->(f:File)
WITH n, d, f ORDER BY d.role, f.path
WITH n, collect(d)[0] AS best
SET n.kind = best.kind, n.name = best.name, n.props = best.props, n.line = best.line
"""

DROP_FILE = "MATCH (f:File {path: $path}) WHERE NOT ()-[:DEFINED_IN]->(f) DELETE f"


def _translate(exc: Exception, what: str) -> Exception:
    from neo4j import exceptions as neo

    if isinstance(exc, neo.TransientError | neo.ServiceUnavailable | neo.SessionExpired):
        return TransientError(f"neo4j unavailable during {what}: {exc}")
    return StoreError(f"neo4j refused {what}: {exc}")


def _runner(statement: str) -> Callable[[Any], Any]:
    def work(tx: Any) -> Any:
        return tx.run(statement).consume()

    return work


def _props(value: Any) -> str:
    if isinstance(value, str):  # a row's props_json text (the graph ingest's rows)
        value = json.loads(value)
    return json.dumps(dict(value), sort_keys=True, separators=(",", ":"))


class Neo4jGraphStore:
    """See the module docstring. ``driver`` is a ``neo4j.Driver`` (or a double)."""

    def __init__(self, driver: Any, database: str | None = None, uri: str = "neo4j") -> None:
        self.driver = driver
        self.database = database
        self.identity = f"neo4j:{uri}/{database or 'default'}"

    @classmethod
    def connect(
        cls, uri: str, user: str, password: str, *, database: str | None = None
    ) -> Neo4jGraphStore:
        """Open a driver, check the server answers and create the key constraints."""
        try:
            import neo4j
        except ImportError as exc:  # pragma: no cover - a declared dependency
            raise StoreError("the neo4j driver is not installed: pip install neo4j") from exc
        driver = neo4j.GraphDatabase.driver(uri, auth=(user, password))
        store = cls(driver, database, uri)
        try:
            driver.verify_connectivity()
            for statement in SCHEMA:
                store._run_write(_runner(statement), "schema setup")
        except TransientError as exc:
            driver.close()
            raise StoreError(f"neo4j at {uri} is unavailable: {exc}") from exc
        return store

    # -- plumbing -----------------------------------------------------------------

    def _run_write(self, work: Callable[[Any], Any], what: str) -> Any:
        """Run ``work(tx)`` in one explicit transaction: our retry policy, not the driver's."""
        try:
            with self.driver.session(database=self.database) as session:
                tx = session.begin_transaction()
                try:
                    result = work(tx)
                    tx.commit()
                finally:
                    if not tx.closed():
                        tx.rollback()
                return result
        except (StoreError, TransientError):
            raise
        except Exception as exc:  # the driver's errors, translated once, here
            raise _translate(exc, what) from exc

    def _read(self, query: str, **params: Any) -> list[Any]:
        try:
            records, _summary, _keys = self.driver.execute_query(
                query, params, database_=self.database, routing_="r"
            )
        except Exception as exc:
            raise _translate(exc, "a query") from exc
        return list(records)

    # -- writes -------------------------------------------------------------------

    def write_nodes(self, rows: Sequence[NodeRow]) -> None:
        by_label: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            label = LABELS.get(r.kind) if r.role == DEFINES else None
            by_label[label or ""].append(
                {
                    "file": r.file,
                    "gen": r.gen,
                    "key": r.key,
                    "kind": r.kind,
                    "name": r.name,
                    "role": r.role,
                    "line": r.line,
                    "props": _props(r.props),
                }
            )

        def work(tx: Any) -> None:
            for label, batch in by_label.items():
                set_label = f"SET n:{label}" if label else ""
                tx.run(NODE_MERGE % set_label, rows=batch).consume()

        self._run_write(work, f"a batch of {len(rows)} entities")

    def write_edges(self, rows: Sequence[EdgeRow]) -> None:
        by_type: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for r in rows:
            if r.type not in REL_TYPES:
                raise StoreError(f"unknown relation type {r.type!r}")
            by_type[r.type].append(
                {
                    "key": r.key,
                    "src": r.src,
                    "dst": r.dst,
                    "gen": r.gen,
                    "suffix": "@" + r.file,
                    "props": _props(r.props),
                }
            )

        def work(tx: Any) -> None:
            for type_, batch in by_type.items():
                tx.run(EDGE_MERGE % type_, rows=batch).consume()

        self._run_write(work, f"a batch of {len(rows)} relations")

    def finish_file(
        self, path: str, gen: str | None, node_keys: Sequence[str], edge_keys: Sequence[str]
    ) -> None:
        del edge_keys  # relations are found through the file's entities

        def work(tx: Any) -> None:
            params = {"path": path, "gen": gen, "suffix": "@" + path}
            tx.run(STALE_EDGES, **params).consume()
            stale = tx.run(STALE_NODES, path=path, gen=gen).single()
            keys = sorted(set(node_keys) | set(stale["keys"] if stale else []))
            tx.run(ORPHANS, keys=keys).consume()
            tx.run(REFRESH, keys=keys).consume()
            tx.run(DROP_FILE, path=path).consume()

        self._run_write(work, f"finishing {path}")

    def group(self) -> AbstractContextManager[None]:
        """Batches commit one by one: a server transaction per ``UNWIND`` batch."""
        return contextlib.nullcontext()

    def close(self) -> None:
        self.driver.close()

    # -- queries ------------------------------------------------------------------

    def _node(self, record: Any) -> GraphNode:
        n = record["n"]
        files = record["files"] if "files" in record.keys() else []  # noqa: SIM118
        defined = tuple(sorted(f for f, role in files if f and role == DEFINES))
        mentioned = tuple(sorted(f for f, role in files if f and role != DEFINES))
        props = json.loads(n.get("props") or "{}")
        return GraphNode(n["key"], n.get("kind", ""), n.get("name", ""), props, defined, mentioned)

    _NODE_RETURN = (
        " OPTIONAL MATCH (n)-[d:DEFINED_IN]->(f:File)"
        " RETURN n, collect([f.path, d.role]) AS files ORDER BY n.key"
    )

    def find(self, name: str, kinds: Sequence[str] = ()) -> list[GraphNode]:
        last = name.rsplit(".", 1)[-1].lower()
        records = self._read(
            "MATCH (n:Entity) WHERE n.key = $name OR toLower(n.name) = $last" + self._NODE_RETURN,
            name=name,
            last=last,
        )
        nodes = [self._node(r) for r in records]
        exact = [n for n in nodes if n.key == name]
        if not exact:
            exact = [n for n in nodes if n.key.split(":", 1)[1].endswith(name.lower())]
        return [n for n in exact if not kinds or n.kind in kinds]

    def node(self, key: str) -> GraphNode | None:
        records = self._read("MATCH (n:Entity {key: $key})" + self._NODE_RETURN, key=key)
        return self._node(records[0]) if records else None

    def edges(self, key: str) -> list[tuple[GraphEdge, GraphNode]]:
        records = self._read(
            "MATCH (n:Entity {key: $key})-[e]-(m:Entity) WHERE type(e) <> 'DEFINED_IN'"
            " RETURN e.key AS key, type(e) AS type, startNode(e).key AS src,"
            " endNode(e).key AS dst, e.props AS props, m AS n ORDER BY type, m.key",
            key=key,
        )
        return [
            (
                GraphEdge(r["key"], r["type"], r["src"], r["dst"], json.loads(r["props"] or "{}")),
                self._node(r),
            )
            for r in records
        ]

    def path(self, src: str, dst: str, types: Sequence[str], max_hops: int = 6) -> list[str] | None:
        hops = int(max_hops)  # a literal in the pattern; validated as int here
        records = self._read(
            "MATCH (a:Entity {key: $src}), (b:Entity {key: $dst})"
            f" MATCH p = shortestPath((a)-[*..{hops}]-(b))"
            " WHERE all(r IN relationships(p) WHERE type(r) IN $types)"
            " RETURN [x IN nodes(p) | x.key] AS keys",
            src=src,
            dst=dst,
            types=list(types),
        )
        return list(records[0]["keys"]) if records else None

    def counts(self) -> dict[str, dict[str, int]]:
        kinds = self._read("MATCH (n:Entity) RETURN n.kind AS k, count(*) AS c")
        types = self._read("MATCH (:Entity)-[e]->(:Entity) RETURN type(e) AS k, count(*) AS c")
        defined = self._read(
            "MATCH (:Entity)-[d:DEFINED_IN]->(f:File)"
            " RETURN count(d) AS contributions, count(DISTINCT f) AS files"
        )
        row = defined[0] if defined else {"contributions": 0, "files": 0}
        return {
            "nodes": {r["k"]: int(r["c"]) for r in kinds},
            "edges": {r["k"]: int(r["c"]) for r in types},
            "defined_in": {"contributions": int(row["contributions"]), "files": int(row["files"])},
        }

    def dump(self) -> Iterator[dict[str, Any]]:
        for r in self._read("MATCH (n:Entity)" + self._NODE_RETURN):
            node = self._node(r)
            yield {
                "node": node.key,
                "kind": node.kind,
                "name": node.name,
                "props": dict(node.props),
                "files": sorted(node.files + node.mentioned_in),
            }
        for r in self._read(
            "MATCH (a:Entity)-[e]->(b:Entity) RETURN e.key AS key, type(e) AS type,"
            " a.key AS src, b.key AS dst, e.props AS props ORDER BY key"
        ):
            yield {
                "edge": r["key"],
                "type": r["type"],
                "src": r["src"],
                "dst": r["dst"],
                "props": json.loads(r["props"] or "{}"),
            }
