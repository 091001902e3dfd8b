"""Graph stores: the embedded store's migrations, and the Neo4j store's Cypher through a
recording double of the driver (a server cannot run here; see graph_neo4j's docstring)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import apsw
import pytest
from tests.unit.sinks.graph_store_support import store_at_version

from headrace.errors import StoreError, TransientError
from headrace.graph.ingest import GraphIndex
from headrace.graph.writer import BatchWriter
from headrace.sinks import graph_sqlite
from headrace.sinks.graph_base import EdgeRow, NodeRow, props_json
from headrace.sinks.graph_neo4j import Neo4jGraphStore

# -- embedded store migrations --------------------------------------------------------


def test_graph_migration_to_v3_replaces_the_text_keyed_tables(tmp_path: Path) -> None:
    conn = apsw.Connection(str(tmp_path / "g.sqlite"))
    conn.execute(
        "CREATE TABLE graph_schema_migrations(version INTEGER PRIMARY KEY, applied_at REAL)"
    )
    with conn:
        graph_sqlite.MIGRATIONS[0](conn)
        conn.execute("INSERT INTO graph_schema_migrations VALUES (1, 0)")
    conn.execute(
        "INSERT INTO graph_node_src VALUES"
        " ('relation:d.s.t', 'a.sql', 'g', 'table', 't', 0, 1, '{}')"
    )
    assert graph_sqlite.migrate_graph(conn) == len(graph_sqlite.MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"graph_files", "graph_nodes", "graph_node_refs", "graph_edges"} <= tables
    assert "graph_edge_src" not in tables  # v4: relations count their files
    assert "graph_node_src" not in tables  # v5: entities too
    # v1's rows are gone (the ingest's new signature re-ingests every file)
    assert conn.execute("SELECT count(*) FROM graph_nodes").fetchone() == (0,)
    assert conn.execute("SELECT count(*) FROM graph_node_refs").fetchone() == (0,)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(graph_file_nodes)")]
    assert cols == ["file", "defines", "others"]
    assert graph_sqlite.migrate_graph(conn) == len(graph_sqlite.MIGRATIONS)  # idempotent


def test_graph_migration_to_v4_counts_each_relations_files(tmp_path: Path) -> None:
    conn = store_at_version(tmp_path / "g.sqlite", 3)
    enc = graph_sqlite._encode_edges
    conn.execute(
        "INSERT INTO graph_files VALUES (1, 'a.sql', 'g', '', ?), (2, 'b.sql', 'g', '', ?)",
        (enc([10, 11]), enc([10, 12])),  # b's record lists 12, which it no longer holds
    )
    for i in (10, 11, 12):
        conn.execute(
            "INSERT INTO graph_edges VALUES (?, ?, 'T', 's', 'd', '{}', 1, 2)", (i, f"e{i}")
        )
    conn.execute("INSERT INTO graph_edge_src VALUES (10, 1), (10, 2), (11, 1)")
    assert graph_sqlite.migrate_graph(conn) == len(graph_sqlite.MIGRATIONS)
    refs = dict(conn.execute("SELECT id, refs FROM graph_edge_refs").fetchall())
    assert refs == {10: 2, 11: 1}
    edges = [r[0] for r in conn.execute("SELECT id FROM graph_edges ORDER BY id")]
    assert edges == [10, 11]  # 12 had no contribution left: gone
    records = dict(conn.execute("SELECT path, edges FROM graph_files").fetchall())
    assert graph_sqlite._decode_edges(records["a.sql"]) == [10, 11]
    assert graph_sqlite._decode_edges(records["b.sql"]) == [10]


def test_a_newer_graph_schema_is_refused(tmp_path: Path) -> None:
    conn = apsw.Connection(str(tmp_path / "g.sqlite"))
    graph_sqlite.migrate_graph(conn)
    conn.execute("INSERT INTO graph_schema_migrations VALUES (99, 0)")
    with pytest.raises(StoreError, match="newer"):
        graph_sqlite.migrate_graph(conn)


# -- Neo4j through a recording driver ----------------------------------------------------


class FakeTx:
    def __init__(self, driver: FakeDriver) -> None:
        self.driver = driver
        self._closed = False

    def run(self, query: str, **params: Any) -> FakeResult:
        if self.driver.fail is not None:
            raise self.driver.fail
        self.driver.queries.append((query, params))
        return FakeResult()

    def commit(self) -> None:
        self.driver.commits += 1
        self._closed = True

    def rollback(self) -> None:
        self.driver.rollbacks += 1
        self._closed = True

    def closed(self) -> bool:
        return self._closed


class FakeResult:
    def consume(self) -> None:
        return None

    def single(self) -> dict[str, Any]:
        return {"keys": ["column:d.s.t.old"]}


class FakeSession:
    def __init__(self, driver: FakeDriver) -> None:
        self.driver = driver

    def __enter__(self) -> FakeSession:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def begin_transaction(self) -> FakeTx:
        return FakeTx(self.driver)


class FakeDriver:
    def __init__(self) -> None:
        self.queries: list[tuple[str, dict[str, Any]]] = []
        self.commits = 0
        self.rollbacks = 0
        self.fail: Exception | None = None

    def session(self, database: str | None = None) -> FakeSession:
        return FakeSession(self)

    def close(self) -> None:
        return None


def _node(key: str, kind: str = "table", role: int = 0, file: str = "a.sql") -> NodeRow:
    return NodeRow(file, "g1", key, kind, key.rsplit(".", 1)[-1], role, 3, {"qualified": key})


def test_nodes_are_merged_in_one_transaction_per_batch_one_unwind_per_label() -> None:
    driver = FakeDriver()
    store = Neo4jGraphStore(driver, "neo4j")
    rows = [
        _node("relation:d.s.film"),
        _node("relation:d.s.language", role=1),  # a mention: no kind label
        _node("column:d.s.film.title", kind="column"),
    ]
    store.write_nodes(rows)
    assert driver.commits == 1
    assert len(driver.queries) == 3
    by_label = {q.split("\n")[5].strip(): p["rows"] for q, p in driver.queries}
    assert [r["key"] for r in by_label["SET n:Table"]] == ["relation:d.s.film"]
    assert [r["key"] for r in by_label["SET n:Column"]] == ["column:d.s.film.title"]
    assert [r["key"] for r in by_label[""]] == ["relation:d.s.language"]
    for query, params in driver.queries:
        assert query.lstrip().startswith("UNWIND $rows AS r")
        assert "MERGE (n:Entity {key: r.key})" in query
        assert json.loads(params["rows"][0]["props"])["qualified"].startswith("relation:") or (
            params["rows"][0]["kind"] == "column"
        )


def test_edges_match_their_ends_and_record_the_contributing_file() -> None:
    driver = FakeDriver()
    store = Neo4jGraphStore(driver)
    store.write_edges(
        [EdgeRow("a.sql", "g1", "k1", "REFERENCES", "relation:x", "relation:y", {"columns": ["a"]})]
    )
    ((query, params),) = driver.queries
    assert "MATCH (a:Entity {key: r.src})" in query
    assert "MERGE (a)-[e:REFERENCES {key: r.key}]->(b)" in query
    assert params["rows"][0]["suffix"] == "@a.sql"
    with pytest.raises(StoreError, match="unknown relation type"):
        store.write_edges([EdgeRow("a.sql", "g1", "k", "DROP DATABASE", "x", "y", {})])


def test_finish_file_drops_other_generations_and_refreshes_touched_entities() -> None:
    driver = FakeDriver()
    Neo4jGraphStore(driver).finish_file("a.sql", "g2", ["relation:d.s.t"], [])
    queries = [q for q, _ in driver.queries]
    assert len(queries) == 5
    assert driver.commits == 1  # one transaction: the file switches version at once
    orphans = dict(driver.queries)[queries[2]]
    assert orphans["keys"] == ["column:d.s.t.old", "relation:d.s.t"]
    assert "DETACH DELETE n" in queries[2]


def test_driver_errors_are_translated_and_drive_the_batch_writer() -> None:
    from neo4j import exceptions as neo

    driver = FakeDriver()
    store = Neo4jGraphStore(driver)
    driver.fail = neo.ServiceUnavailable("down")
    with pytest.raises(TransientError):
        store.write_nodes([_node("relation:a")])
    driver.fail = neo.ClientError("constraint")
    with pytest.raises(StoreError):
        store.write_nodes([_node("relation:a")])
    assert (driver.commits, driver.rollbacks) == (0, 2)  # a failed batch is rolled back

    class Poisoned(FakeDriver):
        def session(self, database: str | None = None) -> FakeSession:
            return PoisonSession(self)

    class PoisonSession(FakeSession):
        def begin_transaction(self) -> FakeTx:
            return PoisonTx(self.driver)

    class PoisonTx(FakeTx):
        def run(self, query: str, **params: Any) -> FakeResult:
            if any(r["key"] == "relation:bad" for r in params.get("rows", [])):
                raise neo.ClientError("refused")
            return super().run(query, **params)

    poisoned = Poisoned()
    rows = [_node(f"relation:t{i}") for i in range(99)] + [_node("relation:bad")]
    failures = BatchWriter(100, sleep=lambda _s: None).write(
        Neo4jGraphStore(poisoned).write_nodes, rows
    )
    assert [f.row.key for f in failures] == ["relation:bad"]
    written = {r["key"] for _q, p in poisoned.queries for r in p["rows"]}
    assert written == {f"relation:t{i}" for i in range(99)}


def test_the_ingest_drives_neo4j_like_the_embedded_store(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    root.mkdir()
    (root / "a.sql").write_text(
        "CREATE TABLE a (id INT PRIMARY KEY);\nCREATE TABLE b (a_id INT REFERENCES a(id));\n"
    )
    driver = FakeDriver()
    with GraphIndex(tmp_path / "ledger.sqlite", store=Neo4jGraphStore(driver)) as index:
        stats = index.ingest([str(root)])
    assert stats.files_done == 1
    merged = {r["key"] for q, p in driver.queries if "UNWIND" in q for r in p.get("rows", [])}
    assert {"relation:shop.main.a", "relation:shop.main.b", "column:shop.main.b.a_id"} <= merged
    assert any("DETACH DELETE" in q for q, _ in driver.queries)  # finish_file ran


# -- embedded store: ranking of shared entities across groups ------------------------


def _sqlite_store(path: Path) -> graph_sqlite.SqliteGraphStore:
    return graph_sqlite.SqliteGraphStore(apsw.Connection(str(path)))


def _write(store: graph_sqlite.SqliteGraphStore, file: str, gen: str, **props: int) -> None:
    """One group: ``file`` (generation ``gen``) defines relation t with ``props``
    (no props: the file no longer defines it), then its finish."""
    with store.group():
        rows = [NodeRow(file, gen, "relation:d.s.t", "table", "t", 0, 1, props)] if props else []
        store.write_nodes(rows)
        store.finish_file(file, gen, [r.key for r in rows], [])


def _shown(store: graph_sqlite.SqliteGraphStore) -> list[dict[str, Any]]:
    return list(store.dump())


def test_the_lowest_path_is_shown_whatever_the_order_and_history(tmp_path: Path) -> None:
    store = _sqlite_store(tmp_path / "g.sqlite")
    _write(store, "b.sql", "1", v=2)
    _write(store, "c.sql", "1", v=3)  # ranks after b: a no-op for the node
    _write(store, "a.sql", "1", v=1)  # ranks first
    assert [n["props"] for n in _shown(store)] == [{"v": 1}]
    _write(store, "a.sql", "2")  # a stops defining it: b's version is shown again
    assert [n["props"] for n in _shown(store)] == [{"v": 2}]
    _write(store, "aa.sql", "1", v=9)  # after the old first (a), before b: shown
    assert [n["props"] for n in _shown(store)] == [{"v": 9}]
    _write(store, "c.sql", "2", v=4)  # still after b
    _write(store, "a.sql", "3", v=5)  # first again, after its refresh
    fresh = _sqlite_store(tmp_path / "fresh.sqlite")
    for file, value in (("c.sql", 4), ("aa.sql", 9), ("a.sql", 5), ("b.sql", 2)):
        _write(fresh, file, "x", v=value)
    assert _shown(store) == _shown(fresh)
    assert [n["props"] for n in _shown(store)] == [{"v": 5}]
    for file in ("a.sql", "aa.sql", "b.sql", "c.sql"):
        store.finish_file(file, None, [], [])  # all gone: so is the node
    assert _shown(store) == []


def test_an_entity_its_best_file_drops_falls_to_a_file_written_in_the_same_group(
    tmp_path: Path,
) -> None:
    """Node contributions written in a group are inserted before its next finish_file
    (they wait, to go in key order): a.sql's refresh finds b.sql's."""
    store = _sqlite_store(tmp_path / "g.sqlite")
    _write(store, "a.sql", "1", v=1)
    with store.group():
        store.write_nodes([NodeRow("b.sql", "1", "relation:d.s.t", "table", "t", 0, 1, {"v": 2})])
        store.finish_file("a.sql", "2", [], [])  # a no longer defines t
        store.finish_file("b.sql", "1", ["relation:d.s.t"], [])
    assert [(n["props"], n["files"]) for n in _shown(store)] == [({"v": 2}, ["b.sql"])]


# -- embedded store: relations count their files (schema v4) --------------------------


def _rel_rows(
    file: str, gen: str, *, edge: bool = True, nodes: tuple[str, ...] = ("a", "b")
) -> tuple[list[NodeRow], list[EdgeRow]]:
    """``file`` contributes tables ``nodes`` and, with ``edge``, a→b REFERENCES."""
    ns = [NodeRow(file, gen, f"relation:d.s.{n}", "table", n, 0, 1, {}) for n in nodes]
    es = (
        [
            EdgeRow(
                file,
                gen,
                "relation:d.s.a|R|relation:d.s.b",
                "R",
                "relation:d.s.a",
                "relation:d.s.b",
            )
        ]
        if edge
        else []
    )
    return ns, es


def _sync(
    store: graph_sqlite.SqliteGraphStore, *files: tuple[str, str, bool, tuple[str, ...]]
) -> None:
    """One group writing ``files`` (path, gen, states the edge, its tables), then
    finishing each in order."""
    with store.group():
        parts = [(f, g, *_rel_rows(f, g, edge=e, nodes=n)) for f, g, e, n in files]
        store.write_nodes([r for _f, _g, ns, _es in parts for r in ns])
        store.write_edges([r for _f, _g, _ns, es in parts for r in es])
        for f, g, ns, es in parts:
            store.finish_file(f, g, [r.key for r in ns], [r.key for r in es])


def _refs(store: graph_sqlite.SqliteGraphStore) -> list[tuple[str, int]]:
    store.flush_counts()  # (logged increments into the count table)
    rows = store.conn.execute(
        "SELECT e.key, r.refs FROM graph_edges e LEFT JOIN graph_edge_refs r USING (id)"
    )
    return [(str(k), int(n)) for k, n in rows]


def test_a_relation_lives_while_any_file_states_it(tmp_path: Path) -> None:
    store = _sqlite_store(tmp_path / "g.sqlite")
    edge = "relation:d.s.a|R|relation:d.s.b"
    _sync(store, ("x.sql", "1", True, ("a", "b")), ("y.sql", "1", True, ("a", "b")))
    assert _refs(store) == [(edge, 2)]
    _sync(store, ("x.sql", "1", True, ("a", "b")))  # rewritten unchanged: no double count
    assert _refs(store) == [(edge, 2)]
    # In one group: x stops stating it while z starts; x is finished first.
    _sync(store, ("z.sql", "1", True, ("a", "b")), ("x.sql", "2", False, ("a", "b")))
    _sync(store, ("y.sql", "2", False, ("a", "b")))
    assert _refs(store) == [(edge, 1)]
    _sync(store, ("z.sql", "2", False, ("a", "b")))
    assert _refs(store) == []
    assert [r[0] for r in store.contributions()] == ["n"] * 6  # three files, two tables


def test_a_relation_handed_from_its_only_file_to_another_in_one_group_survives(
    tmp_path: Path,
) -> None:
    """Count increments of known relations are summed per group and applied before
    the next finish_file: x, finished first, drops the relation z now states."""
    store = _sqlite_store(tmp_path / "g.sqlite")
    edge = "relation:d.s.a|R|relation:d.s.b"
    _sync(store, ("x.sql", "1", True, ("a", "b")))
    assert _refs(store) == [(edge, 1)]
    _sync(store, ("x.sql", "2", False, ("a", "b")), ("z.sql", "1", True, ("a", "b")))
    assert _refs(store) == [(edge, 1)]
    assert [r[2] for r in store.contributions() if r[0] == "e"] == ["z.sql"]
    _sync(store, ("w.sql", "1", True, ("a", "b")))
    assert _refs(store) == [(edge, 2)]
    # Increments written after a group's last finish are applied at its commit.
    with store.group():
        ns, es = _rel_rows("y.sql", "1")
        store.write_nodes(ns)
        store.write_edges(es)
    assert _refs(store) == [(edge, 3)]


def test_a_relation_whose_end_another_file_held_goes_with_that_end(tmp_path: Path) -> None:
    store = _sqlite_store(tmp_path / "g.sqlite")
    # x defines a and b; y states a→b but its own node rows were refused (none
    # written): the edge still matches x's nodes.
    _sync(store, ("x.sql", "1", False, ("a", "b")), ("y.sql", "1", True, ()))
    assert _refs(store) == [("relation:d.s.a|R|relation:d.s.b", 1)]
    _sync(store, ("x.sql", "2", False, ("a",)))  # b is gone: so is the edge
    assert _refs(store) == []
    assert [r for r in store.contributions() if r[0] == "e"] == []  # y's record too
    _sync(store, ("w.sql", "1", True, ("a", "b")))  # the edge again, from w alone
    store.finish_file("y.sql", None, [], [])  # y goes: w's edge stays
    assert _refs(store) == [("relation:d.s.a|R|relation:d.s.b", 1)]


def test_a_separator_in_a_name_is_refused_and_the_rest_of_the_batch_written(
    tmp_path: Path,
) -> None:
    store = _sqlite_store(tmp_path / "g.sqlite")
    rows = [
        NodeRow("x.sql", "1", f"relation:d.s.t{i}", "table", f"t{i}", 0, 1, {}) for i in range(8)
    ]
    rows[5] = rows[5]._replace(name="bad\x1fname")  # would break the file's record
    with store.group():
        failures = BatchWriter(batch_size=8, sleep=lambda _s: None).write(store.write_nodes, rows)
        store.finish_file("x.sql", "1", [r.key for r in rows if r is not rows[5]], [])
    assert [f.row.key for f in failures] == ["relation:d.s.t5"]
    assert sorted(n["name"] for n in store.dump() if "node" in n) == [
        f"t{i}" for i in range(8) if i != 5
    ]


def _text_rows(nodes: list[NodeRow], edges: list[EdgeRow]) -> tuple[list[NodeRow], list[EdgeRow]]:
    """The same rows with their properties as ``props_json`` text (the ingest's form)."""
    return (
        [r._replace(props=props_json(r.props)) for r in nodes],
        [r._replace(props=props_json(r.props)) for r in edges],
    )


def _rows_with_props() -> tuple[list[NodeRow], list[EdgeRow]]:
    nodes = [
        NodeRow("a.sql", "1", "relation:d.s.t", "table", "t", 0, 1, {"z": 1, "a": "é", "m": [2]}),
        NodeRow("a.sql", "1", "relation:d.s.u", "table", "u", 0, 2, {}),
    ]
    edges = [
        EdgeRow(
            "a.sql",
            "1",
            "t|R|u|x",
            "REFERENCES",
            "relation:d.s.t",
            "relation:d.s.u",
            {"b": 1, "a": 2},
        ),
        EdgeRow("a.sql", "1", "t|C|u", "CONTAINS", "relation:d.s.t", "relation:d.s.u", {}),
    ]
    return nodes, edges


def test_rows_with_props_as_text_write_what_rows_with_mappings_write(tmp_path: Path) -> None:
    nodes, edges = _rows_with_props()
    dumps = []
    for name, (n, e) in (("maps", (nodes, edges)), ("text", _text_rows(nodes, edges))):
        store = _sqlite_store(tmp_path / f"{name}.sqlite")
        with store.group():
            store.write_nodes(n)
            store.write_edges(e)
            store.finish_file("a.sql", "1", [r.key for r in n], [r.key for r in e])
        raw = [
            list(store.conn.execute(f"SELECT * FROM {t} ORDER BY 1"))
            for t in ("graph_nodes", "graph_edges", "graph_files")
        ]
        dumps.append((list(store.dump()), list(store.contributions()), raw))
    assert dumps[0] == dumps[1]
    shown = [d for d in dumps[0][0] if d.get("node") == "relation:d.s.t"]
    assert shown[0]["props"] == {"a": "é", "m": [2], "z": 1}
    # Neo4j gets the same parameters either way.
    sent = []
    for n, e in ((nodes, edges), _text_rows(nodes, edges)):
        driver = FakeDriver()
        neo = Neo4jGraphStore(driver)
        neo.write_nodes(n)
        neo.write_edges(e)
        sent.append(driver.queries)
    assert sent[0] == sent[1]
    assert any('{"a":2,"b":1}' in str(q) for q in sent[1])  # sorted, as before
