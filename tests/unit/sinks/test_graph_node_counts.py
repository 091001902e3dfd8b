"""Embedded graph store, schema v5: entities count their contributing files
(``graph_node_refs``), each file lists its entities (``graph_file_nodes``), and the
shown version of an entity whose best file drops it is found from the other files'
records. These tests pin the ranking cases, the counts and the v4 -> v5 migration."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import apsw
import pytest
from tests.unit.sinks.graph_store_support import random_versions, store_at_version

from headrace.sinks import graph_sqlite
from headrace.sinks.graph_base import DEFINES, MENTIONS, EdgeRow, NodeRow
from headrace.sinks.graph_sqlite import SqliteGraphStore

KEY = "relation:d.s.t"


def _store(path: Path) -> SqliteGraphStore:
    return SqliteGraphStore(apsw.Connection(str(path)))


def _file(store: SqliteGraphStore, path: str, gen: str, rows: list[tuple[str, int, int]]) -> None:
    """One group: ``path`` (generation ``gen``) contributes ``rows`` (key suffix,
    role, property v), then its finish."""
    with store.group():
        store.write_nodes(
            [
                NodeRow(path, gen, f"{KEY}{k}", "table", f"t{k}", role, 1, {"v": v})
                for k, role, v in rows
            ]
        )
        store.finish_file(path, gen, [], [])


def _shown(store: SqliteGraphStore) -> list[tuple[Any, ...]]:
    """Each node's (key, props, best role, best path)."""
    return [
        tuple(r)
        for r in store.conn.execute(
            "SELECT key, props, best_role, best_path FROM graph_nodes ORDER BY key"
        )
    ]


def _node_refs(store: SqliteGraphStore) -> dict[str, int]:
    store.flush_counts()  # (logged increments into the count table)
    return {
        str(k): int(n)
        for k, n in store.conn.execute(
            "SELECT n.key, r.refs FROM graph_nodes n JOIN graph_node_refs r USING (id)"
        )
    }


def _state(store: SqliteGraphStore) -> tuple[Any, ...]:
    store.flush_counts()  # (logged increments into the count tables)
    c = store.conn
    return (
        list(store.dump()),
        sorted(store.contributions(), key=repr),
        store.counts(),
        _shown(store),
        _node_refs(store),
        sorted(
            c.execute("SELECT e.key, r.refs FROM graph_edges e JOIN graph_edge_refs r USING (id)")
        ),
        store.find("t0"),
    )


def test_the_best_file_dropping_an_entity_hands_it_to_the_next_best(tmp_path: Path) -> None:
    store = _store(tmp_path / "g.sqlite")
    _file(store, "b.sql", "1", [("", DEFINES, 2)])
    _file(store, "c.sql", "1", [("", DEFINES, 3)])
    _file(store, "ab.sql", "1", [("", DEFINES, 1)])
    assert _shown(store) == [(KEY, '{"v":1}', DEFINES, "ab.sql")]
    assert _node_refs(store) == {KEY: 3}
    _file(store, "ab.sql", "2", [])  # the best drops it: the next lowest path
    assert _shown(store) == [(KEY, '{"v":2}', DEFINES, "b.sql")]
    assert _node_refs(store) == {KEY: 2}
    # b now only mentions it: a defining file ranks first, though its path is higher
    _file(store, "b.sql", "2", [("", MENTIONS, 5)])
    assert _shown(store) == [(KEY, '{"v":3}', DEFINES, "c.sql")]
    # c goes: b's mention is all that is left, shown with b's *current* properties
    store.finish_file("c.sql", None, [], [])
    assert _shown(store) == [(KEY, '{"v":5}', MENTIONS, "b.sql")]
    node = store.node(KEY)
    assert node is not None
    assert (node.files, node.mentioned_in) == ((), ("b.sql",))
    store.finish_file("b.sql", None, [], [])
    assert _shown(store) == []
    assert _node_refs(store) == {}
    assert store.counts()["defined_in"] == {"contributions": 0, "files": 0}


def test_a_role_tie_is_broken_by_the_lowest_path_whatever_the_order(tmp_path: Path) -> None:
    paths = ["b.sql", "a.sql.bak", "a.sql", "a/z.sql", "A.sql"]
    shown = []
    for n, order in enumerate((paths, paths[::-1], sorted(paths))):
        store = _store(tmp_path / f"g{n}.sqlite")
        for path in order:
            _file(store, path, "1", [("", MENTIONS, len(path))])
        shown.append(_shown(store))
        _file(store, min(paths), "2", [])  # the first drops it: the second lowest
        assert _shown(store)[0][3] == sorted(paths)[1]
    assert shown[0] == shown[1] == shown[2] == [(KEY, '{"v":5}', MENTIONS, "A.sql")]


