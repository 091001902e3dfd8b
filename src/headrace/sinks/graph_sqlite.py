"""``SqliteGraphStore``: the schema graph as tables in an embedded SQLite file.

Contributions live in ``graph_node_src`` / ``graph_edge_src`` (one row per entity
or relation *per file*); ``graph_nodes`` / ``graph_edges`` hold the graph as
queried, recomputed for the touched keys by ``finish_file``. Paths between tables
are answered by a recursive CTE (breadth-first, cycle-safe, bounded hops).

The tables sit in the graph file next to headrace's ledger tables and are created
by their own numbered migrations (``graph_schema_migrations``), so the index
file's migrations stay the ledger's business.

Chosen over kuzu and FalkorDB (measurements in the README): zero set-up, no extra
dependency, maintained as long as SQLite is, and ledger and graph share one file.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

import apsw

from headrace.errors import StoreError, TransientError
from headrace.sinks.graph_base import DEFINES, EdgeRow, GraphEdge, GraphNode, NodeRow


def _v1(conn: apsw.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE graph_node_src(
            key TEXT NOT NULL, file TEXT NOT NULL, gen TEXT NOT NULL, kind TEXT NOT NULL,
            name TEXT NOT NULL, role INTEGER NOT NULL, line INTEGER NOT NULL,
            props TEXT NOT NULL, PRIMARY KEY(key, file)
        ) WITHOUT ROWID;
        CREATE INDEX graph_node_src_file ON graph_node_src(file, gen);
        CREATE TABLE graph_edge_src(
            key TEXT NOT NULL, file TEXT NOT NULL, gen TEXT NOT NULL, type TEXT NOT NULL,
            src TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL, PRIMARY KEY(key, file)
        ) WITHOUT ROWID;
        CREATE INDEX graph_edge_src_file ON graph_edge_src(file, gen);
        CREATE INDEX graph_edge_src_ends ON graph_edge_src(src, dst);
        CREATE TABLE graph_nodes(
            key TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, props TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX graph_nodes_name ON graph_nodes(name COLLATE NOCASE, kind);
        CREATE TABLE graph_edges(
            key TEXT PRIMARY KEY, type TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL,
            props TEXT NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX graph_edges_src ON graph_edges(src, type);
        CREATE INDEX graph_edges_dst ON graph_edges(dst, type);
        """
    )


def _v2(conn: apsw.Connection) -> None:
    """Each node remembers its best contribution, so most finishes skip the refresh."""
    conn.execute(
        """
        ALTER TABLE graph_nodes ADD COLUMN best_role INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE graph_nodes ADD COLUMN best_file TEXT NOT NULL DEFAULT '';
        CREATE INDEX graph_edge_src_dst ON graph_edge_src(dst);
        UPDATE graph_nodes SET (best_role, best_file) = (
            SELECT s.role, s.file FROM graph_node_src s WHERE s.key = graph_nodes.key
            ORDER BY s.role, s.file LIMIT 1
        );
        """
    )


MIGRATIONS: list[Callable[[apsw.Connection], None]] = [_v1, _v2]


