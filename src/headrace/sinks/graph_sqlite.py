"""``SqliteGraphStore``: the schema graph as tables in an embedded SQLite file.

Schema v6: entities and relations are 64-bit ids (``key_id``: blake2b of the key).
Entities and relations count the files that contribute them (``graph_node_refs``,
``graph_edge_refs``; a relation's key determines its properties, so nothing else per
contribution is needed); ``graph_files`` holds one row per file with its
contributions as one record (nodes' kind/name/role/line/properties, edges' ids), read
back only when the file changes or goes, and ``graph_file_nodes`` one narrow row per
file with its entities' ids (defining / other role), scanned to find who else
contributes an entity; ``graph_nodes`` / ``graph_edges`` hold the graph as queried
(since v6 in insertion order, their ids in a unique index: new rows go to the
tables' last pages, not to pages all over them).
``write_nodes`` ranks a node as it writes it (the shown version is the best
contribution: defining first, then lowest path) and counts an entity up for each file
that did not hold it; ``write_edges`` does the same for relations; ``finish_file``
drops the file's stale contributions (counting down, deleting at zero, an entity
with its relations) and recomputes only the nodes it showed and no longer does (in
a group: once, before the commit). Paths between tables are a breadth-first search,
one query per hop (``path``).

The tables sit in the graph file next to headrace's ledger tables and are created
by their own numbered migrations (``graph_schema_migrations``), so the index
file's migrations stay the ledger's business.

Chosen over kuzu and FalkorDB (measurements in the README): zero set-up, no extra
dependency, maintained as long as SQLite is, and ledger and graph share one file.
"""

from __future__ import annotations

import contextlib
import json
import re
import struct
import time
from array import array
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from hashlib import blake2b
from itertools import chain
from operator import itemgetter
from typing import Any, NamedTuple

import apsw
import orjson

from headrace.compression import zstd_codec
from headrace.errors import StoreError, TransientError
from headrace.sinks.graph_base import (
    DEFINES,
    EdgeRow,
    FileBatch,
    GraphEdge,
    GraphNode,
    NodeRow,
    props_json,
)


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


def _v3(conn: apsw.Connection) -> None:
    """Integer keys and one contribution record per file (see the module docstring).

    The v1/v2 tables are dropped, not converted: the graph ingest's signature changed
    with this step (builder version 2), so every file is re-ingested on the next run.
    """
    conn.execute(
        """
        DROP TABLE IF EXISTS graph_node_src;
        DROP TABLE IF EXISTS graph_edge_src;
        DROP TABLE IF EXISTS graph_nodes;
        DROP TABLE IF EXISTS graph_edges;
        CREATE TABLE graph_files(
            id INTEGER PRIMARY KEY, path TEXT NOT NULL UNIQUE, gen TEXT NOT NULL,
            nodes TEXT NOT NULL, edges BLOB NOT NULL
        );
        CREATE TABLE graph_nodes(
            id INTEGER PRIMARY KEY, key TEXT NOT NULL, kind TEXT NOT NULL, name TEXT NOT NULL,
            props TEXT NOT NULL, best_role INTEGER NOT NULL, best_path TEXT NOT NULL
        );
        CREATE INDEX graph_nodes_name ON graph_nodes(name COLLATE NOCASE, kind);
        CREATE TABLE graph_node_src(
            node INTEGER NOT NULL, file INTEGER NOT NULL, role INTEGER NOT NULL,
            PRIMARY KEY(node, file)
        ) WITHOUT ROWID;
        CREATE TABLE graph_edges(
            id INTEGER PRIMARY KEY, key TEXT NOT NULL, type TEXT NOT NULL, src TEXT NOT NULL,
            dst TEXT NOT NULL, props TEXT NOT NULL, src_id INTEGER NOT NULL,
            dst_id INTEGER NOT NULL
        );
        CREATE INDEX graph_edges_src ON graph_edges(src, type);
        CREATE INDEX graph_edges_dst ON graph_edges(dst, type);
        CREATE TABLE graph_edge_src(
            edge INTEGER NOT NULL, file INTEGER NOT NULL, PRIMARY KEY(edge, file)
        ) WITHOUT ROWID;
        """
    )


def _v4(conn: apsw.Connection) -> None:
    """Relations count their contributing files (``graph_edge_refs(id, refs)``: a narrow
    table, whose rows an update rewrites ~4x faster than graph_edges' wide ones) instead of one
    ``graph_edge_src`` row per contribution: those rows were random-keyed B-tree
    inserts, the largest cost of a write (bench/sql_ingest.py). Which file
    contributes which relation stays in each file's record (``graph_files.edges``),
    trimmed here to the contributions the old table held."""
    conn.execute(
        "CREATE TABLE graph_edge_refs(id INTEGER PRIMARY KEY, refs INTEGER NOT NULL);"
        "INSERT INTO graph_edge_refs SELECT edge, count(*) FROM graph_edge_src GROUP BY edge"
    )
    held: dict[int, set[int]] = {}
    for edge, fid in conn.execute("SELECT edge, file FROM graph_edge_src"):
        held.setdefault(int(fid), set()).add(int(edge))
    for fid, data in list(conn.execute("SELECT id, edges FROM graph_files")):
        ids = _decode_edges(data)
        kept = [i for i in ids if i in held.get(int(fid), ())]
        if kept != ids:
            conn.execute(
                "UPDATE graph_files SET edges = ? WHERE id = ?", (_encode_edges(kept), fid)
            )
    conn.execute(
        "DELETE FROM graph_edges WHERE id NOT IN (SELECT id FROM graph_edge_refs);"
        "DROP TABLE graph_edge_src"
    )


def _v5(conn: apsw.Connection) -> None:
    """Entities count their contributing files too (``graph_node_refs(id, refs)``)
    instead of one random-keyed ``graph_node_src(node, file, role)`` row per
    contribution, whose pages every group's commit rewrote nearly all of; which
    entities a file contributes is one narrow row per file (``graph_file_nodes``: ids
    of the entities it defines, and of those it has another role for), read when an
    entity's best file drops it (docs/design.md, round 5). Converted from the old
    table: each file's record keeps the contributions the table held, the counts are
    theirs, an entity nobody contributes goes with its relations (as ``finish_file``
    deletes it), and each shown entity is its best contribution."""
    held: dict[int, set[int]] = {}
    for node, fid in conn.execute("SELECT node, file FROM graph_node_src"):
        held.setdefault(int(fid), set()).add(int(node))
    conn.execute(
        "CREATE TABLE graph_node_refs(id INTEGER PRIMARY KEY, refs INTEGER NOT NULL);"
        "CREATE TABLE graph_file_nodes("
        "file INTEGER PRIMARY KEY, defines BLOB NOT NULL, others BLOB NOT NULL)"
    )
    refs: Counter[int] = Counter()
    best: dict[int, tuple[int, str, _NodeEntry]] = {}
    for fid, path, text in list(conn.execute("SELECT id, path, nodes FROM graph_files")):
        entries = _decode_nodes(str(text))
        mine = held.get(int(fid), set())
        kept = [e for e in entries.values() if e[0] in mine]
        if len(kept) != len(entries):
            trimmed = _encode_nodes(kept)
            conn.execute("UPDATE graph_files SET nodes = ? WHERE id = ?", (trimmed, fid))
        if kept:
            conn.execute("INSERT INTO graph_file_nodes VALUES (?, ?, ?)", (fid, *_encode_ids(kept)))
        refs.update(e[0] for e in kept)
        for e in kept:
            b = best.get(e[0])
            if b is None or (e[3], str(path)) < b[:2]:
                best[e[0]] = (e[3], str(path), e)
    conn.executemany("INSERT INTO graph_node_refs VALUES (?, ?)", sorted(refs.items()))
    shown = {
        int(i): (int(r), str(p))
        for i, r, p in conn.execute("SELECT id, best_role, best_path FROM graph_nodes")
    }
    for i, (role, path, e) in best.items():
        if shown.get(i) != (role, path):
            conn.execute(
                "UPDATE graph_nodes SET kind = ?, name = ?, props = ?, best_role = ?,"
                " best_path = ? WHERE id = ?",
                (e[1], e[2], e[5], role, path, i),
            )
    orphans = [i for i in shown if i not in refs]
    if orphans:
        keys = [
            str(k)
            for (k,) in conn.execute(
                "SELECT key FROM graph_nodes WHERE id IN (SELECT value FROM json_each(?))",
                (json.dumps(orphans),),
            )
        ]
        edges = {
            int(e)
            for (e,) in conn.execute(
                "SELECT id FROM graph_edges WHERE src IN (SELECT value FROM json_each(?1))"
                " OR dst IN (SELECT value FROM json_each(?1))",
                (json.dumps(keys),),
            )
        }
        conn.executemany("DELETE FROM graph_edges WHERE id = ?", [(e,) for e in edges])
        conn.executemany("DELETE FROM graph_edge_refs WHERE id = ?", [(e,) for e in edges])
        conn.executemany("DELETE FROM graph_nodes WHERE id = ?", [(i,) for i in orphans])
        for fid, data in list(conn.execute("SELECT id, edges FROM graph_files")):
            ids = _decode_edges(data)
            if not edges.isdisjoint(ids):
                kept_edges = [e for e in ids if e not in edges]
                conn.execute(
                    "UPDATE graph_files SET edges = ? WHERE id = ?",
                    (_encode_edges(kept_edges), fid),
                )
    conn.execute("DROP TABLE graph_node_src")