def test_a_file_contributing_an_entity_twice_in_a_group_counts_once(tmp_path: Path) -> None:
    store = _store(tmp_path / "g.sqlite")
    with store.group():
        store.write_nodes([NodeRow("x.sql", "1", KEY, "table", "t", DEFINES, 1, {"v": 1})])
        store.write_nodes(  # another batch, the same file and entity
            [
                NodeRow("x.sql", "1", KEY, "table", "t", DEFINES, 2, {"v": 2}),
                NodeRow("x.sql", "1", KEY, "table", "t", DEFINES, 3, {"v": 3}),
            ]
        )
        store.finish_file("x.sql", "1", [KEY], [])
    assert _node_refs(store) == {KEY: 1}
    assert _shown(store) == [(KEY, '{"v":3}', DEFINES, "x.sql")]
    assert [r[7] for r in store.contributions()] == [3]  # one contribution: the last
    _file(store, "y.sql", "1", [("", DEFINES, 9)])
    assert _node_refs(store) == {KEY: 2}
    _file(store, "x.sql", "2", [])  # x drops it once: y's is left
    assert _node_refs(store) == {KEY: 1}
    assert _shown(store) == [(KEY, '{"v":9}', DEFINES, "y.sql")]


def test_a_group_that_rolls_back_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    store, twin = _store(tmp_path / "g.sqlite"), _store(tmp_path / "twin.sqlite")
    for s in (store, twin):
        _file(s, "a.sql", "1", [("0", DEFINES, 1), ("1", DEFINES, 1)])
        _file(s, "b.sql", "1", [("0", DEFINES, 2)])
    before = _state(store)

    def failing_group() -> None:
        with store.group():
            store.write_nodes(
                [
                    NodeRow("c.sql", "1", f"{KEY}0", "table", "t0", DEFINES, 1, {"v": 0}),
                    NodeRow("c.sql", "1", f"{KEY}2", "table", "t2", DEFINES, 1, {"v": 0}),
                ]
            )
            store.finish_file("a.sql", "2", [], [])  # a drops both: t1 gone, t0 due
            store.finish_file("c.sql", "1", [], [])
            raise RuntimeError("the group fails before its commit")

    with pytest.raises(RuntimeError):
        failing_group()
    assert _state(store) == before == _state(twin)
    # What the failed group counted or remembered is gone too: the same writes
    # again give what they give on a store that never saw the failure.
    for s in (store, twin):
        _file(s, "c.sql", "1", [("0", DEFINES, 0), ("2", DEFINES, 0)])
        _file(s, "a.sql", "2", [])
    assert _state(store) == _state(twin)
    assert _node_refs(store) == {f"{KEY}0": 2, f"{KEY}2": 1}
    assert _shown(store)[0] == (f"{KEY}0", '{"v":2}', DEFINES, "b.sql")


def test_entities_dropped_by_several_best_files_in_one_group(tmp_path: Path) -> None:
    """Recomputed once, before the commit, from what every file holds by then
    (including a file written later in the same group)."""
    store = _store(tmp_path / "g.sqlite")
    for path, v in (("a.sql", 1), ("b.sql", 2), ("d.sql", 4)):
        _file(store, path, "1", [("0", DEFINES, v), ("1", DEFINES, v)])
    with store.group():
        store.write_nodes([NodeRow("c.sql", "1", f"{KEY}0", "table", "t0", DEFINES, 1, {"v": 3})])
        store.finish_file("a.sql", "2", [], [])
        store.finish_file("b.sql", "2", [], [])
        store.finish_file("c.sql", "1", [], [])
    assert _shown(store) == [
        (f"{KEY}0", '{"v":3}', DEFINES, "c.sql"),
        (f"{KEY}1", '{"v":4}', DEFINES, "d.sql"),
    ]
    assert _node_refs(store) == {f"{KEY}0": 2, f"{KEY}1": 1}