def migrate_graph(conn: apsw.Connection) -> int:
    """Apply the graph tables' pending migration steps, one transaction each."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS graph_schema_migrations("
        "version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    version = int(_one(conn, "SELECT coalesce(max(version), 0) FROM graph_schema_migrations")[0])
    if version > len(MIGRATIONS):
        raise StoreError(f"graph schema v{version} is newer than this headrace")
    for step in MIGRATIONS[version:]:
        with conn:
            step(conn)
            version += 1
            conn.execute(
                "INSERT INTO graph_schema_migrations VALUES (?, ?)", (version, time.time())
            )
    return version


def _one(conn: apsw.Connection, sql: str, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    """The single row of an aggregate query."""
    row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def _translate(exc: apsw.Error, what: str) -> Exception:
    if isinstance(exc, apsw.BusyError | apsw.LockedError):
        return TransientError(f"graph store busy during {what}: {exc}")
    return StoreError(f"graph store rejected {what}: {exc}")


def _dumps(props: Any) -> str:
    if not props:  # most relations carry no properties
        return "{}"
    return json.dumps(props, sort_keys=True, separators=(",", ":"))


# The file's own contributions (stale or new) of the touched keys that cannot change
# their node: someone else's contribution ranks first before and after (role, then
# path). With many files sharing entities this skips almost every refresh.
_SKIP_UNAFFECTED = """
DELETE FROM temp.touched_nodes WHERE key IN (
    SELECT n.key FROM graph_nodes n JOIN graph_node_src s ON s.key = n.key AND s.file = ?1
    WHERE n.key IN (SELECT key FROM temp.touched_nodes) AND n.best_file <> ?1
      AND (n.best_role < s.role OR (n.best_role = s.role AND n.best_file < ?1))
)
"""
_REFRESH_NODES = """
DELETE FROM graph_nodes WHERE key IN (SELECT key FROM temp.touched_nodes);
INSERT INTO graph_nodes(key, kind, name, props, best_role, best_file)
SELECT key, kind, name, props, role, file FROM (
    SELECT s.key, s.kind, s.name, s.props, s.role, s.file,
           row_number() OVER (PARTITION BY s.key ORDER BY s.role, s.file) AS rn
    FROM graph_node_src s WHERE s.key IN (SELECT key FROM temp.touched_nodes)
) WHERE rn = 1;
"""
# An edge's key determines its properties, so an edge only needs adding when its
# first contribution arrives and removing when its last one goes.
_ADD_EDGES = """
INSERT OR IGNORE INTO graph_edges
SELECT s.key, s.type, s.src, s.dst, s.props FROM graph_edge_src s
WHERE s.file = ?1 AND s.key IN (SELECT key FROM temp.touched_edges)
"""
_DROP_EDGES = """
DELETE FROM graph_edges WHERE key IN (SELECT key FROM temp.touched_edges)
  AND key NOT IN (SELECT key FROM graph_edge_src WHERE key IN (SELECT key FROM temp.touched_edges))
