"""Embedded graph store: ``write_files`` (a group's files in one call, from the rows
the parse workers prepared) leaves exactly the store that ``write_nodes`` and
``write_edges`` of the same rows leave, and refuses, having written nothing, what
only the row writes can isolate."""

from __future__ import annotations

import contextlib
import random
from dataclasses import dataclass
from typing import Any

import apsw
import orjson
import pytest
from tests.unit.sinks.graph_store_support import random_versions
from tests.unit.sinks.test_graph_node_counts import KEY, _state

from headrace.compression import zstd_codec
from headrace.errors import StoreError
from headrace.sinks.graph_base import EdgeRow, FileWrites, NodeRow, props_json
from headrace.sinks.graph_sqlite import Prepared, SqliteGraphStore, prepare_rows


@dataclass
class Batch:
    """A ``FileBatch``: one file's rows as the graph ingest holds them."""

    path: str
    gen: str
    nodes: list[list[Any]]
    edges: list[list[Any]]
    prep: Any = None


def _batch(path: str, gen: str, nodes: list[list[Any]], edges: list[list[Any]]) -> Batch:
    return Batch(path, gen, nodes, edges, prepare_rows(nodes, edges, _packed(nodes, edges)))


def _packed(nodes: list[list[Any]], edges: list[list[Any]]) -> bytes:
    """The rows as a parse worker packs them (the parse cache's bytes)."""
    return zstd_codec()[0].compress(orjson.dumps([nodes, edges, [], {}]))


def _by_rows(store: SqliteGraphStore, files: list[Batch]) -> None:
    store.write_nodes([NodeRow(f.path, f.gen, *n) for f in files for n in f.nodes])
    store.write_edges([EdgeRow(f.path, f.gen, *e) for f in files for e in f.edges])


def _random_files(rnd: random.Random, paths: list[str], gen: str) -> dict[str, Batch | None]:
    """Some files' new versions (None: deleted), as whole-file batches. Their relations
    may end at an entity another file contributes, or at one nobody does (such an edge
    is not written)."""
    keys = [f"{KEY}{k}" for k in range(7)]
    versions = random_versions(
        rnd, paths, keys, most_files=4, most_nodes=5, deleted=0.12, lines=3, outside=2
    )
    return {
        path: None
        if v is None
        else _batch(
            path,
            gen,
            [[*n[:5], props_json(n[5])] for n in v[0]],
            [[*e, "{}"] for e in v[1]],
        )
        for path, v in versions.items()
    }


def _history(seed: int) -> None:
    """Random groups (edits, deletions, renames' overlaps, groups that roll back)
    through both write paths; after each group the two stores are equal."""
    rnd = random.Random(seed)
    whole = SqliteGraphStore(apsw.Connection(":memory:"))
    rows = SqliteGraphStore(apsw.Connection(":memory:"))
    paths = ["a.sql", "b.sql", "ab.sql", "c.sql", "b0.sql"]
    for step in range(16):
        versions = _random_files(rnd, paths, f"g{step}")
        files = [v for v in versions.values() if v is not None]
        finishes = list(versions.items())
        rnd.shuffle(finishes)
        fail = rnd.random() < 0.15
        grouped = fail or rnd.random() < 0.8  # else each call commits on its own
        for store in (whole, rows):
            try:
                with store.group() if grouped else contextlib.nullcontext():
                    if store is whole:
                        store.write_files(files)
                    else:
                        _by_rows(store, files)
                    for path, v in finishes:
                        store.finish_file(path, v.gen if v else None, [], [])
                    if fail:
                        raise RuntimeError("rolled back")
            except RuntimeError:
                pass
        assert _state(whole) == _state(rows), (seed, step)


def test_whole_file_writes_equal_row_writes_over_random_histories() -> None:
    for seed in range(60):
        _history(seed)


def test_a_file_written_whole_keeps_the_record_its_worker_encoded() -> None:
    """Its record (nodes and relations, what a later change of the file drops) is
    the prepared one, byte for byte, and decodes to its rows."""
    store = SqliteGraphStore(apsw.Connection(":memory:"))
    nodes = [[f"{KEY}{k}", "table", f"t{k}", k % 2, k, f'{{"v":{k}}}'] for k in range(3)]
    edges = [[f"{KEY}0|R|{KEY}1", "R", f"{KEY}0", f"{KEY}1", "{}"]]
    batch = _batch("a.sql", "1", nodes, edges)
    assert isinstance(batch.prep, Prepared)
    with store.group():
        store.write_files([batch])
        store.finish_file("a.sql", "1", [], [])
    text, blob = store.conn.execute("SELECT nodes, edges FROM graph_files").fetchone()
    assert text == batch.prep.record
    assert blob == batch.prep.edge_ids
    held = sorted((r[1], r[5], r[6], r[7], r[8]) for r in store.contributions() if r[0] == "n")
    assert held == [(f"{KEY}{k}", f"t{k}", k % 2, k, f'{{"v":{k}}}') for k in range(3)]