def _random_history(seed: int) -> None:
    """Random groups of edits, deletions and failed groups; after each, the store
    must equal a fresh one given only each file's final rows."""
    rnd = random.Random(seed)
    store = SqliteGraphStore(apsw.Connection(":memory:"))
    paths = ["a.sql", "b.sql", "ab.sql", "c.sql", "b0.sql"]
    keys = [f"{KEY}{k}" for k in range(6)]
    final: dict[str, tuple[list[NodeRow], list[EdgeRow], str]] = {}
    for step in range(14):
        gen = f"g{step}"
        if rnd.random() < 0.1:
            path = rnd.choice(paths)
            store.finish_file(path, None, [], [])
            final.pop(path, None)
            continue
        drawn = random_versions(rnd, paths, keys, most_files=3, most_nodes=4, deleted=0.15)
        versions: dict[str, tuple[list[NodeRow], list[EdgeRow], str] | None] = {
            path: None
            if v is None
            else (
                [NodeRow(path, gen, *n) for n in v[0]],
                [EdgeRow(path, gen, *e) for e in v[1]],
                gen,
            )
            for path, v in drawn.items()
        }
        nodes = [r for v in versions.values() if v for r in v[0]]
        edges = [r for v in versions.values() if v for r in v[1]]
        cut, fail = rnd.randint(0, len(nodes)), rnd.random() < 0.15
        finishes = list(versions.items())
        rnd.shuffle(finishes)
        try:
            with store.group():
                store.write_nodes(nodes[:cut])
                store.write_nodes(nodes[cut:])
                store.write_edges(edges)
                for path, v in finishes:
                    store.finish_file(path, v[2] if v else None, [], [])
                if fail:
                    raise RuntimeError("rolled back")
        except RuntimeError:
            continue
        for path, v in versions.items():
            if v is None:
                final.pop(path, None)
            else:
                final[path] = v
        fresh = SqliteGraphStore(apsw.Connection(":memory:"))
        with fresh.group():
            fresh.write_nodes([r for p in sorted(final) for r in final[p][0]])
            fresh.write_edges([r for p in sorted(final) for r in final[p][1]])
            for p in sorted(final):
                fresh.finish_file(p, final[p][2], [], [])
        assert _state(store) == _state(fresh), (seed, step)


def test_random_histories_equal_a_fresh_store() -> None:
    for seed in range(40):
        _random_history(seed)


# -- migration v4 -> v5 ---------------------------------------------------------------


def _v4_store(tmp_path: Path) -> apsw.Connection:
    return store_at_version(tmp_path / "v4.sqlite", 4)


def test_graph_migration_to_v5_counts_each_entitys_files(tmp_path: Path) -> None:
    conn = _v4_store(tmp_path)
    kid = graph_sqlite.key_id
    t, u, w = (f"{KEY}{k}" for k in ("t", "u", "w"))
    enc = graph_sqlite._encode_nodes
    a_nodes = [(kid(t), "table", "t", 0, 1, '{"v":1}'), (kid(u), "table", "u", 1, 2, '{"v":1}')]
    b_nodes = [(kid(t), "table", "t", 0, 1, '{"v":2}'), (kid(w), "table", "w", 0, 3, "{}")]
    edge = graph_sqlite.key_id("e")
    conn.execute(
        "INSERT INTO graph_files VALUES (1, 'a.sql', 'g', ?, x''), (2, 'b.sql', 'g', ?, ?)",
        (enc(a_nodes), enc(b_nodes), graph_sqlite._encode_edges([edge])),
    )
    # the shown t is a's (best); w's only contribution (b's) is not in the old
    # table any more: w goes, and with it b's relation to it
    for i, key, name, role, path in (
        (kid(t), t, "t", 0, "a.sql"),
        (kid(u), u, "u", 1, "a.sql"),
        (kid(w), w, "w", 0, "b.sql"),
    ):
        conn.execute(
            "INSERT INTO graph_nodes VALUES (?, ?, 'table', ?, '{\"v\":1}', ?, ?)",
            (i, key, name, role, path),
        )
    conn.execute(
        "INSERT INTO graph_edges VALUES (?, 'e', 'R', ?, ?, '{}', ?, ?)",
        (edge, t, w, kid(t), kid(w)),
    )
    conn.execute("INSERT INTO graph_edge_refs VALUES (?, 1)", (edge,))
    conn.execute(
        "INSERT INTO graph_node_src VALUES (?, 1, 0), (?, 1, 1), (?, 2, 0)",
        (kid(t), kid(u), kid(t)),
    )
    assert graph_sqlite.migrate_graph(conn) == len(graph_sqlite.MIGRATIONS)
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert "graph_node_src" not in tables
    refs = {int(i): int(n) for i, n in conn.execute("SELECT id, refs FROM graph_node_refs")}
    assert refs == {kid(t): 2, kid(u): 1}
    nodes = [r[0] for r in conn.execute("SELECT key FROM graph_nodes ORDER BY key")]
    assert nodes == [t, u]
    assert conn.execute("SELECT count(*) FROM graph_edges").fetchone() == (0,)
    store = SqliteGraphStore(conn)
    assert [(d["node"], d["files"]) for d in store.dump()] == [
        (t, ["a.sql", "b.sql"]),
        (u, ["a.sql"]),
    ]
    by_file = sorted((r[2], r[1], r[6]) for r in store.contributions())
    assert by_file == [("a.sql", t, 0), ("a.sql", u, 1), ("b.sql", t, 0)]
    assert store.counts()["defined_in"] == {"contributions": 3, "files": 2}
    node = store.node(u)
    assert node is not None
    assert node.mentioned_in == ("a.sql",)
    # and it works on: a drops t, b's version is shown
    _file(store, "a.sql", "2", [])
    assert _shown(store)[0] == (t, '{"v":2}', 0, "b.sql")