def _v6(conn: apsw.Connection) -> None:
    """Entities and relations in insertion order (a sequential rowid ``rid``), their
    64-bit ids in a narrow unique index: rows keyed by random ids put each group's new
    rows on pages all over the table, and every commit wrote those pages again (on the
    1,000-file benchmark, relation inserts were half of ~21,000 WAL frames, entity
    upserts a third). Rows, ids and indexes are carried over as they are."""
    conn.execute(
        """
        CREATE TABLE graph_nodes_v6(
            rid INTEGER PRIMARY KEY, id INTEGER NOT NULL UNIQUE, key TEXT NOT NULL,
            kind TEXT NOT NULL, name TEXT NOT NULL, props TEXT NOT NULL,
            best_role INTEGER NOT NULL, best_path TEXT NOT NULL
        );
        INSERT INTO graph_nodes_v6(id, key, kind, name, props, best_role, best_path)
            SELECT id, key, kind, name, props, best_role, best_path FROM graph_nodes
            ORDER BY id;
        DROP TABLE graph_nodes;
        ALTER TABLE graph_nodes_v6 RENAME TO graph_nodes;
        CREATE INDEX graph_nodes_name ON graph_nodes(name COLLATE NOCASE, kind);
        CREATE TABLE graph_edges_v6(
            rid INTEGER PRIMARY KEY, id INTEGER NOT NULL UNIQUE, key TEXT NOT NULL,
            type TEXT NOT NULL, src TEXT NOT NULL, dst TEXT NOT NULL, props TEXT NOT NULL,
            src_id INTEGER NOT NULL, dst_id INTEGER NOT NULL
        );
        INSERT INTO graph_edges_v6(id, key, type, src, dst, props, src_id, dst_id)
            SELECT id, key, type, src, dst, props, src_id, dst_id FROM graph_edges
            ORDER BY id;
        DROP TABLE graph_edges;
        ALTER TABLE graph_edges_v6 RENAME TO graph_edges;
        CREATE INDEX graph_edges_src ON graph_edges(src, type);
        CREATE INDEX graph_edges_dst ON graph_edges(dst, type);
        """
    )


