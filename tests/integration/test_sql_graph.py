"""The SQL knowledge graph end to end on real schemas (Sakila in 8 dialects, Chinook).

Expected figures are Sakila's own: 16 tables and 22 foreign keys (CockroachDB's
port has no ``film_text``; PostgreSQL's adds six ``payment_p2007_*`` partitions,
each with three foreign keys of its own).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from tests.integration.sql_graph_support import (
    CHINOOK,
    SAKILA,
    contributions,
    copy_sql,
    ingest,
    query,
    snapshot,
)

from headrace.graph.ingest import GraphIndex
from headrace.parsers.cache import ParseCache
from headrace.sinks.graph_base import EdgeRow, NodeRow
from headrace.sinks.graph_sqlite import SqliteGraphStore
from headrace.testing.graph import FaultyGraphStore

SAKILA_16 = {
    "actor",
    "address",
    "category",
    "city",
    "country",
    "customer",
    "film",
    "film_actor",
    "film_category",
    "film_text",
    "inventory",
    "language",
    "payment",
    "rental",
    "staff",
    "store",
}
PARTITIONS = {f"payment_p2007_0{i}" for i in range(1, 7)}

# file -> (schema, tables, columns of customer/payment/film, total columns, table FKs)
DIALECTS: dict[str, tuple[str, set[str], tuple[int, int, int], int, int]] = {
    "mysql-sakila-schema.sql": ("sakila.main", SAKILA_16, (9, 7, 13), 89, 22),
    "sqlite-sakila-schema.sql": ("sakila.main", SAKILA_16, (9, 7, 13), 89, 22),
    "oracle-sakila-schema.sql": ("sakila.main", SAKILA_16, (9, 7, 13), 89, 22),
    "sql-server-sakila-schema.sql": ("sakila.dbo", SAKILA_16, (9, 7, 13), 89, 22),
    "db2-sakila-schema.sql": ("sakila.public", SAKILA_16, (9, 7, 13), 89, 22),
    "cockroachdb-sakila-schema.sql": (
        "sakila.public",
        SAKILA_16 - {"film_text"},
        (10, 6, 13),
        86,
        22,
    ),
    "postgres-sakila-schema.sql": (
        "sakila.public",
        (SAKILA_16 - {"film_text"}) | PARTITIONS,
        (10, 6, 14),
        87,  # the partitions only INHERIT their columns
        22 + 6 * 3,
    ),
}


def _one_file_graph(tmp_path: Path, name: str) -> Path:
    root = copy_sql(SAKILA, tmp_path / "sakila", [name])
    graph = tmp_path / "g.sqlite"
    stats = ingest(graph, root)
    assert stats.files_done == 1
    assert stats.failed_statements == 0
    assert stats.dead_letters == 0
    return graph


def _defined(graph: Path, kind: str) -> list[str]:
    rows = contributions(graph)
    return sorted(r[1] for r in rows if r[0] == "n" and r[6] == 0 and r[4] == kind)


@pytest.mark.parametrize("name", sorted(DIALECTS))
def test_sakila_graph_per_dialect(tmp_path: Path, name: str) -> None:
    schema, tables, (n_customer, n_payment, n_film), n_columns, n_fks = DIALECTS[name]
    graph = _one_file_graph(tmp_path, name)
    table_keys = _defined(graph, "table")
    assert {k.rsplit(".", 1)[1] for k in table_keys} == tables
    assert {k.split(":", 1)[1].rsplit(".", 1)[0] for k in table_keys} == {schema}
    columns = _defined(graph, "column")
    assert len(columns) == n_columns

    def cols(table: str) -> int:
        return sum(1 for c in columns if c.rsplit(".", 1)[0] == f"column:{schema}.{table}")

    assert (cols("customer"), cols("payment"), cols("film")) == (n_customer, n_payment, n_film)
    fks = query(
        graph,
        "SELECT src, dst, props FROM graph_edges WHERE type = 'REFERENCES'"
        " AND src LIKE 'relation:%'",
    )
    assert len(fks) == n_fks
    rel = f"relation:{schema}"
    film_fks = sorted(p for s, d, p in fks if s == f"{rel}.film" and d == f"{rel}.language")
    assert len(film_fks) == 2
    assert any('"columns":["original_language_id"]' in p for p in film_fks)
    col = f"column:{schema}"
    column_edges = set(
        query(graph, "SELECT src, dst FROM graph_edges WHERE type = 'REFERENCES' AND src LIKE 'c%'")
    )
    for edge in [
        (f"{col}.payment.rental_id", f"{col}.rental.rental_id"),
        (f"{col}.film_actor.actor_id", f"{col}.actor.actor_id"),
        (f"{col}.store.manager_staff_id", f"{col}.staff.staff_id"),
        (f"{col}.film.original_language_id", f"{col}.language.language_id"),
    ]:
        assert edge in column_edges
    pk = query(graph, "SELECT props FROM graph_nodes WHERE key = ?", f"{col}.film_actor.actor_id")
    assert '"primary_key":true' in pk[0][0]
    reads = {
        r[0]
        for r in query(graph, "SELECT dst FROM graph_edges WHERE src = ?", f"{rel}.customer_list")
    }
    assert {f"{rel}.customer", f"{rel}.address", f"{rel}.city", f"{rel}.country"} <= reads


ROUTINES = {
    # file -> (routine, ATTACHED_TO / WRITES_TO / READS_FROM target, edge type)
    "mysql-sakila-schema.sql": [
        ("ins_film", "film", "ATTACHED_TO"),
        ("ins_film", "film_text", "WRITES_TO"),
        ("rewards_report", "payment", "READS_FROM"),
    ],
    "sqlite-sakila-schema.sql": [("film_trigger_ai", "film", "ATTACHED_TO")],
    "oracle-sakila-schema.sql": [("film_before_trigger", "film", "ATTACHED_TO")],
    "postgres-sakila-schema.sql": [
        ("film_fulltext_trigger", "film", "ATTACHED_TO"),
        ("get_customer_balance", "rental", "READS_FROM"),  # rewards_report's SQL is a string
    ],
}


@pytest.mark.parametrize("name", sorted(ROUTINES))
def test_sakila_routines_and_their_tables(tmp_path: Path, name: str) -> None:
    schema = DIALECTS[name][0]
    graph = _one_file_graph(tmp_path, name)
    edges = set(query(graph, "SELECT src, type, dst FROM graph_edges WHERE src LIKE 'routine:%'"))
    for routine, table, type_ in ROUTINES[name]:
        key = f"routine:{schema}.{routine}"
        assert (key, type_, f"relation:{schema}.{table}") in edges
    assert not any(d.endswith(".tmpcustomer") for _s, _t, d in edges)


def test_every_sql_fixture_ingests(tmp_path: Path) -> None:
    root = tmp_path / "all"
    copy_sql(SAKILA, root / "sakila")
    copy_sql(CHINOOK, root / "chinook")
    with GraphIndex(tmp_path / "g.sqlite") as index:
        stats = index.ingest([str(root)])
        letters = index.failed()
    assert stats.files_done == 12
    assert stats.files_failed == 0
    assert letters == []
    assert stats.failed_statements == 0
    assert stats.data_statements == 3 * 24  # Chinook's INSERTs, skipped unparsed
    chinook = {
        r[1].lower()
        for r in contributions(tmp_path / "g.sqlite")
        if r[0] == "n" and r[4] == "table" and r[6] == 0 and "chinook" in r[2].lower()
    }
    # Chinook names its database itself in MySQL (CREATE DATABASE/USE Chinook);
    # PostgreSQL and SQLite names are snake_case and PascalCase: 3 x 11 tables.
    assert len(chinook) == 33


def test_a_bad_statement_is_a_dead_letter_with_file_and_line(tmp_path: Path) -> None:
    root = copy_sql(SAKILA, tmp_path / "sakila", ["sqlite-sakila-schema.sql"])
    path = root / "sqlite-sakila-schema.sql"
    lines = path.read_text().split("\n")
    at = next(i for i, line in enumerate(lines) if line.startswith("CREATE TABLE category"))
    lines[at] = (
        "CREATE TABLE category (oops INT NOT NULL NOT), (\n"
        + lines[at][len("CREATE TABLE category (") :]
    )
    path.write_text("\n".join(lines))
    graph = tmp_path / "g.sqlite"
    ingest(graph, root)
    with GraphIndex(graph) as index:
        (letter,) = index.failed()
    assert letter.path == str(path)
    assert letter.stage == "parse"
    assert letter.line == at + 1
    tables = {k.rsplit(".", 1)[1] for k in _defined(graph, "table")}
    assert tables == SAKILA_16 - {"category"}


# -- edits == fresh ingest ------------------------------------------------------------


def _fresh(tmp_path: Path, root: Path, n: int) -> list[dict[str, Any]]:
    graph = tmp_path / f"fresh{n}.sqlite"
    ingest(graph, root)
    return snapshot(graph)


def _same_as_fresh(tmp_path: Path, graph: Path, root: Path, n: int) -> None:
    fresh = tmp_path / f"fresh{n}.sqlite"
    assert snapshot(graph) == _fresh(tmp_path, root, n)
    assert contributions(graph) == contributions(fresh)


def test_edits_leave_exactly_the_graph_of_a_fresh_ingest(tmp_path: Path) -> None:
    root = tmp_path / "shop"
    copy_sql(
        SAKILA,
        root,
        ["mysql-sakila-schema.sql", "sqlite-sakila-schema.sql", "postgres-sakila-schema.sql"],
    )
    shutil.copy(root / "mysql-sakila-schema.sql", root / "copy-of-mysql.sql")
    graph = tmp_path / "g.sqlite"
    cache = ParseCache(tmp_path / "cache.sqlite")
    first = ingest(graph, root, cache=cache)
    assert first.files_done == 4
    assert first.cache_file_hits == 1  # the copy: same content, another path
    _same_as_fresh(tmp_path, graph, root, 0)

    # Drop a column.
    sqlite = root / "sqlite-sakila-schema.sql"
    text = sqlite.read_text()
    dropped = re.sub(r"\n\s*rental_rate DECIMAL\(4,2\) DEFAULT 4\.99 NOT NULL,", "", text)
    assert dropped != text
    sqlite.write_text(dropped)
    rate = "column:shop.main.film.rental_rate"
    before = [n["files"] for n in snapshot(graph) if n.get("node") == rate]
    ingest(graph, root, cache=cache)
    after = [n["files"] for n in snapshot(graph) if n.get("node") == rate]
    assert [str(sqlite) in files for files in before] == [True]
    assert all(str(sqlite) not in files for files in after)  # MySQL's film still has one
    _same_as_fresh(tmp_path, graph, root, 1)

    # Add a table.
    mysql = root / "mysql-sakila-schema.sql"
    mysql.write_text(
        mysql.read_text() + "\nCREATE TABLE review (review_id INT PRIMARY KEY,"
        " film_id SMALLINT UNSIGNED REFERENCES film (film_id));\n"
    )
    ingest(graph, root, cache=cache)
    dump = snapshot(graph)
    assert any(e.get("edge", "").startswith("relation:sakila.main.review|REFERENCES") for e in dump)
    _same_as_fresh(tmp_path, graph, root, 2)

    # Rename a file: re-keyed without parsing (a cache hit), nothing lost in between.
    postgres = root / "postgres-sakila-schema.sql"
    postgres.rename(root / "pg.sql")
    renamed = ingest(graph, root, cache=cache)
    assert renamed.renamed == 1
    assert renamed.cache_file_hits == 1
    assert renamed.parsed_statements == 0
    _same_as_fresh(tmp_path, graph, root, 3)

    # Delete a file: what only it defined disappears, what others share survives.
    (root / "copy-of-mysql.sql").unlink()
    ingest(graph, root, cache=cache)
    dump = snapshot(graph)
    film = next(n for n in dump if n.get("node") == "relation:sakila.main.film")
    assert film["files"] == [str(mysql)]
    _same_as_fresh(tmp_path, graph, root, 4)
    sqlite.unlink()
    ingest(graph, root, cache=cache)
    dump = snapshot(graph)
    assert not any(n.get("node", "").startswith("relation:shop.main.") for n in dump)
    _same_as_fresh(tmp_path, graph, root, 5)
    cache.close()


def test_a_second_run_without_changes_writes_nothing(tmp_path: Path) -> None:
    root = copy_sql(SAKILA, tmp_path / "sakila")
    graph = tmp_path / "g.sqlite"
    ingest(graph, root)
    again = ingest(graph, root)
    assert again.unchanged == 9
    assert again.files_done == 0
    assert again.write_calls == 0


def test_the_embedded_store_takes_each_group_whole_with_its_ledger_rows(
    tmp_path: Path,
) -> None:
    """By default every group is one ``write_files`` call (no row batches), and its
    ledger rows are written in the group's own transaction: no pending mark."""
    from headrace.graph.ingest import PENDING_KEY

    root = copy_sql(SAKILA, tmp_path / "sakila")
    seen: list[tuple[int, str | None]] = []

    class Watching(SqliteGraphStore):
        def write_files(self, files: Any) -> None:
            pending = self.conn.execute(
                "SELECT value FROM meta WHERE key = ?", (PENDING_KEY,)
            ).fetchone()
            seen.append((len(files), None if pending is None else str(pending[0])))
            super().write_files(files)

        def write_nodes(self, rows: Sequence[NodeRow]) -> None:
            raise AssertionError("row writes where whole-file writes apply")

    stats = ingest(tmp_path / "g.sqlite", root, Watching, group_rows=1_500)
    assert stats.files_done == 9
    assert stats.groups == len(seen) > 1
    assert stats.write_calls == len(seen)
    assert sum(n for n, _ in seen) == 9
    assert {p for _, p in seen} <= {None, "[]"}  # never marked pending
    _same_as_fresh(tmp_path, tmp_path / "g.sqlite", root, 0)


