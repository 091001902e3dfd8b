"""The embedding cache's pruner on hand-made rows: what it may evict, in which order.

Rules (``sinks/sqlite_gc.py``): entries whose text no chunk and no staged row uses go
first, oldest first; other models' vectors of current texts only while still over the
bound, never the bound model's or a switch target's; a pass evicts to 90% of the bound
in steps of ``step_rows`` entries; the next pass waits until the cache has grown 10%
past what the last one left. Migration v7's triggers keep the sizes exact.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from headrace.ledger.db import connect
from headrace.ledger.migrations import migrate
from headrace.sinks import sqlite_gc
from headrace.sinks.sqlite_gc import CachePruner, cache_size

MODEL = "m-bound"
OTHER = "m-other"
VEC = 1000  # bytes per test vector


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[apsw.Connection]:
    c = connect(tmp_path / "index.sqlite")
    c.execute("INSERT INTO meta VALUES ('model', ?)", (MODEL,))
    c.execute(
        "INSERT INTO files(id, path, root, size, mtime_ns, inode, state, signature, indexed_at)"
        " VALUES (1, '/r/a.md', '/r', 1, 1, 1, 'indexed', 's', 0)"
    )
    yield c
    c.close()


def _cache(c: apsw.Connection, text_hash: str, at: float, model: str = MODEL) -> None:
    c.execute("INSERT INTO embed_cache VALUES (?, ?, ?, ?)", (model, text_hash, b"\0" * VEC, at))


def _chunk(c: apsw.Connection, text_hash: str) -> None:
    n = int(c.execute("SELECT count(*) FROM chunks").fetchone()[0])
    c.execute(
        "INSERT INTO chunks(id, file_id, ordinal, text, text_hash, token_count, line_start,"
        " line_end, byte_start, byte_end) VALUES (?, 1, ?, 't', ?, 1, 1, 1, 0, 1)",
        (f"c{n}", n, text_hash),
    )


def _stage(c: apsw.Connection, path: str, text_hash: str) -> None:
    c.execute(
        "INSERT INTO pending VALUES (?, 0, 'p', 0, 't', ?, 1, 1, 1, 0, 1, NULL, '{}')",
        (path, text_hash),
    )


def _left(c: apsw.Connection) -> set[tuple[str, str]]:
    return {(m, h) for m, h in c.execute("SELECT model, text_hash FROM embed_cache")}


def _run(c: apsw.Connection, max_bytes: int | None, **start: bool) -> sqlite_gc.PruneReport:
    pruner = CachePruner(c, max_bytes)
    pruner.start(**start)
    return pruner.run()


def test_migration_v7_counts_an_existing_cache_and_triggers_keep_it_exact(
    tmp_path: Path,
) -> None:
    raw = apsw.Connection(str(tmp_path / "old.sqlite"))
    migrate(raw, target=6)
    raw.execute(
        "INSERT INTO embed_cache VALUES ('a', 'h1', zeroblob(10), 1), ('a', 'h2', zeroblob(30), 2),"
        " ('b', 'h1', zeroblob(7), 3)"
    )
    migrate(raw)
    assert cache_size(raw) == sqlite_gc.CacheSize(3, 47)
    raw.execute("INSERT OR IGNORE INTO embed_cache VALUES ('a', 'h1', zeroblob(99), 4)")
    raw.execute("INSERT INTO embed_cache VALUES ('c', 'h9', zeroblob(5), 5)")
    raw.execute("DELETE FROM embed_cache WHERE model = 'a' AND text_hash = 'h2'")
    per_model = dict(raw.execute("SELECT model, bytes FROM embed_cache_size"))
    assert per_model == {"a": 10, "b": 7, "c": 5}
    assert cache_size(raw) == sqlite_gc.CacheSize(3, 22)
    raw.close()


def test_unused_entries_go_oldest_first_and_used_ones_never(conn: apsw.Connection) -> None:
    _cache(conn, "used-oldest", 0.0)
    _chunk(conn, "used-oldest")
    for n, name in enumerate(["old", "middle", "new"], 1):
        _cache(conn, name, float(n))
    # 4,000 bytes, bound 2,300: down to 2,070, so the two oldest unused ones go.
    report = _run(conn, 2300)
    assert _left(conn) == {(MODEL, "used-oldest"), (MODEL, "new")}
    assert (report.entries, report.bytes, report.done) == (2, 2 * VEC, True)
    assert cache_size(conn).bytes == 2 * VEC


def test_a_full_pass_keeps_exactly_what_chunks_and_staged_rows_use(conn: apsw.Connection) -> None:
    for n, name in enumerate(["chunk", "staged", "staged-elsewhere", "orphan", "orphan2"]):
        _cache(conn, name, float(n))
    _chunk(conn, "chunk")
    _stage(conn, "/r/b.md", "staged")  # an unfinished file: a crash replay needs it
    _stage(conn, "/r/c.md", "staged-elsewhere")
    report = _run(conn, None, full=True)
    assert _left(conn) == {(MODEL, "chunk"), (MODEL, "staged"), (MODEL, "staged-elsewhere")}
    assert report.entries == 2
    conn.execute("DELETE FROM pending WHERE path = '/r/b.md'")  # the file was dropped
    _run(conn, None, full=True)
    assert _left(conn) == {(MODEL, "chunk"), (MODEL, "staged-elsewhere")}


def test_other_models_go_after_unused_ones_and_only_over_the_bound(
    conn: apsw.Connection,
) -> None:
    _chunk(conn, "t1")
    _chunk(conn, "t2")
    _cache(conn, "t1", 1.0)
    _cache(conn, "t2", 2.0)
    _cache(conn, "t1", 3.0, OTHER)  # what a switch back to OTHER would reuse
    _cache(conn, "t2", 4.0, OTHER)
    _cache(conn, "gone", 5.0)  # the newest, but unused: it goes before OTHER's
    # 5,000 bytes, bound 4,000 -> 3,600: the unused one, then OTHER's oldest.
    _run(conn, 4000)
    assert _left(conn) == {(MODEL, "t1"), (MODEL, "t2"), (OTHER, "t2")}
    # A bound the bound model's vectors alone exceed: every OTHER vector goes, no more.
    _run(conn, 1000)
    assert _left(conn) == {(MODEL, "t1"), (MODEL, "t2")}


def test_a_full_pass_keeps_other_models_vectors_unless_asked(conn: apsw.Connection) -> None:
    _chunk(conn, "t1")
    _cache(conn, "t1", 1.0)
    _cache(conn, "t1", 2.0, OTHER)
    _cache(conn, "unused", 3.0, OTHER)
    _run(conn, None, full=True)
    assert _left(conn) == {(MODEL, "t1"), (OTHER, "t1")}
    _run(conn, None, full=True, other_models=True)
    assert _left(conn) == {(MODEL, "t1")}


def test_the_target_of_a_switch_in_progress_is_kept(conn: apsw.Connection) -> None:
    _chunk(conn, "t1")
    _cache(conn, "t1", 1.0)
    _cache(conn, "t1", 2.0, OTHER)
    conn.execute(
        "INSERT INTO meta VALUES ('model_switch', ?)", (json.dumps({"to": OTHER, "after": 1}),)
    )
    _run(conn, 0)
    _run(conn, None, full=True, other_models=True)
    assert _left(conn) == {(MODEL, "t1"), (OTHER, "t1")}


def test_steps_are_bounded_and_a_pass_spans_many(conn: apsw.Connection) -> None:
    for n in range(20):
        _cache(conn, f"h{n}", float(n))
    pruner = CachePruner(conn, None, step_rows=3)
    pruner.start(full=True)
    walked = []
    while True:
        before = pruner.report.walked
        more = pruner.step()
        walked.append(pruner.report.walked - before)
        if not more:
            break
    assert max(walked) <= 3
    assert len(walked) >= 7
    assert pruner.report.entries == 20
    assert _left(conn) == set()


def test_a_pass_that_frees_nothing_waits_for_the_cache_to_grow(conn: apsw.Connection) -> None:
    for n in range(10):
        _chunk(conn, f"h{n}")
        _cache(conn, f"h{n}", float(n))
    pruner = CachePruner(conn, 5 * VEC)  # every vector is in use: over the bound anyway
    assert pruner.due()
    pruner.start()
    assert pruner.run().entries == 0
    assert not pruner.due()  # the floor it left is 10,000 bytes
    _cache(conn, "orphan", 20.0)
    assert not pruner.due()  # 11,000 is not more than 10% over 10,000
    _cache(conn, "orphan2", 21.0)
    assert pruner.due()
    pruner.start()
    assert pruner.run().entries == 2


def test_migration_v8_rebuilds_the_cache_as_a_rowid_table_keeping_rows_and_sizes(
    tmp_path: Path,
) -> None:
    raw = apsw.Connection(str(tmp_path / "v7.sqlite"))
    migrate(raw, target=7)
    raw.execute(
        "INSERT INTO embed_cache VALUES ('a', 'h1', zeroblob(1536), 1), ('b', 'h1', x'01', 2)"
    )
    rows = sorted(raw.execute("SELECT model, text_hash, vector, created_at FROM embed_cache"))
    migrate(raw)
    sql = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'embed_cache'").fetchone()[0]
    assert "WITHOUT ROWID" not in sql.upper()
    assert (
        sorted(raw.execute("SELECT model, text_hash, vector, created_at FROM embed_cache")) == rows
    )
    assert cache_size(raw) == sqlite_gc.CacheSize(2, 1537)
    raw.execute("INSERT OR IGNORE INTO embed_cache VALUES ('a', 'h1', x'02', 3)")  # the key holds
    raw.execute("INSERT INTO embed_cache VALUES ('a', 'h2', x'0203', 4)")
    assert cache_size(raw) == sqlite_gc.CacheSize(3, 1539)
    raw.close()