def _v7(conn: apsw.Connection) -> None:
    """A group's count increments are logged as one row (``graph_ref_log``), added to
    the count tables only before a count goes down and when the store closes: a first
    ingest counts ~100,000 increments per 1,000 benchmark files over its groups, the
    ~16,000 entities and relations only once."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS graph_ref_log("
        "id INTEGER PRIMARY KEY, nodes BLOB NOT NULL, edges BLOB NOT NULL)"
    )


MIGRATIONS: list[Callable[[apsw.Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7]


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


_unpack_id = struct.Struct(">q").unpack


def key_id(key: str) -> int:
    """The 64-bit id of an entity or relation key (blake2b, signed for SQLite).

    Ids replace the text keys in every per-contribution row and index: a B-tree of
    integers is several times cheaper to insert into (bench/sql_ingest.py). The
    chance that two of a million keys collide is about 3e-8.
    """
    return int(_unpack_id(blake2b(key.encode(), digest_size=8).digest())[0])


# Field and record separators of a file's contribution record; refused in keys and
# names (JSON escapes them in properties).
_FS, _RS = "\x1f", "\x1e"
_BAD = re.compile("[\x00\x1e\x1f]")

# A file's node contribution: (id, kind, name, role, line, props JSON), what a
# refresh needs when this file's contribution becomes the one shown. The key is the
# node row's (ids are keys' hashes). Edges are ids only: an edge's key determines
# all its properties, which its graph_edges row holds.
_NodeEntry = tuple[int, str, str, int, int, str]


def _encode_nodes(entries: Iterable[_NodeEntry]) -> str:
    return _RS.join(
        f"{i}{_FS}{kind}{_FS}{name}{_FS}{role}{_FS}{line}{_FS}{props}"
        for i, kind, name, role, line, props in entries
    )


def _decode_nodes(record: str | bytes) -> dict[int, _NodeEntry]:
    """A file's record: text (row writes, and stores of earlier versions) or its
    rows as the parse worker packed them (``Prepared.record``: zstd JSON, node rows
    first, keyed by key)."""
    out: dict[int, _NodeEntry] = {}
    if isinstance(record, bytes):
        if record:
            for key, kind, name, role, line, props in orjson.loads(
                zstd_codec()[1].decompress(record)
            )[0]:
                i = key_id(key)
                out[i] = (i, kind, name, role, line, props)
    elif record:
        for entry in record.split(_RS):
            i_text, kind, name, role, line, props = entry.split(_FS, 5)
            out[int(i_text)] = (int(i_text), kind, name, int(role), int(line), props)
    return out


def _encode_edges(ids: Iterable[int]) -> bytes:
    return array("q", ids).tobytes()


def _decode_edges(data: bytes) -> list[int]:
    ids = array("q")
    ids.frombytes(data)
    return ids.tolist()


def _encode_ids(entries: Iterable[_NodeEntry]) -> tuple[bytes, bytes]:
    """A file's ``graph_file_nodes`` row: the ids of the entities it defines, and of
    those it has another role for (the role itself is in its record)."""
    defines, others = array("q"), array("q")
    for e in entries:
        (defines if e[3] == DEFINES else others).append(e[0])
    return defines.tobytes(), others.tobytes()


def _decode_ids(data: bytes) -> array[int]:
    ids = array("q")
    ids.frombytes(data)
    return ids


class Prepared(NamedTuple):
    """A file's rows made ready for ``write_files`` where the file was parsed (a
    parse worker: ``prepare_rows`` touches no store). Ids as ``array('q')`` bytes, aligned
    with the rows; ``roles`` one byte per node row; ``record`` the file's
    ``graph_files.nodes`` (its rows as zstd-compressed JSON, the bytes the parse
    cache holds: nothing to encode), ``defines`` and ``others`` its
    ``graph_file_nodes`` row, as ``finish_file`` writes them when the store took every
    row."""

    node_ids: bytes
    roles: bytes
    edge_ids: bytes
    src_ids: bytes
    dst_ids: bytes
    outside: bytes  # relations' ends that are not the file's own entities (sorted)
    record: bytes
    defines: bytes
    others: bytes
    # Rows this process had not prepared before (row index -> row): a node row whose
    # id it had not seen with this role or a better one, a relation row whose id it
    # had not seen. The writer reads a row it needs from here, else from the file's
    # rows (decoded then): see ``_row``.
    novel_nodes: dict[int, Sequence[Any]]
    novel_edges: dict[int, Sequence[Any]]


# This process's memo of keys' ids (keys repeat across files), each as the 8 bytes
# of its ``array('q')`` form: a file's id arrays are joins of them, and its checks
# set operations on them (an ``array('q', ints)`` converts each int through the
# argument parser: ~400 instructions an id, and 10% of a cold run's parse work).
_PREPARED_IDS: dict[str, bytes] = {}
# This process's memo of the rows its ``prepare_rows`` put in ``novel_nodes`` (an
# entity's id -> the best role sent) and ``novel_edges`` (relations' ids).
_SENT_ROLES: dict[bytes, int] = {}
_SENT_EDGES: set[bytes] = set()
_FIRST = itemgetter(0)
_NATIVE_ID = struct.Struct("=q").pack


def prepare_rows(
    nodes: Sequence[Sequence[Any]], edges: Sequence[Sequence[Any]], packed: bytes
) -> Prepared | None:
    """``Prepared`` for a fragment's rows (``[key, kind, name, role, line, props]``
    and ``[key, type, src, dst, props]``, props as text; ``packed``: zstd of the
    JSON of ``[nodes, edges, ...]``), or None where only the row-by-row writes can
    take them: a separator character in a kind or name (a refusal to isolate), a
    role outside a byte, two keys with one id."""
    memo = _PREPARED_IDS
    if len(memo) > _KNOWN_MAX:
        memo.clear()
    known, get = memo.__getitem__, memo.get

    def ids_of(keys: Sequence[str]) -> list[bytes]:
        try:  # one C-level pass: every key seen before (most are)
            return list(map(known, keys))
        except KeyError:
            got: list[Any] = list(map(get, keys))
            for k, i in enumerate(got):
                if i is None:
                    got[k] = memo[keys[k]] = _NATIVE_ID(key_id(keys[k]))
            return got

    try:  # the rows' columns (a row of another length: the row writes take it)
        n_keys, kinds, names, n_roles, _lines, n_props = (
            zip(*nodes, strict=True) if nodes else ((),) * 6
        )
        e_keys, _types, e_src, e_dst, e_props = zip(*edges, strict=True) if edges else ((),) * 5
        text = "".join(kinds) + "".join(names)  # (TypeError: not text)
        roles = bytes(n_roles)  # (ValueError: a role outside a byte)
    except (ValueError, TypeError):
        return None
    if "\x1f" in text or "\x1e" in text or "\x00" in text:
        return None
    if not set(map(type, n_props + e_props)) <= {str}:
        return None  # (properties not encoded yet: the row path encodes them)
    node_ids, edge_ids = ids_of(n_keys), ids_of(e_keys)
    if len(set(node_ids)) != len(node_ids) or len(set(edge_ids)) != len(edge_ids):
        return None
    join = b"".join
    node_bytes = join(node_ids)
    if roles.count(DEFINES) == len(roles):
        defines, others = node_bytes, b""
    else:
        defines = join([i for i, r in zip(node_ids, roles, strict=True) if r == DEFINES])
        others = join([i for i, r in zip(node_ids, roles, strict=True) if r != DEFINES])
    src, dst = ids_of(e_src), ids_of(e_dst)
    return Prepared(
        node_bytes,
        roles,
        join(edge_ids),
        join(src),
        join(dst),
        join(sorted(set(src).union(dst).difference(node_ids))),
        packed,
        defines,
        others,
        *_novel(nodes, edges, node_ids, roles, edge_ids),
    )


def _novel(
    nodes: Sequence[Sequence[Any]],
    edges: Sequence[Sequence[Any]],
    node_ids: list[bytes],
    roles: bytes,
    edge_ids: list[bytes],
) -> tuple[dict[int, Sequence[Any]], dict[int, Sequence[Any]]]:
    """``Prepared.novel_nodes`` and ``novel_edges``. The rows ``write_files`` reads
    are those of entities that rank first and of relations new to the store; for
    files a process prepares in path order these are, but for files of the other
    processes, the rows it had not prepared before. So a parse worker sends those
    few with a file's packed rows, and the writer decodes the rest only when a row
    it needs is not among them (cold 1,000-file benchmark: ~8 node and ~10 relation
    rows of a file's ~310)."""
    roles_sent, edges_sent = _SENT_ROLES, _SENT_EDGES
    if len(roles_sent) > _KNOWN_MAX:
        roles_sent.clear()
    if len(edges_sent) > _KNOWN_MAX:
        edges_sent.clear()
    novel_nodes: dict[int, Sequence[Any]] = {}
    for k, sent in enumerate(map(roles_sent.get, node_ids)):
        if sent is None or roles[k] < sent:
            roles_sent[node_ids[k]] = roles[k]
            novel_nodes[k] = nodes[k]
    novel_edges: dict[int, Sequence[Any]] = {}
    if not edges_sent.issuperset(edge_ids):
        for k, i in enumerate(edge_ids):
            if i not in edges_sent:
                edges_sent.add(i)
                novel_edges[k] = edges[k]
    return novel_nodes, novel_edges


_NODE_TEXT = itemgetter(3, 4)  # kind, name: what a file's record keeps as text
_NO_IDS: frozenset[int] = frozenset()
# A graph_edges row: id, key, type, src, dst, props JSON, src id, dst id.
_EdgeInsert = tuple[int, str, str, str, str, str, int, int]


def _refuse_bad(rows: Sequence[NodeRow]) -> None:
    """A node batch with a separator character in a kind or name (the fields a
    file's contribution record holds as text) is refused (one scan of the batch's
    text; the writer then bisects down to the row). Keys, paths and edges are
    stored as their own columns or as ids: any text is fine there."""
    if not rows:
        return
    text = "".join(chain.from_iterable(map(_NODE_TEXT, rows)))
    if "\x1f" not in text and "\x1e" not in text and "\x00" not in text:
        return  # (three memchr scans: several times faster than one regex search)
    for row in rows:
        if _BAD.search(f"{row.kind}{row.name}"):
            raise StoreError(f"refused {row.key!r}: control character in a kind or name")


CACHE_KIB = 65536
_COUNT_NODES = (
    "INSERT INTO graph_node_refs VALUES (?, ?)"
    " ON CONFLICT DO UPDATE SET refs = refs + excluded.refs"
)
_COUNT_UP = "UPDATE graph_edge_refs SET refs = refs + ? WHERE id = ?"
# The same for many ids at once (a JSON array): one statement per distinct increment.
_COUNT_NODES_BY = (
    "INSERT INTO graph_node_refs SELECT value, ?1 FROM json_each(?2) WHERE true"
    " ON CONFLICT DO UPDATE SET refs = refs + excluded.refs"
)
_COUNT_UP_BY = (
    "UPDATE graph_edge_refs SET refs = refs + ?1 WHERE id IN (SELECT value FROM json_each(?2))"
)


LOG_MAX_ROWS = 256  # logged groups before their increments are added at a commit


def _pack_counts(counts: Counter[int]) -> bytes:
    """Count increments as one blob: the ids, then their increments (int64 each)."""
    return array("q", [*counts.keys(), *counts.values()]).tobytes()


def _unpack_counts(data: bytes, into: Counter[int]) -> None:
    values = array("q")
    values.frombytes(data)
    half = len(values) // 2
    into.update(dict(zip(values[:half], values[half:], strict=True)))


def _by_count(counts: Counter[int]) -> Iterator[tuple[int, str]]:
    """``counts`` as (increment, JSON array of its ids in order) pairs: a group's
    files share most entities, so a few statements carry its ~1,600 increments
    (cold benchmark: 0.25 -> 0.xx s for 98,000 increments against one per id)."""
    by: dict[int, list[int]] = {}
    for i, n in counts.items():
        by.setdefault(n, []).append(i)
    for n, ids in sorted(by.items()):
        ids.sort()
        yield n, orjson.dumps(ids).decode()


# A node row ranking first so far: written, unless the shown one still ranks before it.
_UPSERT_NODE = (
    "INSERT INTO graph_nodes(id, key, kind, name, props, best_role, best_path)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET"
    " kind = excluded.kind, name = excluded.name, props = excluded.props,"
    " best_role = excluded.best_role, best_path = excluded.best_path"
    " WHERE (excluded.best_role, excluded.best_path)"
    " <= (graph_nodes.best_role, graph_nodes.best_path)"
)
_INSERT_EDGE = (
    "INSERT INTO graph_edges(id, key, type, src, dst, props, src_id, dst_id)"
    " VALUES (?,?,?,?,?,?,?,?) ON CONFLICT DO NOTHING"
)
_REFS_UP = "INSERT INTO graph_edge_refs VALUES (?, 1) ON CONFLICT DO UPDATE SET refs = refs + 1"
_KNOWN_MAX = 200_000  # ids remembered by _best / _edges_known / _ids (~30 MB at most)


class _Group:
    def __init__(self, store: SqliteGraphStore) -> None:
        self.store = store

    def __enter__(self) -> None:
        self.store.conn.__enter__()
        self.store._in_group = True

    def __exit__(self, *exc: Any) -> None:
        failed = exc[0] is not None
        try:
            if not failed:
                try:  # what was written after the group's last finish_file
                    self.store._log_deferred()
                    self.store._refresh_due()
                except BaseException as error:
                    failed = True
                    self.store.conn.__exit__(type(error), error, error.__traceback__)
                    raise
            self.store.conn.__exit__(*exc)
        except apsw.Error as error:
            failed = True
            raise _translate(error, "committing a group") from error
        finally:
            self.store._end_group(failed)


def _row(novel: dict[int, Sequence[Any]], batch: FileBatch, k: int, *, edges: bool) -> Any:
    """Row ``k`` of a prepared file's node (or edge) rows: from those its parse
    worker sent (``Prepared.novel_nodes``), else from all its rows."""
    row = novel.get(k)
    if row is None:
        row = (batch.edges if edges else batch.nodes)[k]
    return row


def _node_entries(
    ids: Iterable[int], rows: Iterable[Sequence[Any]]
) -> Iterator[tuple[int, _NodeEntry]]:
    """A file's node rows (``[key, kind, name, role, line, props]``) as its staged
    entries, by id."""
    for i, n in zip(ids, rows, strict=True):
        yield i, (i, n[1], n[2], n[3], n[4], n[5])


class _Staged:
    """What a group wrote for one file, until its ``finish_file``.

    A file written whole by ``write_files`` is staged as its prepared ids and rows
    (``nodes`` builds the entries when something asks) with its record encoded by the
    parse worker (``record``, ``edge_blob``): valid while nothing else touched the
    part, so any use of ``nodes`` or ``edges`` (which may change them) drops them."""

    __slots__ = ("_edges", "_lazy", "_nodes", "edge_blob", "record")

    def __init__(self) -> None:
        self._nodes: dict[int, _NodeEntry] = {}
        self._lazy: tuple[array[int], FileBatch] | None = None
        self._edges: dict[int, None] = {}  # ids, in order: the file's new record
        self.record: tuple[bytes, bytes, bytes] | None = None  # see Prepared
        self.edge_blob: bytes | None = None

    @classmethod
    def prepared(cls, ids: array[int], batch: FileBatch, prep: Prepared) -> _Staged:
        part = cls()
        part._lazy = (ids, batch)  # (its rows are read only if ``nodes`` is asked for)
        part.record = (prep.record, prep.defines, prep.others)
        return part

    @property
    def nodes(self) -> dict[int, _NodeEntry]:
        self.record = None
        if self._lazy is not None:
            ids, batch = self._lazy
            self._lazy = None
            self._nodes.update(_node_entries(ids, batch.nodes))
        return self._nodes

    @property
    def edges(self) -> dict[int, None]:
        self.edge_blob = None
        return self._edges

    def empty(self) -> bool:
        lazy = self._lazy is not None and len(self._lazy[0]) > 0
        return not (self._nodes or lazy or self._edges)


class SqliteGraphStore:
    """The embedded graph store (see the module docstring). Not thread-safe."""

    identity = "sqlite"

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        self._file_ids: dict[str, int] = {}
        self._staged: dict[str, _Staged] = {}
        self._written: set[int] = set()  # node ids written by the current group
        # What this store knows about the graph it wrote, to skip no-op writes of
        # entities many files share: an upper bound of each node's best (role, path)
        # (a contribution ranking after it cannot change the node), and edges known
        # to exist. Dropped for ids a finish recomputes or deletes, and whole when a
        # group rolls back.
        self._best: dict[int, tuple[int, str]] = {}
        self._edges_known: set[int] = set()
        self._ids: dict[str, int] = {}  # key -> id (a pure function: kept across groups)
        # Per file written in the current group: the relations and the entities its
        # committed record holds (a count goes up once per file that newly contributes).
        self._old_edges: dict[str, set[int]] = {}
        self._old_nodes: dict[str, set[int]] = {}
        # Inside a group, count increments wait, summed: for its next finish_file
        # that may count down, which adds them (and the logged ones) to the count
        # tables, or for its commit, which logs them as one ``graph_ref_log`` row;
        # dropped if the group rolls back (docs/design.md, rounds 3, 5 and 6).
        self._in_group = False
        self._counts: Counter[int] = Counter()  # relations
        self._node_counts: Counter[int] = Counter()
        # Entities whose best file dropped them (or now only mentions them) inside
        # the group: their shown version is recomputed once, before its commit.
        self._due: set[int] = set()
        try:
            # Contribution rows are random-keyed B-tree inserts: a 64 MB page cache
            # (the ledger's default is 16 MB) measured ~1.5x faster on the 1,000-file
            # benchmark (bench/sql_ingest.py).
            conn.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
            migrate_graph(conn)
        except apsw.Error as exc:
            raise StoreError(f"cannot prepare the graph tables: {exc}") from exc
        self._log_rows = -1  # logged groups (unknown until counted)
        self._fold_log()  # a log left by a run that did not close the store

    # -- writes -------------------------------------------------------------------

    def _file_id(self, path: str, created: list[str]) -> int:
        fid = self._file_ids.get(path)
        if fid is None:
            row = self.conn.execute("SELECT id FROM graph_files WHERE path = ?", (path,)).fetchone()
            if row is None:
                self.conn.execute(
                    "INSERT INTO graph_files(path, gen, nodes, edges) VALUES (?, '', '', x'')",
                    (path,),
                )
                fid = self.conn.last_insert_rowid()
                created.append(path)
            else:
                fid = int(row[0])
            self._file_ids[path] = fid
        return fid

    @contextlib.contextmanager
    def _savepoint(self, created: list[str], what: str) -> Iterator[None]:
        """One write's savepoint; the file ids it allocated are void if it rolls back."""
        try:
            with self.conn:
                yield
        except apsw.Error as exc:
            self._forget_ids(created)
            raise _translate(exc, what) from exc
        except BaseException:
            self._forget_ids(created)
            raise

    def write_nodes(self, rows: Sequence[NodeRow]) -> None:
        """One savepoint: each row's contribution, and its node where it ranks first
        (defining before mentioning, then lowest path): the UNWIND … MERGE. An
        entity's count goes up for each file whose committed record does not hold it
        and that has not contributed it in this group yet."""
        _refuse_bad(rows)
        created: list[str] = []
        get, ids, best = self._ids.get, self._id, self._best
        # One pass over the rows, per-file lookups hoisted (rows come file by file):
        # a row is one tuple unpacking, one id lookup and a few appends.
        entries: list[_NodeEntry] = []
        counted: list[int] = []
        ranked: list[tuple[int, str, str, str, str, int, str]] = []
        files: list[tuple[str, int]] = []  # (path, index of its first entry)
        seen: dict[str, set[int]] = {}  # per file: ids this batch counted
        with self._savepoint(created, "write_nodes"):
            last: str | None = None
            old: Container[int] = _NO_IDS
            held: Container[int] = _NO_IDS
            mine: set[int] = set()
            for path, _gen, key, kind, name, role, line, props in rows:
                if path != last:
                    last = path
                    self._file_id(path, created)
                    files.append((path, len(entries)))
                    old = self._old_nodes_of(path, created)
                    part = self._staged.get(path)
                    held = part.nodes if part is not None else _NO_IDS
                    mine = seen.setdefault(path, set())
                i = get(key) or ids(key)
                text = props_json(props)
                entries.append((i, kind, name, role, line, text))
                if i not in old and i not in held and i not in mine:
                    mine.add(i)
                    counted.append(i)
                if (b := best.get(i)) is None or (role, path) <= b:
                    ranked.append((i, key, kind, name, text, role, path))
            if not self._in_group:
                self.conn.executemany(_COUNT_NODES, sorted(Counter(counted).items()))
            self.conn.executemany(_UPSERT_NODE, ranked)
        self._stage_nodes(files, entries)
        self._remember(counted, ranked, [], [])

    def _stage_nodes(self, files: list[tuple[str, int]], entries: list[_NodeEntry]) -> None:
        staged = self._staged
        ends = [start for _p, start in files[1:]] + [len(entries)] if files else []
        for (path, start), end in zip(files, ends, strict=True):
            part = staged.get(path)
            if part is None:
                part = staged[path] = _Staged()
            span = entries[start:end]
            part.nodes.update(zip(map(_FIRST, span), span, strict=True))
        self._written.update(map(_FIRST, entries))

    def _old_nodes_of(self, path: str, created: list[str]) -> set[int]:
        """The entities ``path``'s committed record holds (its file record is made if
        it has none)."""
        old = self._old_nodes.get(path)
        if old is None:
            fid = self._file_id(path, created)
            old = set()
            if path not in created:
                row = self.conn.execute(
                    "SELECT defines, others FROM graph_file_nodes WHERE file = ?", (fid,)
                ).fetchone()
                if row is not None:
                    old.update(_decode_ids(row[0]))
                    old.update(_decode_ids(row[1]))
            self._old_nodes[path] = old
        return old

    def write_edges(self, rows: Sequence[EdgeRow]) -> None:
        """One savepoint; an edge is kept only if both endpoints exist (MATCH). A
        relation's count goes up for each file that did not contribute it before."""
        get, ids = self._ids.get, self._id  # get(k) or ids(k): the id, computed once
        ends = [(get(r[4]) or ids(r[4]), get(r[5]) or ids(r[5])) for r in rows]
        created: list[str] = []
        with self._savepoint(created, "write_edges"):
            present = self._present({i for pair in ends for i in pair})
            counted, fresh, kept = self._sort_edges(rows, ends, present, created)
            if not self._in_group:
                self.conn.executemany(_COUNT_UP, [(1, i) for i in counted])
            self.conn.executemany(_INSERT_EDGE, fresh)
            self.conn.executemany(_REFS_UP, [(e[0],) for e in fresh])
        self._remember([], [], counted, fresh)
        staged = self._staged
        for path, mine in kept:
            part = staged.get(path)
            if part is None:
                part = staged[path] = _Staged()
            part.edges.update(dict.fromkeys(mine))

    def _sort_edges(
        self,
        rows: Sequence[EdgeRow],
        ends: list[tuple[int, int]],
        present: set[int],
        created: list[str],
    ) -> tuple[list[int], list[_EdgeInsert], list[tuple[str, list[int]]]]:
        """One pass over a batch (rows come file by file, so per-file lookups are
        hoisted): relations whose count goes up (``counted``: known to exist),
        relations to create (``fresh``), and per file the ids it now holds."""
        get, ids = self._ids.get, self._id
        staged, known = self._staged, self._edges_known
        counted: list[int] = []
        fresh: list[_EdgeInsert] = []
        kept: list[tuple[str, list[int]]] = []
        last: str | None = None
        old: Container[int] = _NO_IDS  # what the file's committed record holds
        held: Container[int] = _NO_IDS  # what this group already wrote for it
        mine: list[int] = []
        for row, (s, d) in zip(rows, ends, strict=True):
            if s not in present or d not in present:
                continue
            path, _gen, key, type_, src, dst, props = row
            if path != last:
                last = path
                old = self._old_edges_of(path, created)
                part = staged.get(path)
                held = part.edges if part is not None else _NO_IDS
                mine = []
                kept.append((path, mine))
            i = get(key) or ids(key)
            mine.append(i)
            if i in old or i in held:
                continue
            if i in known:
                counted.append(i)
            else:
                fresh.append((i, key, type_, src, dst, props_json(props), s, d))
        return counted, fresh, kept

    prepare_rows = staticmethod(prepare_rows)

    def write_files(self, files: Sequence[FileBatch]) -> None:
        """Every file's node rows, then every edge row, in one savepoint: what
        ``write_nodes`` and ``write_edges`` of the same rows do (``FileWrites``), from
        the ids and records the parse workers prepared, so that a row costs a few set
        and array operations here instead of a tuple, hashes and probes. Files must
        be distinct and prepared; on any failure nothing is written or remembered."""
        preps: list[Prepared] = []
        for f in files:
            if not isinstance(f.prep, Prepared):
                raise StoreError(f"{f.path}: rows not prepared for write_files")
            preps.append(f.prep)
        if len({f.path for f in files}) != len(files):
            raise StoreError("write_files takes each file once")
        created: list[str] = []
        with self._savepoint(created, "write_files"):
            node_ids, counted, ranked = self._rank_prepared(files, preps, created)
            if not self._in_group:
                self.conn.executemany(_COUNT_NODES, sorted(Counter(counted).items()))
            self.conn.executemany(_UPSERT_NODE, ranked)
            written = self._written.union(*node_ids)
            # A file's relations end at its own entities, written now, but for
            # those in ``outside`` (another file's, or nobody's: then not written).
            outside = [_decode_ids(p.outside).tolist() for p in preps]
            elsewhere = set(chain.from_iterable(outside)).difference(written)
            present = self._present(elsewhere) if elsewhere else set()
            counted_edges, fresh, kept = self._sort_prepared(
                files, preps, outside, present.union(written), created
            )
            self.conn.executemany(_INSERT_EDGE, fresh)
            self.conn.executemany(_REFS_UP, [(e[0],) for e in fresh])
            if not self._in_group:  # (after the inserts: some count up what they made)
                self.conn.executemany(_COUNT_UP, [(1, i) for i in counted_edges])
        self._written = written
        self._remember(counted, ranked, counted_edges, fresh)
        self._stage_prepared(files, preps, node_ids, kept)

    def _rank_prepared(
        self, files: Sequence[FileBatch], preps: list[Prepared], created: list[str]
    ) -> tuple[list[array[int]], list[int], list[tuple[int, str, str, str, str, int, str]]]:
        """Per file its node ids; the entities whose count goes up (a file counts
        those its committed record and this group's writes do not hold); the rows to
        write to ``graph_nodes`` (ranking before what is known of the shown one)."""
        staged, best = self._staged, self._best
        node_ids: list[array[int]] = []
        counted: list[int] = []
        ranked: list[tuple[int, str, str, str, str, int, str]] = []
        for f, prep in zip(files, preps, strict=True):
            path = f.path
            ids = _decode_ids(prep.node_ids)
            node_ids.append(ids)
            old = self._old_nodes_of(path, created)
            part = staged.get(path)
            if part is None and not old:
                counted += ids
            else:
                held = part.nodes if part is not None else _NO_IDS
                counted += [i for i in ids if i not in old and i not in held]
            roles = prep.roles
            for k, b in enumerate(map(best.get, ids)):
                if b is None or (roles[k], path) <= b:
                    n = _row(prep.novel_nodes, f, k, edges=False)
                    ranked.append((ids[k], n[0], n[1], n[2], n[5], n[3], path))
        # Of the rows ranking for one entity, only the first in (role, path) can end up
        # shown (the upsert keeps the lowest): one write per entity, in id order (the
        # cold benchmark's 12,447 ranked rows are 6,500 entities).
        top: dict[int, tuple[int, str, str, str, str, int, str]] = {}
        for r in ranked:
            t = top.get(r[0])
            if t is None or (r[5], r[6]) < (t[5], t[6]):
                top[r[0]] = r
        return node_ids, counted, sorted(top.values())

    def _stage_prepared(
        self,
        files: Sequence[FileBatch],
        preps: list[Prepared],
        node_ids: list[array[int]],
        kept: list[tuple[str, Sequence[int], bool]],
    ) -> None:
        """What ``write_files`` wrote, staged for each file's finish: a file new to
        the group as its prepared ids, rows and records."""
        staged = self._staged
        for f, prep, ids, (path, mine, whole) in zip(files, preps, node_ids, kept, strict=True):
            part = staged.get(path)
            if part is None:
                part = staged[path] = _Staged.prepared(ids, f, prep)
                part._edges = dict.fromkeys(mine)
                part.edge_blob = prep.edge_ids if whole else None
                continue
            part.nodes.update(_node_entries(ids, f.nodes))
            part.edges.update(dict.fromkeys(mine))

    def _sort_prepared(
        self,
        files: Sequence[FileBatch],
        preps: list[Prepared],
        outside: list[list[int]],
        present: set[int],
        created: list[str],
    ) -> tuple[list[int], list[_EdgeInsert], list[tuple[str, Sequence[int], bool]]]:
        """``_sort_edges`` for prepared files: relations whose count goes up, those
        to create, and per file the ids it now holds (``whole``: all its relations;
        ``present``: the entities that exist, the files' own included)."""
        staged, known = self._staged, self._edges_known
        counted: list[int] = []
        fresh: list[_EdgeInsert] = []
        kept: list[tuple[str, Sequence[int], bool]] = []
        made: set[int] = set()  # created by an earlier file of the call: counted up
        for f, prep, away in zip(files, preps, outside, strict=True):
            path = f.path
            ids = _decode_ids(prep.edge_ids).tolist()
            whole = present.issuperset(away)
            # (the ends are read only where one is missing, or for a new relation)
            ends = None if whole else (_decode_ids(prep.src_ids), _decode_ids(prep.dst_ids))
            mine: Sequence[int] = ids
            if ends is not None:
                both = zip(ids, *ends, strict=True)
                mine = [i for i, s, d in both if s in present and d in present]
            kept.append((path, mine, whole))
            old = self._old_edges_of(path, created)
            part = staged.get(path)
            held = part._edges if part is not None else _NO_IDS
            new = mine
            if old or held:
                new = [i for i in mine if i not in old and i not in held]
            unknown = set(new).difference(known, made)
            if not unknown:
                counted += new
                continue
            counted += [i for i in new if i not in unknown]
            made |= unknown
            src, dst = ends or (_decode_ids(prep.src_ids), _decode_ids(prep.dst_ids))
            for k, i in enumerate(ids):
                if i in unknown and (whole or (src[k] in present and dst[k] in present)):
                    e = _row(prep.novel_edges, f, k, edges=True)
                    fresh.append((i, e[0], e[1], e[2], e[3], e[4], src[k], dst[k]))
        fresh.sort()  # (ids are unique: one insert per relation, in id order)
        return counted, fresh, kept

    def _remember(
        self,
        counted_nodes: list[int],
        ranked: list[tuple[int, str, str, str, str, int, str]],
        counted_edges: list[int],
        fresh: list[_EdgeInsert],
    ) -> None:
        """After a write: the group's count increments (added at a finish that may
        count down, else logged at its commit), and what is now known of the nodes'
        best contributions and of the edges."""
        best = self._best
        if self._in_group:  # written with the batch's savepoint: now due
            self._node_counts.update(counted_nodes)
            self._counts.update(counted_edges)
        if len(best) > _KNOWN_MAX:
            best.clear()
        for i, _k, _kind, _name, _props, role, path in ranked:
            b = best.get(i)
            if b is None or (role, path) < b:  # the node's best is now at most this
                best[i] = (role, path)
        known = self._edges_known
        if len(known) > _KNOWN_MAX:
            known.clear()
        known.update(map(_FIRST, fresh))

    def _old_edges_of(self, path: str, created: list[str]) -> set[int]:
        """The relations ``path``'s committed record holds (its file record is made
        if it has none)."""
        old = self._old_edges.get(path)
        if old is None:
            fid = self._file_id(path, created)
            if path in created:
                old = set()
            else:
                (data,) = _one(self.conn, "SELECT edges FROM graph_files WHERE id = ?", (fid,))
                old = set(_decode_edges(data))
            self._old_edges[path] = old
        return old

    def _present(self, ids: set[int]) -> set[int]:
        """Those of ``ids`` that are nodes now (written by this group, or before)."""
        present = ids & self._written
        rest = ids - present
        if rest:
            present |= {
                int(i)
                for (i,) in self.conn.execute(
                    "SELECT id FROM graph_nodes WHERE id IN (SELECT value FROM json_each(?))",
                    (json.dumps(sorted(rest)),),
                )
            }
        return present

    def _forget_ids(self, paths: list[str]) -> None:
        """File ids allocated inside a savepoint that rolled back are void."""
        for path in paths:
            self._file_ids.pop(path, None)
            self._old_edges.pop(path, None)
            self._old_nodes.pop(path, None)

    def _id(self, key: str) -> int:
        i = self._ids.get(key)
        if i is None:
            if len(self._ids) >= _KNOWN_MAX:
                self._ids.clear()
            i = self._ids[key] = key_id(key)
        return i

    def flush_counts(self) -> None:
        """Add the group's summed count increments, entities' and relations', and the
        logged ones to the count tables (one savepoint; kept for another try if it
        fails): before a count goes down, and on open and at close (``_fold_log``).
        The log is read from the file, not remembered: whatever wrote it."""
        if not self._node_counts and not self._counts and self._log_rows == 0:
            return
        node_counts, counts = Counter(self._node_counts), Counter(self._counts)
        try:
            with self.conn:
                logged = 0
                if self._log_rows != 0:
                    for nodes, edges in self.conn.execute("SELECT nodes, edges FROM graph_ref_log"):
                        _unpack_counts(nodes, node_counts)
                        _unpack_counts(edges, counts)
                        logged += 1
                    if logged:
                        self.conn.execute("DELETE FROM graph_ref_log")
                for n, ids in _by_count(node_counts):
                    self.conn.execute(_COUNT_NODES_BY, (n, ids))
                for n, ids in _by_count(counts):
                    self.conn.execute(_COUNT_UP_BY, (n, ids))
        except apsw.Error as exc:
            raise _translate(exc, "writing a group's contributions") from exc
        self._counts.clear()
        self._node_counts.clear()
        self._log_rows = 0

    def _log_deferred(self) -> None:
        """At a group's commit: its summed increments as one log row (after
        ``LOG_MAX_ROWS`` of them, added to the count tables with the log instead)."""
        if not self._counts and not self._node_counts:
            return
        if self._log_rows < 0 or self._log_rows >= LOG_MAX_ROWS:
            self.flush_counts()
            return
        try:
            self.conn.execute(
                "INSERT INTO graph_ref_log(nodes, edges) VALUES (?, ?)",
                (_pack_counts(self._node_counts), _pack_counts(self._counts)),
            )
        except apsw.Error as exc:
            raise _translate(exc, "logging a group's contributions") from exc
        self._counts.clear()
        self._node_counts.clear()
        self._log_rows += 1

    def _fold_log(self) -> None:
        """``flush_counts`` where it does not have to happen now: a store opened for
        queries while an ingest writes (it holds the write lock, and folds the log in
        itself) leaves the log as it is. Counts read the log too (``counts``)."""
        if self._in_group:
            return
        try:
            self.flush_counts()
        except TransientError:
            self._log_rows = -1

    def _refresh_due(self) -> None:
        """Recompute the entities whose best file dropped them in this group."""
        if not self._due:
            return
        try:
            with self.conn:
                self._refresh(self._due)
        except apsw.Error as exc:
            raise _translate(exc, "recomputing a group's entities") from exc
        self._due.clear()

    def _end_group(self, failed: bool) -> None:
        self._written.clear()
        self._old_edges.clear()
        self._old_nodes.clear()
        self._in_group = False
        self._counts.clear()  # applied or logged before the commit, or rolled back
        self._node_counts.clear()
        self._due.clear()
        if failed:  # the whole group rolled back: nothing staged, no new ids
            self._log_rows = -1  # (the log is as it was: count it again when needed)
            self._staged.clear()
            self._file_ids.clear()
            self._best.clear()
            self._edges_known.clear()

    def finish_file(
        self, path: str, gen: str | None, node_keys: Sequence[str], edge_keys: Sequence[str]
    ) -> None:
        """Drop what the file's previous version contributed and this one does not,
        recompute the entities it no longer ranks first for, and record its
        contributions (``gen=None``: the file is gone; drop everything)."""
        if self._may_count_down(path, gen):
            self.flush_counts()  # before a count goes down
        try:
            with self.conn:
                self._finish(path, gen)
                if not self._in_group:
                    self._refresh(self._due)
                    self._due.clear()
        except apsw.Error as exc:
            raise _translate(exc, f"finishing {path}") from exc

    def _may_count_down(self, path: str, gen: str | None) -> bool:
        """Unless the file was written in this group and its committed record is
        known to hold nothing (a new file), its finish may drop contributions."""
        nodes = self._old_nodes.get(path)
        if gen is None or nodes is None or nodes:
            return True
        edges = self._old_edges.get(path)
        if edges is not None:
            return bool(edges)
        fid = self._file_ids.get(path)  # (written rows of nodes only: look it up)
        row = None
        if fid is not None:
            row = self.conn.execute(
                "SELECT length(edges) FROM graph_files WHERE id = ?", (fid,)
            ).fetchone()
        return row is None or bool(row[0])

    def _finish(self, path: str, gen: str | None) -> None:
        c = self.conn
        staged = self._staged.pop(path, None) or _Staged()
        if gen is None:
            staged = _Staged()
        # The committed record changes now: a later write of the file in this
        # group counts against the new one.
        self._old_nodes.pop(path, None)
        self._old_edges.pop(path, None)
        row = c.execute(
            "SELECT id, nodes, edges FROM graph_files WHERE path = ?", (path,)
        ).fetchone()
        if row is None:
            if gen is None or staged.empty():
                return
            raise StoreError(f"{path}: contributions staged but no file record")
        fid = int(row[0])
        old_nodes = _decode_nodes(row[1])
        # A file the store held nothing of drops nothing: the record its parse worker
        # encoded (``write_files``) is the one to keep.
        record = staged.record if not old_nodes else None
        new_nodes = staged.nodes if record is None else {}
        new_edges = staged._edges
        stale_edges = [(i,) for i in _decode_edges(row[2]) if i not in new_edges]
        if stale_edges:  # this file no longer contributes them: count down, drop at 0
            self._edges_known.difference_update(i for (i,) in stale_edges)
            c.executemany("UPDATE graph_edge_refs SET refs = refs - 1 WHERE id = ?", stale_edges)
            c.executemany(
                "DELETE FROM graph_edges WHERE id = ?1"
                " AND coalesce((SELECT refs FROM graph_edge_refs WHERE id = ?1), 0) <= 0",
                stale_edges,
            )
            c.executemany("DELETE FROM graph_edge_refs WHERE id = ? AND refs <= 0", stale_edges)
        detached = self._drop_nodes(path, old_nodes, new_nodes) if old_nodes else set()
        if detached:
            new_edges = staged.edges
            for i in detached:
                new_edges.pop(i, None)
        if gen is None:
            c.execute("DELETE FROM graph_files WHERE id = ?", (fid,))
            c.execute("DELETE FROM graph_file_nodes WHERE file = ?", (fid,))
            self._file_ids.pop(path, None)
        else:
            text: str | bytes
            if record is None:
                text = _encode_nodes(new_nodes.values())
                listed = _encode_ids(new_nodes.values()) if new_nodes else None
            else:
                text, defines, others = record
                listed = (defines, others) if defines or others else None
            blob = staged.edge_blob if staged.edge_blob is not None else _encode_edges(new_edges)
            c.execute(
                "UPDATE graph_files SET gen = ?, nodes = ?, edges = ? WHERE id = ?",
                (gen, text, blob, fid),
            )
            if listed is not None:
                c.execute(
                    "INSERT OR REPLACE INTO graph_file_nodes VALUES (?, ?, ?)", (fid, *listed)
                )
            elif old_nodes:
                c.execute("DELETE FROM graph_file_nodes WHERE file = ?", (fid,))

    def _drop_nodes(
        self, path: str, old_nodes: dict[int, _NodeEntry], new_nodes: dict[int, _NodeEntry]
    ) -> set[int]:
        """Entities ``path`` ranked first for and no longer does (gone, or now only
        mentioned): those nobody contributes any more are deleted (returns the
        relations deleted with them), the others recomputed from the remaining
        contributions (in a group: once, before its commit)."""
        c = self.conn
        stale_nodes = [i for i in old_nodes if i not in new_nodes]
        worse = list(stale_nodes)
        worse += [i for i, e in new_nodes.items() if i in old_nodes and e[3] > old_nodes[i][3]]
        if not worse:
            return set()
        gone: list[int] = []
        if stale_nodes:  # count down; at 0 nobody contributes the entity any more
            params = [(i,) for i in stale_nodes]
            c.executemany("UPDATE graph_node_refs SET refs = refs - 1 WHERE id = ?", params)
            gone = [
                int(i)
                for (i,) in c.execute(
                    "SELECT j.value FROM json_each(?) j LEFT JOIN graph_node_refs r"
                    " ON r.id = j.value WHERE coalesce(r.refs, 0) <= 0",
                    (json.dumps(stale_nodes),),
                )
            ]
            c.executemany("DELETE FROM graph_node_refs WHERE id = ? AND refs <= 0", params)
        for i in worse:
            self._best.pop(i, None)
        detached = self._delete_nodes(gone) if gone else set()
        dropped = set(gone)
        rest = [i for i in worse if i not in dropped]
        if rest:  # those it showed are due for a refresh
            self._due.update(
                int(i)
                for (i,) in c.execute(
                    "SELECT id FROM graph_nodes WHERE id IN (SELECT value FROM json_each(?))"
                    " AND best_path = ?",
                    (json.dumps(rest), path),
                )
            )
        return detached

    def _refresh(self, ids: set[int]) -> None:
        """Show, for each entity of ``ids``, its best contribution now (the lowest
        (role, path)): one pass over every file's ``graph_file_nodes`` row, with what
        files written but not finished yet contribute (as their rows would be)."""
        if not ids:
            return
        self.flush_counts()  # (an entity gone here takes its count row along)
        c = self.conn
        staged = self._staged
        records: dict[str, dict[int, _NodeEntry]] = {}
        found = self._files_of(ids, records)
        for path, part in staged.items():  # their contributions count as written
            for i in ids & part.nodes.keys():
                found.setdefault(i, {})[path] = part.nodes[i][3]
        gone: list[int] = []
        for i in sorted(ids):
            self._best.pop(i, None)
            files = found.get(i)
            if not files:
                gone.append(i)
                continue
            role, path = min((r, p) for p, r in files.items())
            mine = staged.get(path)
            if mine is not None and i in mine.nodes:
                entry = mine.nodes[i]
            else:
                entry = (records.get(path) or records.setdefault(path, self._record_of(path)))[i]
            c.execute(
                "UPDATE graph_nodes SET kind = ?, name = ?, props = ?, best_role = ?,"
                " best_path = ? WHERE id = ?",
                (entry[1], entry[2], entry[5], role, path, i),
            )
        if gone:  # (only if contributions were written and never finished)
            c.executemany("DELETE FROM graph_node_refs WHERE id = ?", [(i,) for i in gone])
            self._delete_nodes(gone)

    def _record_of(self, path: str) -> dict[int, _NodeEntry]:
        (record,) = _one(self.conn, "SELECT nodes FROM graph_files WHERE path = ?", (path,))
        return _decode_nodes(record)

    def _delete_nodes(self, ids: list[int]) -> set[int]:
        """Delete the nodes ``ids`` (nobody contributes them any more) with every
        relation touching them (DETACH DELETE). Returns the relations so deleted."""
        c = self.conn
        detached: set[int] = set()
        for i in ids:
            self._best.pop(i, None)
            self._due.discard(i)
            node = c.execute("SELECT key FROM graph_nodes WHERE id = ?", (i,)).fetchone()
            if node is None:
                continue
            edges = [
                int(e)
                for (e,) in c.execute(
                    "SELECT id FROM graph_edges WHERE src = ?1 UNION SELECT id FROM graph_edges"
                    " WHERE dst = ?1",
                    (str(node[0]),),
                )
            ]
            c.executemany("DELETE FROM graph_edges WHERE id = ?", [(e,) for e in edges])
            c.executemany("DELETE FROM graph_edge_refs WHERE id = ?", [(e,) for e in edges])
            self._edges_known.difference_update(edges)
            detached.update(edges)
            c.execute("DELETE FROM graph_nodes WHERE id = ?", (i,))
        if detached:
            self._drop_from_records(detached)
        return detached

    def _drop_from_records(self, edges: set[int]) -> None:
        """Relations deleted with an endpoint leave every file's record (committed
        or staged). Normally no other file holds them: a file that states a relation
        contributes both its ends, unless one of its node rows was refused."""
        c = self.conn
        for fid, data in list(c.execute("SELECT id, edges FROM graph_files")):
            ids = _decode_edges(data)
            if not edges.isdisjoint(ids):
                kept = [i for i in ids if i not in edges]
                c.execute(
                    "UPDATE graph_files SET edges = ? WHERE id = ?", (_encode_edges(kept), fid)
                )
        for part in self._staged.values():
            for i in edges & part.edges.keys():
                del part.edges[i]
        for held in self._old_edges.values():
            held.difference_update(edges)

    def group(self) -> AbstractContextManager[None]:
        """One transaction for a group; apsw turns the batches' own ``with conn``
        blocks into savepoints, so a refused batch still rolls back alone."""
        return _Group(self)

    def close(self) -> None:
        """Folds the count log in where it can (``_fold_log``); the connection belongs
        to the caller."""
        self._fold_log()

    # -- queries ------------------------------------------------------------------

    def _files_of(
        self, ids: set[int], records: dict[str, dict[int, _NodeEntry]]
    ) -> dict[int, dict[str, int]]:
        """Per entity of ``ids``: path -> role of every file whose record holds it
        (one pass over the files' narrow ``graph_file_nodes`` rows; a role other than
        defining is read from the file's record, kept in ``records``)."""
        out: dict[int, dict[str, int]] = {}
        for path, defines, others in self.conn.execute(
            "SELECT f.path, n.defines, n.others FROM graph_file_nodes n"
            " JOIN graph_files f ON f.id = n.file"
        ):
            for i in ids.intersection(_decode_ids(defines)):
                out.setdefault(i, {})[path] = DEFINES
            hits = ids.intersection(_decode_ids(others))
            if hits:
                if path not in records:
                    records[path] = self._record_of(path)
                for i in hits:
                    out.setdefault(i, {})[path] = records[path][i][3]
        return out

    def _nodes(self, rows: list[Any]) -> list[GraphNode]:
        files = self._files_of({int(r[0]) for r in rows}, {})
        out = []
        for node_id, key, kind, name, props in rows:
            mine = sorted((r, p) for p, r in files.get(int(node_id), {}).items())
            defined = tuple(f for role, f in mine if role == DEFINES)
            mentioned = tuple(f for role, f in mine if role != DEFINES)
            out.append(GraphNode(key, kind, name, json.loads(props), defined, mentioned))
        return out

    def find(self, name: str, kinds: Sequence[str] = ()) -> list[GraphNode]:
        """Entities whose key equals ``name``, or whose name or qualified name does."""
        rows = [
            r
            for r in self.conn.execute(
                "SELECT id, key, kind, name, props FROM graph_nodes WHERE id = ?", (key_id(name),)
            )
            if r[1] == name
        ]
        if not rows:
            last = name.rsplit(".", 1)[-1]
            rows = [
                r
                for r in self.conn.execute(
                    "SELECT id, key, kind, name, props FROM graph_nodes"
                    " WHERE name = ? COLLATE NOCASE ORDER BY key",
                    (last,),
                )
                if r[1].split(":", 1)[1].endswith(name.lower())
            ]
        nodes = self._nodes(rows) if rows else []
        return [n for n in nodes if not kinds or n.kind in kinds]

    def node(self, key: str) -> GraphNode | None:
        row = self.conn.execute(
            "SELECT id, key, kind, name, props FROM graph_nodes WHERE id = ?", (key_id(key),)
        ).fetchone()
        return None if row is None or row[1] != key else self._nodes([row])[0]

    def edges(self, key: str) -> list[tuple[GraphEdge, GraphNode]]:
        """Every relation of ``key`` with the node at its other end."""
        out = []
        rows = self.conn.execute(
            "SELECT e.key, e.type, e.src, e.dst, e.props, n.key, n.kind, n.name, n.props"
            " FROM graph_edges e JOIN graph_nodes n"
            " ON n.id = CASE WHEN e.src = ?1 THEN e.dst_id ELSE e.src_id END"
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
        logged: Counter[int] = Counter()  # (increments not folded into the table yet)
        for (nodes,) in self.conn.execute("SELECT nodes FROM graph_ref_log"):
            _unpack_counts(nodes, logged)
        defined = (
            _one(self.conn, "SELECT coalesce(sum(refs), 0) FROM graph_node_refs")[0]
            + sum(logged.values()),
            _one(self.conn, "SELECT count(*) FROM graph_file_nodes")[0],
        )
        return {
            "nodes": {str(k): int(v) for k, v in kinds.items()},
            "edges": {str(k): int(v) for k, v in types.items()},
            "defined_in": {"contributions": int(defined[0]), "files": int(defined[1])},
        }

    def dump(self) -> Iterator[dict[str, Any]]:
        """Every node (with its files) and edge, ordered: a canonical export."""
        files_of: dict[int, list[str]] = {}
        for path, defines, others in self.conn.execute(
            "SELECT f.path, n.defines, n.others FROM graph_file_nodes n"
            " JOIN graph_files f ON f.id = n.file ORDER BY f.path"
        ):
            for i in chain(_decode_ids(defines), _decode_ids(others)):
                files_of.setdefault(i, []).append(str(path))
        for node_id, key, kind, name, props in self.conn.execute(
            "SELECT id, key, kind, name, props FROM graph_nodes ORDER BY key"
        ):
            files = files_of.get(int(node_id), [])
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

    def contributions(self) -> Iterator[tuple[Any, ...]]:
        """Every per-file contribution the store holds, as rows: ``("n", key, file, gen,
        kind, name, role, line, props)`` and ``("e", key, file, gen, type, src, dst,
        props)``, by file. For tests and diagnosis (the store's inner state)."""
        c = self.conn
        keys = {int(i): str(k) for i, k in c.execute("SELECT id, key FROM graph_nodes")}
        edges = {
            int(r[0]): tuple(r[1:])
            for r in c.execute("SELECT id, key, type, src, dst, props FROM graph_edges")
        }
        nodes_in = {
            (i, int(fid))
            for fid, defines, others in c.execute("SELECT * FROM graph_file_nodes")
            for i in chain(_decode_ids(defines), _decode_ids(others))
        }
        for fid, path, gen, node_text, edge_ids in c.execute(
            "SELECT id, path, gen, nodes, edges FROM graph_files ORDER BY path"
        ):
            for i, kind, name, role, line, props in _decode_nodes(node_text).values():
                if (i, fid) in nodes_in:
                    yield ("n", keys[i], path, gen, kind, name, role, line, props)
            for i in _decode_edges(edge_ids):
                key, type_, src, dst, props = edges[i]
                yield ("e", key, path, gen, type_, src, dst, props)