class _KeyRecorder(FaultyGraphStore):
    """Records, per file, the keys its rows carried and the keys ``finish_file`` got."""

    def __init__(self, store: SqliteGraphStore) -> None:
        super().__init__(store)
        self.written: dict[str, tuple[list[str], list[str]]] = {}
        self.finished: dict[str, tuple[list[str], list[str]]] = {}

    def write_nodes(self, rows: Sequence[NodeRow]) -> None:
        for r in rows:
            self.written.setdefault(r.file, ([], []))[0].append(r.key)
        super().write_nodes(rows)

    def write_edges(self, rows: Sequence[EdgeRow]) -> None:
        for r in rows:
            self.written.setdefault(r.file, ([], []))[1].append(r.key)
        super().write_edges(rows)

    def finish_file(
        self, path: str, gen: str | None, node_keys: Sequence[str], edge_keys: Sequence[str]
    ) -> None:
        self.finished[path] = (list(node_keys), [edge_keys[i] for i in range(len(edge_keys))])
        super().finish_file(path, gen, node_keys, edge_keys)


def test_finish_file_gets_each_files_node_and_edge_keys(tmp_path: Path) -> None:
    """The ingest hands ``finish_file`` key views, not lists (the embedded store never
    reads them); a store that does (Neo4j) gets exactly the keys the rows carried."""
    root = copy_sql(SAKILA, tmp_path / "sakila", ["mysql-sakila-schema.sql"])
    recorders: list[_KeyRecorder] = []

    def factory(conn: Any) -> _KeyRecorder:
        recorders.append(_KeyRecorder(SqliteGraphStore(conn)))
        return recorders[-1]

    ingest(tmp_path / "g.sqlite", root, factory)
    (store,) = recorders
    assert store.finished == store.written
    (nodes, edges) = next(iter(store.finished.values()))
    assert "relation:sakila.main.film" in nodes
    assert len(edges) > 100