"""


CACHE_KIB = 65536


class _Group:
    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> None:
        self.conn.__enter__()

    def __exit__(self, *exc: Any) -> None:
        try:
            self.conn.__exit__(*exc)
        except apsw.Error as error:
            raise _translate(error, "committing a group") from error


class SqliteGraphStore:
    """The embedded graph store (see the module docstring). Not thread-safe."""

    identity = "sqlite"

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        try:
            # Contribution rows are random-keyed B-tree inserts: a 64 MB page cache
            # (the ledger's default is 16 MB) ran the 1,000-file warm re-ingest at 56
            # instead of 36 files/s, peak RSS 155 MB (bench/sql_ingest.py).
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            migrate_graph(conn)
            conn.execute(
                "CREATE TEMP TABLE IF NOT EXISTS touched_nodes(key TEXT PRIMARY KEY);"
                "CREATE TEMP TABLE IF NOT EXISTS touched_edges(key TEXT PRIMARY KEY);"
            )
        except apsw.Error as exc:
            raise StoreError(f"cannot prepare the graph tables: {exc}") from exc

    # -- writes -------------------------------------------------------------------

    def write_nodes(self, rows: Sequence[NodeRow]) -> None:
        """One transaction: upsert each row's contribution (the UNWIND … MERGE)."""
        self._run(
            "write_nodes",
            "INSERT INTO graph_node_src VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(key, file) DO UPDATE"
            " SET gen=excluded.gen, kind=excluded.kind, name=excluded.name,"
            " role=excluded.role, line=excluded.line, props=excluded.props",
            [(r.key, r.file, r.gen, r.kind, r.name, r.role, r.line, _dumps(r.props)) for r in rows],
        )

    def write_edges(self, rows: Sequence[EdgeRow]) -> None:
        """One transaction; an edge is kept only if both endpoints exist (MATCH).

        The endpoints are looked up once per batch: an ``INSERT … SELECT … WHERE
        EXISTS`` per row measured 2-4x slower here.
        """
        ends = json.dumps(sorted({r.src for r in rows} | {r.dst for r in rows}))
        try:
            with self.conn:
                present = {
                    str(k)
                    for (k,) in self.conn.execute(
                        "SELECT DISTINCT key FROM graph_node_src"
                        " WHERE key IN (SELECT value FROM json_each(?))",
                        (ends,),
                    )
                }
                self.conn.executemany(
                    "INSERT INTO graph_edge_src VALUES (?,?,?,?,?,?,?)"
                    " ON CONFLICT(key, file) DO UPDATE SET gen=excluded.gen",
                    [
                        (r.key, r.file, r.gen, r.type, r.src, r.dst, _dumps(r.props))
                        for r in rows
                        if r.src in present and r.dst in present
                    ],
                )
        except apsw.Error as exc:
            raise _translate(exc, "write_edges") from exc

    def _run(self, what: str, sql: str, params: list[tuple[Any, ...]]) -> None:
        try:
            with self.conn:
                self.conn.executemany(sql, params)
        except apsw.Error as exc:
            raise _translate(exc, what) from exc

    def finish_file(
        self, path: str, gen: str | None, node_keys: Sequence[str], edge_keys: Sequence[str]
    ) -> None:
        """Drop the file's other generations and recompute every touched entity."""
        try:
            with self.conn:
                self._finish(path, gen, node_keys, edge_keys)
        except apsw.Error as exc:
            raise _translate(exc, f"finishing {path}") from exc

    def _finish(
        self, path: str, gen: str | None, node_keys: Sequence[str], edge_keys: Sequence[str]
    ) -> None:
        c = self.conn
        c.execute("DELETE FROM temp.touched_nodes; DELETE FROM temp.touched_edges")
        stale = "file = ?1 AND (?2 IS NULL OR gen <> ?2)"
        for kind in ("node", "edge"):
            c.execute(
                f"INSERT OR IGNORE INTO temp.touched_{kind}s"
                f" SELECT key FROM graph_{kind}_src WHERE {stale}",
                (path, gen),
            )
        c.executemany(
            "INSERT OR IGNORE INTO temp.touched_nodes VALUES (?)", [(k,) for k in node_keys]
        )
        c.executemany(
            "INSERT OR IGNORE INTO temp.touched_edges VALUES (?)", [(k,) for k in edge_keys]
        )
        c.execute(_SKIP_UNAFFECTED, (path,))
        c.execute(f"DELETE FROM graph_node_src WHERE {stale}", (path, gen))
        c.execute(f"DELETE FROM graph_edge_src WHERE {stale}", (path, gen))
        c.execute(_REFRESH_NODES)
        # Entities nobody contributes any more take their relations with them
        # (Neo4j's DETACH DELETE), whichever file stated those.
        gone = (
            "SELECT t.key FROM temp.touched_nodes t"
            " WHERE t.key NOT IN (SELECT key FROM graph_nodes)"
        )
        c.execute(
            "INSERT OR IGNORE INTO temp.touched_edges"
            f" SELECT key FROM graph_edge_src WHERE src IN ({gone})"
            f" UNION SELECT key FROM graph_edge_src WHERE dst IN ({gone})"
        )
        c.execute(
            "DELETE FROM graph_edge_src WHERE key IN (SELECT key FROM temp.touched_edges)"
            " AND (src NOT IN (SELECT key FROM graph_nodes)"
            " OR dst NOT IN (SELECT key FROM graph_nodes))"
        )
        c.execute(_DROP_EDGES)
        c.execute(_ADD_EDGES, (path,))

    def group(self) -> AbstractContextManager[None]:
        """One transaction for a group; apsw turns the batches' own ``with conn``
        blocks into savepoints, so a refused batch still rolls back alone."""
        return _Group(self.conn)

    def close(self) -> None:
        """The connection belongs to the caller."""

    # -- queries ------------------------------------------------------------------

    def _node(self, row: Any) -> GraphNode:
        key, kind, name, props = row
        rows = self.conn.execute(
            "SELECT file, role FROM graph_node_src WHERE key = ? ORDER BY role, file", (key,)
        ).fetchall()
        defined = tuple(str(f) for f, role in rows if role == DEFINES)
        mentioned = tuple(str(f) for f, role in rows if role != DEFINES)
        return GraphNode(key, kind, name, json.loads(props), defined, mentioned)

    def find(self, name: str, kinds: Sequence[str] = ()) -> list[GraphNode]:
        """Entities whose key equals ``name``, or whose name or qualified name does."""
        rows = list(
            self.conn.execute(
                "SELECT key, kind, name, props FROM graph_nodes WHERE key = ?", (name,)
            )
        )
        if not rows:
            last = name.rsplit(".", 1)[-1]
            rows = [
                r
                for r in self.conn.execute(
                    "SELECT key, kind, name, props FROM graph_nodes WHERE name = ? COLLATE NOCASE",
                    (last,),
                )
                if r[0].split(":", 1)[1].endswith(name.lower())
            ]
        nodes = [self._node(r) for r in rows]
        return [n for n in nodes if not kinds or n.kind in kinds]

    def node(self, key: str) -> GraphNode | None:
        row = self.conn.execute(
            "SELECT key, kind, name, props FROM graph_nodes WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else self._node(row)

    def edges(self, key: str) -> list[tuple[GraphEdge, GraphNode]]:
        """Every relation of ``key`` with the node at its other end."""
        out = []
        rows = self.conn.execute(
            "SELECT e.key, e.type, e.src, e.dst, e.props, n.key, n.kind, n.name, n.props"
            " FROM graph_edges e JOIN graph_nodes n"
            " ON n.key = CASE WHEN e.src = ?1 THEN e.dst ELSE e.src END"
            " WHERE e.src = ?1 OR e.dst = ?1 ORDER BY e.type, n.key",
            (key,),
        )
        for row in rows:
            edge = GraphEdge(row[0], row[1], row[2], row[3], json.loads(row[4]))
            out.append((edge, GraphNode(row[5], row[6], row[7], json.loads(row[8]))))
        return out

    def path(self, src: str, dst: str, types: Sequence[str], max_hops: int = 6) -> list[str] | None:
        """A shortest undirected path from ``src`` to ``dst`` over edges of ``types``.

        Breadth-first, one query per hop over the frontier: a recursive CTE cannot
        keep a global visited set in SQLite, so it enumerates every simple path
        (exponential on dense schemas), while this stays linear in the edges seen.
        """
        marks = ",".join("?" * len(types))
        parent: dict[str, str | None] = {src: None}
        frontier = [src]
        for _ in range(max_hops):
            if dst in parent or not frontier:
                break
            nxt: list[str] = []
            for i in range(0, len(frontier), 500):
                part = frontier[i : i + 500]
                fm = ",".join("?" * len(part))
                rows = self.conn.execute(
                    f"SELECT src, dst FROM graph_edges WHERE type IN ({marks})"
                    f" AND (src IN ({fm}) OR dst IN ({fm}))",
                    (*types, *part, *part),
                )
                for a, b in rows:
                    for here, there in ((a, b), (b, a)):
                        if here in parent and there not in parent and here in part:
                            parent[there] = here
                            nxt.append(there)
            frontier = nxt
        if dst not in parent:
            return None
        trail = [dst]
        while (step := parent[trail[-1]]) is not None:
            trail.append(step)
        return trail[::-1]

    def counts(self) -> dict[str, dict[str, int]]:
        kinds = dict(self.conn.execute("SELECT kind, count(*) FROM graph_nodes GROUP BY kind"))
        types = dict(self.conn.execute("SELECT type, count(*) FROM graph_edges GROUP BY type"))
        defined = _one(self.conn, "SELECT count(*), count(DISTINCT file) FROM graph_node_src")
        return {
            "nodes": {str(k): int(v) for k, v in kinds.items()},
            "edges": {str(k): int(v) for k, v in types.items()},
            "defined_in": {"contributions": int(defined[0]), "files": int(defined[1])},
        }

    def dump(self) -> Iterator[dict[str, Any]]:
        """Every node (with its files) and edge, ordered: a canonical export."""
        for key, kind, name, props in self.conn.execute(
            "SELECT key, kind, name, props FROM graph_nodes ORDER BY key"
        ):
            files = [
                r[0]
                for r in self.conn.execute(
                    "SELECT file FROM graph_node_src WHERE key = ? ORDER BY file", (key,)
                )
            ]
            yield {
                "node": key,
                "kind": kind,
                "name": name,
                "props": json.loads(props),
                "files": files,
            }
        for key, type_, src, dst, props in self.conn.execute(
            "SELECT key, type, src, dst, props FROM graph_edges ORDER BY key"
        ):
            yield {"edge": key, "type": type_, "src": src, "dst": dst, "props": json.loads(props)}