def test_rows_that_only_row_writes_can_isolate_are_not_prepared() -> None:
    bad = [[f"{KEY}0", "table", "t\x1f0", 0, 1, "{}"]]
    assert prepare_rows(bad, [], _packed(bad, [])) is None
    twice = [[f"{KEY}0", "table", "t0", 0, 1, "{}"], [f"{KEY}0", "table", "t0", 0, 2, "{}"]]
    assert prepare_rows(twice, [], _packed(twice, [])) is None
    mapping = [[f"{KEY}0", "table", "t0", 0, 1, {"v": 1}]]
    assert prepare_rows(mapping, [], _packed(mapping, [])) is None
    store = SqliteGraphStore(apsw.Connection(":memory:"))
    assert isinstance(store, FileWrites)
    with pytest.raises(StoreError, match="not prepared"):
        store.write_files([Batch("a.sql", "1", bad, [])])
    good = _batch("a.sql", "1", [[f"{KEY}0", "table", "t0", 0, 1, "{}"]], [])
    with pytest.raises(StoreError, match="once"):
        store.write_files([good, good])
    assert store.conn.execute("SELECT count(*) FROM graph_nodes").fetchone() == (0,)


def test_a_refused_whole_write_leaves_nothing_behind() -> None:
    """A failure inside ``write_files`` rolls its savepoint back and forgets what it
    staged: the same files written by rows afterwards give the store of a fresh
    row-written one."""
    store = SqliteGraphStore(apsw.Connection(":memory:"))
    fresh = SqliteGraphStore(apsw.Connection(":memory:"))
    nodes = [[f"{KEY}{k}", "table", f"t{k}", 0, 1, "{}"] for k in range(3)]
    edges = [[f"{KEY}0|R|{KEY}1", "R", f"{KEY}0", f"{KEY}1", "{}"]]
    files = [_batch("a.sql", "1", nodes, edges), _batch("b.sql", "1", nodes[:1], [])]
    store.conn.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON graph_edges"
        " BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    with store.group():
        with pytest.raises(StoreError, match="refused"):
            store.write_files(files)
        store.conn.execute("DROP TRIGGER refuse")
        _by_rows(store, files)
        for f in files:
            store.finish_file(f.path, f.gen, [], [])
    with fresh.group():
        _by_rows(fresh, files)
        for f in files:
            fresh.finish_file(f.path, f.gen, [], [])
    assert _state(store) == _state(fresh)


@dataclass
class SealedBatch:
    """A ``FileBatch`` whose rows count how often they are read (a worker's file: its
    rows are decoded only when read)."""

    inner: Batch
    reads: list[str]

    @property
    def path(self) -> str:
        return self.inner.path

    @property
    def gen(self) -> str:
        return self.inner.gen

    @property
    def nodes(self) -> list[list[Any]]:
        self.reads.append("nodes")
        return self.inner.nodes

    @property
    def edges(self) -> list[list[Any]]:
        self.reads.append("edges")
        return self.inner.edges

    @property
    def prep(self) -> Any:
        return self.inner.prep


def test_write_files_reads_a_file_s_rows_only_for_rows_its_worker_did_not_send(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A process's first file sends every row it needs with its preparation; a file
    with the same keys sends none. Written in path order the second needs no row; a
    file that ranks first and sent nothing has its rows read, and the store is the
    row writes' either way."""
    from headrace.sinks import graph_sqlite

    monkeypatch.setattr(graph_sqlite, "_SENT_ROLES", {})
    monkeypatch.setattr(graph_sqlite, "_SENT_EDGES", set())
    nodes = [[f"{KEY}{k}", "table", f"t{k}", 0, k, f'{{"v":{k}}}'] for k in range(3)]
    edges = [[f"{KEY}0|R|{KEY}1", "R", f"{KEY}0", f"{KEY}1", "{}"]]
    first = _batch("b.sql", "1", nodes, edges)
    assert isinstance(first.prep, Prepared)
    assert sorted(first.prep.novel_nodes) == [0, 1, 2]
    assert sorted(first.prep.novel_edges) == [0]
    later, earlier = _batch("c.sql", "1", nodes, edges), _batch("a.sql", "1", nodes, edges)
    assert later.prep.novel_nodes == earlier.prep.novel_nodes == {}
    assert later.prep.novel_edges == earlier.prep.novel_edges == {}
    whole = SqliteGraphStore(apsw.Connection(":memory:"))
    rows = SqliteGraphStore(apsw.Connection(":memory:"))
    reads: dict[str, list[str]] = {}
    for batch in (first, later, earlier):
        sealed = SealedBatch(batch, reads.setdefault(batch.path, []))
        for store in (whole, rows):
            with store.group():
                if store is whole:
                    store.write_files([sealed])
                else:
                    _by_rows(store, [batch])
                store.finish_file(batch.path, batch.gen, [], [])
        assert _state(whole) == _state(rows)
    assert reads == {"b.sql": [], "c.sql": [], "a.sql": ["nodes", "nodes", "nodes"]}