# -- poison and crash -----------------------------------------------------------------


@pytest.mark.parametrize("whole", [False, True], ids=["rows", "whole-files"])
def test_a_poison_row_in_a_batch_of_100_is_isolated_and_the_rest_written(
    tmp_path: Path, whole: bool
) -> None:
    """With whole-file writes (``FileWrites``) the group's one call is refused, and
    its rows then go in batches, which isolate the poisoned one."""
    root = copy_sql(SAKILA, tmp_path / "sakila", ["sqlite-sakila-schema.sql"])
    target = "relation:sakila.main.film"

    def poisoned(row: object) -> bool:
        return isinstance(row, NodeRow) and row.key == target

    graph = tmp_path / "g.sqlite"
    stats = ingest(
        graph,
        root,
        lambda conn: FaultyGraphStore(SqliteGraphStore(conn), poison=poisoned, whole_files=whole),
        batch_size=100,
    )
    assert stats.rows_failed == 1
    assert stats.splits in (6, 7)  # one batch of 100, bisected down to the row
    with GraphIndex(graph) as index:
        (letter,) = index.failed()
    assert letter.stage == "graph-write"
    assert target in letter.message
    fresh = _fresh(tmp_path, root, 0)
    expected = [
        r for r in fresh if r.get("node") != target and target not in (r.get("src"), r.get("dst"))
    ]
    assert snapshot(graph) == expected
    assert len(fresh) - len(expected) > 20  # film, its columns' edges, FKs to and from it


@pytest.mark.parametrize("whole", [False, True], ids=["rows", "whole-files"])
def test_transient_store_failures_are_retried(tmp_path: Path, whole: bool) -> None:
    from headrace.graph.writer import RetryPolicy

    root = copy_sql(SAKILA, tmp_path / "sakila", ["sqlite-sakila-schema.sql"])
    graph = tmp_path / "g.sqlite"
    stats = ingest(
        graph,
        root,
        lambda conn: FaultyGraphStore(SqliteGraphStore(conn), transient=2, whole_files=whole),
        retry=RetryPolicy(attempts=4, initial_wait_s=0.001, max_wait_s=0.002, jitter_s=0.0),
    )
    assert stats.retries == 2
    assert stats.dead_letters == 0
    _same_as_fresh(tmp_path, graph, root, 0)