def test_graph_migration_to_v5_keeps_an_ingested_graph(tmp_path: Path) -> None:
    """A store written by this code, turned back into v4 (the old contribution table
    rebuilt from it), migrates to the same graph and contributions."""
    store = _store(tmp_path / "g.sqlite")
    for n, path in enumerate(("a.sql", "b.sql", "c.sql")):
        _file(store, path, "1", [("0", DEFINES, n), (str(n + 1), n % 2, n), ("9", MENTIONS, n)])
    before = _state(store)
    c = store.conn
    with c:
        c.execute(
            "CREATE TABLE graph_node_src(node INTEGER NOT NULL, file INTEGER NOT NULL,"
            " role INTEGER NOT NULL, PRIMARY KEY(node, file)) WITHOUT ROWID"
        )
        for fid, text in list(c.execute("SELECT id, nodes FROM graph_files")):
            for e in graph_sqlite._decode_nodes(text).values():
                c.execute("INSERT INTO graph_node_src VALUES (?, ?, ?)", (e[0], fid, e[3]))
        c.execute("DROP TABLE graph_node_refs; DROP TABLE graph_file_nodes")
        c.execute("DELETE FROM graph_schema_migrations WHERE version >= 5")
    assert _state(_store(tmp_path / "g.sqlite")) == before


def test_graph_migration_to_v6_keeps_the_graph_in_insertion_ordered_tables(
    tmp_path: Path,
) -> None:
    """v6 moves entities and relations to tables in insertion order (a sequential
    rowid, the ids in a unique index): a v5 store's rows come over unchanged, and
    the store goes on as one that was never migrated."""
    fresh = _store(tmp_path / "fresh.sqlite")
    with fresh.group():
        fresh.write_nodes(
            [NodeRow("a.sql", "1", f"{KEY}{k}", "table", f"t{k}", k % 2, 1) for k in range(4)]
        )
        fresh.write_edges([EdgeRow("a.sql", "1", f"{KEY}0|R|{KEY}1", "R", f"{KEY}0", f"{KEY}1")])
        fresh.finish_file("a.sql", "1", [], [])
    _file(fresh, "b.sql", "1", [("0", DEFINES, 1), ("7", MENTIONS, 1)])
    fresh.flush_counts()  # (a v5 store keeps no log: its counts are in the tables)
    conn = store_at_version(tmp_path / "v5.sqlite", 5)
    columns = {
        "graph_nodes": "id, key, kind, name, props, best_role, best_path",
        "graph_edges": "id, key, type, src, dst, props, src_id, dst_id",
    }
    with conn:
        for table in (
            "graph_files",
            "graph_file_nodes",
            "graph_node_refs",
            "graph_edge_refs",
            *columns,
        ):
            names = columns.get(table, "*")
            for row in fresh.conn.execute(f"SELECT {names} FROM {table}"):
                marks = ",".join("?" * len(row))
                conn.execute(f"INSERT INTO {table} VALUES ({marks})", tuple(row))
    assert "rid" not in {r[1] for r in conn.execute("PRAGMA table_info(graph_nodes)")}
    store = SqliteGraphStore(conn)  # migrates
    assert _state(store) == _state(fresh)
    ids = [r[0] for r in conn.execute("SELECT id FROM graph_nodes ORDER BY rid")]
    assert len(ids) == 5
    assert ids == sorted(ids)  # carried over in id order
    for s in (store, fresh):
        _file(s, "c.sql", "1", [("0", DEFINES, 9), ("5", DEFINES, 9)])
        _file(s, "a.sql", "2", [])
    assert _state(store) == _state(fresh)


def test_count_increments_are_logged_per_group_and_added_before_a_count_goes_down(
    tmp_path: Path,
) -> None:
    """A group of new files logs its increments as one row; the count tables take them
    when a finish may count down, and at close; a store opened on a log left behind
    (no close: a killed run) adds it first."""
    path = tmp_path / "g.sqlite"
    store = _store(path)

    def log_rows(s: SqliteGraphStore) -> int:
        return int(s.conn.execute("SELECT count(*) FROM graph_ref_log").fetchone()[0])

    def raw_refs(s: SqliteGraphStore) -> dict[int, int]:
        return {int(i): int(n) for i, n in s.conn.execute("SELECT * FROM graph_node_refs")}

    _file(store, "a.sql", "1", [("0", DEFINES, 1), ("1", DEFINES, 1)])
    _file(store, "b.sql", "1", [("0", DEFINES, 2)])
    assert log_rows(store) == 2
    assert raw_refs(store) == {}  # not added yet
    _file(store, "a.sql", "2", [("1", DEFINES, 1)])  # a drops entity 0: counts first
    assert log_rows(store) == 0
    assert _node_refs(store) == {f"{KEY}0": 1, f"{KEY}1": 1}
    _file(store, "c.sql", "1", [("1", MENTIONS, 3)])
    assert log_rows(store) == 1
    again = _store(path)  # the first is never closed: its log stays in the file
    assert log_rows(again) == 0
    assert _node_refs(again) == {f"{KEY}0": 1, f"{KEY}1": 2}
    fresh = _store(tmp_path / "fresh.sqlite")
    _file(fresh, "a.sql", "2", [("1", DEFINES, 1)])
    _file(fresh, "b.sql", "1", [("0", DEFINES, 2)])
    _file(fresh, "c.sql", "1", [("1", MENTIONS, 3)])
    assert _state(again) == _state(fresh)


def test_random_histories_through_reopened_stores_equal_a_fresh_store(tmp_path: Path) -> None:
    """Random groups with the store dropped without a close now and then (its log
    left in the file), against a store that never is: equal after every group."""
    for seed in range(12):
        rnd = random.Random(seed)
        path = tmp_path / f"r{seed}.sqlite"
        store = _store(path)
        steady = SqliteGraphStore(apsw.Connection(":memory:"))
        for step in range(14):
            path_ = rnd.choice(["a.sql", "b.sql", "c.sql"])
            rows = [
                (str(k), rnd.choice([0, 1]), rnd.randint(0, 3))
                for k in rnd.sample(range(5), rnd.randint(0, 3))
            ]
            gen = None if rnd.random() < 0.15 else f"g{step}"
            for s in (store, steady):
                if gen is None:
                    s.finish_file(path_, None, [], [])
                else:
                    _file(s, path_, gen, rows)
            if rnd.random() < 0.3:
                store = _store(path)  # the old one is dropped unclosed
            assert _state(store) == _state(steady), (seed, step)


def test_a_store_opened_while_another_writes_leaves_the_log_and_counts_it(
    tmp_path: Path,
) -> None:
    """A second store on the file (a query during an ingest) cannot fold the log in
    while the writer holds the write lock: it opens anyway, its counts read the log,
    and the log is folded in later."""
    path = tmp_path / "g.sqlite"
    writer = _store(path)
    _file(writer, "a.sql", "1", [("0", DEFINES, 1), ("1", MENTIONS, 1)])
    _file(writer, "b.sql", "1", [("0", DEFINES, 2)])
    writer.conn.execute("BEGIN IMMEDIATE")  # an ingest's group in progress
    reader = _store(path)  # (no busy timeout: the fold fails at once)
    assert reader.counts()["defined_in"] == {"contributions": 3, "files": 2}
    writer.conn.execute("ROLLBACK")
    reader.close()  # folds it in now
    assert reader.conn.execute("SELECT count(*) FROM graph_ref_log").fetchone() == (0,)
    assert _node_refs(reader) == {f"{KEY}0": 2, f"{KEY}1": 1}
    assert reader.counts()["defined_in"] == {"contributions": 3, "files": 2}
