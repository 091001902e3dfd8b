"""Parsing in worker processes (graph/parse.py) gives the graph, counts, dead letters
and parse-cache entries of parsing in the ingest's own process."""

from __future__ import annotations

import itertools
import multiprocessing
import os
import sys
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import apsw
import pytest
import zstandard
from tests.integration.sql_graph_support import CHINOOK, SAKILA, contributions, copy_sql, snapshot

from headrace.graph import ingest as graph_ingest
from headrace.graph import parse
from headrace.graph.ingest import GraphIndex, GraphRunStats
from headrace.ledger import checkpoints
from headrace.ledger.db import AUTOCHECKPOINT_PAGES
from headrace.parsers.cache import ParseCache
from headrace.records import FileRef

COUNTS = ("files_done", "statements", "data_statements", "failed_statements", "dead_letters")


def _corpus(tmp_path: Path) -> Path:
    root = tmp_path / "all"
    copy_sql(SAKILA, root / "sakila")
    copy_sql(CHINOOK, root / "chinook")
    bad = root / "sakila" / "broken.sql"
    bad.write_text("CREATE TABLE ok (a INT);\n\nCREATE TABLE bad (a INT NOT NULL NOT), (;\n")
    return root


def _run(graph: Path, root: Path, cache: Path, workers: int) -> tuple[GraphRunStats, list[str]]:
    with (
        ParseCache(cache) as parse_cache,
        GraphIndex(graph, cache=parse_cache, workers=workers) as index,
    ):
        stats = index.ingest([str(root)])
        letters = [f"{d.path}:{d.line}:{d.stage}" for d in index.failed()]
    return stats, letters


def test_a_pool_of_parse_workers_builds_the_same_graph(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_ingest, "POOL_MIN_FILES", 1)
    root = _corpus(tmp_path)
    serial, s_letters = _run(tmp_path / "serial.sqlite", root, tmp_path / "c1.sqlite", 0)
    pooled, p_letters = _run(tmp_path / "pooled.sqlite", root, tmp_path / "c2.sqlite", 2)
    assert pooled.files_done == 13
    assert [getattr(pooled, k) for k in COUNTS] == [getattr(serial, k) for k in COUNTS]
    assert pooled.failed_statements == 1
    assert p_letters == s_letters
    assert any(x.endswith("broken.sql:3:parse") for x in p_letters)  # file and line
    assert snapshot(tmp_path / "pooled.sqlite") == snapshot(tmp_path / "serial.sqlite")
    assert contributions(tmp_path / "pooled.sqlite") == contributions(tmp_path / "serial.sqlite")
    # What the workers would have cached was written by the ingest's process: the
    # same entries as a serial run, with their lookups counted (two workers can both
    # miss a statement new to the run: at least the serial run's misses).
    with ParseCache(tmp_path / "c1.sqlite") as c1, ParseCache(tmp_path / "c2.sqlite") as c2:
        one, two = c1.stats(), c2.stats()
    assert two["by_parser"] == one["by_parser"]
    assert two["misses"] >= one["misses"] > 0
    # A re-ingest through the workers after deleting the graph: every file is a
    # whole-file hit, and the graph is the same again.
    (tmp_path / "pooled.sqlite").unlink()
    warm, _ = _run(tmp_path / "pooled.sqlite", root, tmp_path / "c2.sqlite", 2)
    assert warm.cache_file_hits == 13
    assert warm.parsed_statements == 0
    assert snapshot(tmp_path / "pooled.sqlite") == snapshot(tmp_path / "serial.sqlite")
    with ParseCache(tmp_path / "c2.sqlite") as c2:
        assert c2.stats()["hits"] >= 13


def test_the_wal_is_checkpointed_by_a_thread_while_workers_parse_and_rows_commit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small groups and a small checkpoint size: the background thread checkpoints
    between the group commits, after the pool has forked, and the graph is the one
    a serial run without it builds."""
    monkeypatch.setattr(graph_ingest, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(checkpoints, "CHECKPOINT_PAGES", 8)
    root = _corpus(tmp_path)
    graph = tmp_path / "pooled.sqlite"
    with (
        ParseCache(tmp_path / "c.sqlite") as parse_cache,
        GraphIndex(graph, cache=parse_cache, workers=2, group_rows=200) as index,
    ):
        stats = index.ingest([str(root)])
        assert index.conn.execute("PRAGMA wal_autocheckpoint").fetchone() == (
            AUTOCHECKPOINT_PAGES,
        )  # (the writer's own again)
    assert stats.groups > 5
    assert stats.checkpoints > 0
    monkeypatch.setattr(checkpoints, "CHECKPOINT_PAGES", 10**9)
    serial, _ = _run(tmp_path / "serial.sqlite", root, tmp_path / "c1.sqlite", 0)
    assert serial.checkpoints == 0
    assert snapshot(graph) == snapshot(tmp_path / "serial.sqlite")
    assert contributions(graph) == contributions(tmp_path / "serial.sqlite")


def test_a_parse_pool_has_forked_its_workers_once_it_is_made(tmp_path: Path) -> None:
    before = set(multiprocessing.active_children())
    ctx = parse.ParseContext(None, None, "t")
    with parse.ParsePool(ctx, 2) as pool:
        children = set(multiprocessing.active_children()) - before
        assert len(children) == pool.workers == 2


def _die_on_film(ctx: parse.ParseContext, ref: FileRef) -> Any:
    if "sqlite-sakila" in ref.path:
        os._exit(3)  # a worker killed mid-file (OOM killer, SIGKILL)
    return _real_parse_file(ctx, ref)


_real_parse_file = parse.parse_file


def test_a_worker_that_dies_fails_the_run_instead_of_hanging_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(graph_ingest, "POOL_MIN_FILES", 1)
    monkeypatch.setattr(parse, "parse_file", _die_on_film)  # inherited by forked workers
    made = parse.ParsePool.__init__

    def workers_only(self: parse.ParsePool, *args: Any, **kw: Any) -> None:
        made(self, *args, **kw)
        self.help = None  # every file goes to a worker (this process must not die)

    monkeypatch.setattr(parse.ParsePool, "__init__", workers_only)
    root = _corpus(tmp_path)
    with pytest.raises(BrokenProcessPool):
        _run(tmp_path / "g.sqlite", root, tmp_path / "c.sqlite", 2)
    assert multiprocessing.active_children() == []
    # The next run (workers healthy again) converges on the serial graph.
    monkeypatch.setattr(parse, "parse_file", _real_parse_file)
    monkeypatch.setattr(parse.ParsePool, "__init__", made)
    _run(tmp_path / "g.sqlite", root, tmp_path / "c.sqlite", 2)
    _run(tmp_path / "serial.sqlite", root, tmp_path / "c1.sqlite", 0)
    assert snapshot(tmp_path / "g.sqlite") == snapshot(tmp_path / "serial.sqlite")


@pytest.mark.parametrize(
    "damage",
    [
        b"{not an entry",
        b'{"statements": 9}\nnot zstd data',
        b'{"statements": 9}\n' + zstandard.ZstdCompressor().compress(b'{"not": "rows"}'),
    ],
)
def test_a_damaged_fragment_entry_is_a_cache_miss(tmp_path: Path, damage: bytes) -> None:
    root = copy_sql(SAKILA, tmp_path / "sakila", ["sqlite-sakila-schema.sql"])
    _run(tmp_path / "g.sqlite", root, tmp_path / "c.sqlite", 0)
    conn = apsw.Connection(str(tmp_path / "c.sqlite"))
    with conn:
        conn.execute("UPDATE entries SET value = ? WHERE parser LIKE 'sql-graph@%'", (damage,))
        damaged = conn.changes()
    conn.close()
    assert damaged == 1
    (tmp_path / "g.sqlite").unlink()
    stats, _ = _run(tmp_path / "g.sqlite", root, tmp_path / "c.sqlite", 0)
    assert (stats.files_done, stats.cache_file_hits) == (1, 0)
    _run(tmp_path / "fresh.sqlite", root, tmp_path / "c2.sqlite", 0)
    assert snapshot(tmp_path / "g.sqlite") == snapshot(tmp_path / "fresh.sqlite")


def test_parse_workers_collect_young_objects_less_often(tmp_path: Path) -> None:
    """Workers raise the collector's first threshold (its passes over the statement
    memo were ~5% of a cold parse); the ingest process keeps its own."""
    import gc

    before = gc.get_threshold()
    ctx = parse.ParseContext(None, None, "tag", None)
    with parse.ParsePool(ctx, 1) as pool:
        threshold = pool._pool.submit(gc.get_threshold).result()
    assert threshold[0] == parse.WORKER_GC_THRESHOLD > before[0]
    assert gc.get_threshold() == before


def test_the_ingest_process_stops_collecting_while_workers_parse_and_they_do_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With workers, the ingest process's cyclic GC is off from the first result (it
    makes only acyclic rows) and back on afterwards; the workers, forked at the
    pool's first task, keep theirs (sqlglot's trees are cyclic)."""
    import gc

    from headrace.sinks.graph_sqlite import SqliteGraphStore

    monkeypatch.setattr(graph_ingest, "POOL_MIN_FILES", 1)
    seen: list[tuple[bool, bool]] = []  # (this process, the worker), per group's write

    class Probe(SqliteGraphStore):
        pool: parse.ParsePool | None = None

        def write_files(self, files: Any) -> None:
            worker = Probe.pool._pool.submit(gc.isenabled).result() if Probe.pool else True
            seen.append((gc.isenabled(), worker))
            super().write_files(files)

    made = parse.ParsePool.__init__

    def remember(self: parse.ParsePool, *args: Any, **kw: Any) -> None:
        made(self, *args, **kw)
        Probe.pool = self

    monkeypatch.setattr(parse.ParsePool, "__init__", remember)
    root = copy_sql(SAKILA, tmp_path / "sakila")
    assert gc.isenabled()
    with GraphIndex(tmp_path / "g.sqlite", store_factory=Probe, workers=1) as index:
        assert index.ingest([str(root)]).files_done == 9
    assert seen
    assert set(seen) == {(False, True)}
    assert gc.isenabled()


def _ref(root: Path, path: Path) -> FileRef:
    st = path.stat()
    return FileRef(str(root), path.relative_to(root).as_posix(), str(path), st.st_size, 0, 0)


def _slow_parse(ctx: parse.ParseContext, ref: FileRef) -> parse.Parsed | parse.Unreadable:
    import time

    time.sleep(0.05)
    return _PARSE_FILE(ctx, ref)


_PARSE_FILE = parse.parse_file


def _map_counting_here(
    pool: parse.ParsePool, refs: list[FileRef]
) -> tuple[list[parse.Parsed | parse.Unreadable], set[int]]:
    """``pool.map(refs)``, and which of its results the ingest process parsed itself."""
    own = pool.help
    assert own is not None
    here: set[int] = set()

    def counted(ref: FileRef) -> parse.Parsed | parse.Unreadable:
        result = own(ref)
        here.add(id(result))
        return result

    pool.help = counted
    return list(pool.map(refs)), here


def test_the_ingest_process_parses_files_itself_while_workers_are_busy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While no chunk in flight is ready, ``map`` parses a file in this process, from
    the other end of the list than the workers' chunks: every file comes back exactly
    once, some parsed here, those from the back of the list, each block it claimed
    in list order (files written in falling path order outrank each other)."""
    root = copy_sql(SAKILA, tmp_path / "sakila")
    copy_sql(CHINOOK, root / "chinook")
    paths = sorted(root.rglob("*.sql"))
    refs = [_ref(root, p) for _ in range(4) for p in paths]  # 48 files, 48 objects
    monkeypatch.setattr(parse, "parse_file", _slow_parse)  # the forked worker's too
    with ParseCache(tmp_path / "c.sqlite") as cache:
        ctx = parse.ParseContext(None, None, "tag", cache)
        with parse.ParsePool(ctx, 1, chunk=1) as pool:  # 8 in flight
            results, here = _map_counting_here(pool, refs)
    assert sorted(r.ref.path for r in results) == sorted(r.path for r in refs)
    assert all(isinstance(r, parse.Parsed) for r in results)
    assert 0 < len(here) < len(refs)
    position = {id(ref): k for k, ref in enumerate(refs)}  # (parsed here: the same objects)
    order = [position[id(r.ref)] for r in results if id(r) in here]
    runs: list[list[int]] = []  # blocks claimed from the back, each parsed in list order
    for k in order:
        if runs and k == runs[-1][-1] + 1:
            runs[-1].append(k)
        else:
            runs.append([k])
    assert runs[0][0] >= len(refs) // 2
    assert len(runs[0]) > 1  # a block, not one file at a time
    assert all(later[-1] < earlier[0] for earlier, later in itertools.pairwise(runs))


def test_the_ingest_process_claims_blocks_from_the_back_and_workers_take_the_rest() -> None:
    """``_claim``: up to ``HERE_BLOCK`` refs from the back (a quarter of what is left
    at most, at least one), in list order; ``_next_chunk``: the front first, then the
    end of what was claimed, in list order."""
    from collections import deque

    refs: Any = list(range(400))
    todo, mine = deque(refs), deque()
    parse._claim(todo, mine, [], {})
    assert list(mine) == refs[400 - parse.HERE_BLOCK :]
    assert list(todo) == refs[: 400 - parse.HERE_BLOCK]
    todo, mine = deque(refs[:10]), deque()
    parse._claim(todo, mine, [], {})
    assert (list(mine), list(todo)) == ([8, 9], refs[:8])
    assert parse._next_chunk(todo, mine, 4) == [0, 1, 2, 3]
    todo.clear()
    assert parse._next_chunk(todo, mine, 4) == [8, 9]
    assert parse._next_chunk(todo, mine, 4) == []


def test_a_file_parsed_in_the_ingest_process_leaves_no_cyclic_garbage(tmp_path: Path) -> None:
    """The ingest process's collector is off while workers run; sqlglot's trees are
    cyclic, so a file parsed here is followed by a young collection."""
    import gc

    root = copy_sql(SAKILA, tmp_path / "sakila")
    ref = _ref(root, root / "postgres-sakila-schema.sql")
    with ParseCache(tmp_path / "c.sqlite") as cache:
        ctx = parse.ParseContext(None, None, "tag", cache)
        with parse.ParsePool(ctx, 1) as pool:
            assert pool.help is not None
            gc.collect()
            gc.disable()
            try:
                result = pool.help(ref)
                left = gc.collect()
            finally:
                gc.enable()
    assert isinstance(result, parse.Parsed)
    assert result.counts[parse.PARSED_COUNT] > 0  # sqlglot ran
    assert left < 50  # the trees went with the young collection (thousands without)


@pytest.mark.skipif(sys.platform != "linux", reason="F_GETPIPE_SZ is Linux's")
def test_the_result_pipe_holds_a_chunk_of_results() -> None:
    import fcntl

    ctx = parse.ParseContext(None, None, "tag", None)
    with parse.ParsePool(ctx, 1) as pool:
        queue: Any = pool._pool._result_queue
        size = fcntl.fcntl(queue._reader.fileno(), fcntl.F_GETPIPE_SZ)
    assert size >= parse.RESULT_PIPE_BYTES


def test_cache_entries_reach_the_file_while_the_pool_runs(tmp_path: Path) -> None:
    """The workers read the cache file: what the ingest process buffered (the workers'
    entries and its own) is written every ``limit`` chunks, not only at the end, so a
    statement one process parsed is not parsed again by the other."""
    root = copy_sql(SAKILA, tmp_path / "sakila")
    refs = [_ref(root, p) for p in sorted(root.rglob("*.sql"))] * 2  # 18 files
    with ParseCache(tmp_path / "c.sqlite") as cache:
        ctx = parse.ParseContext(None, None, "tag", cache)
        with parse.ParsePool(ctx, 1, chunk=1) as pool:
            pool.help = None  # only workers: the first 8 results are their 8 chunks
            results = pool.map(refs)
            for _ in range(8):
                next(results)
            with ParseCache(tmp_path / "c.sqlite") as reader:  # another connection
                seen = reader.stats()["entries"]
            rest = list(results)
    assert len(rest) == len(refs) - 8
    assert seen > 100  # the statements the worker parsed for those 8 files


_TEST_PID = os.getpid()


def _slow_in_workers(ctx: parse.ParseContext, ref: FileRef) -> parse.Parsed | parse.Unreadable:
    import time

    if os.getpid() != _TEST_PID:
        time.sleep(0.2)
    return _PARSE_FILE(ctx, ref)


def test_the_ingest_process_takes_back_chunks_no_worker_has_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every file was sent to a worker at once; the ingest process, with nothing left to
    parse, takes back the queued chunks no worker has started and parses them itself."""
    root = copy_sql(SAKILA, tmp_path / "sakila")
    refs = [_ref(root, p) for p in sorted(root.rglob("*.sql"))] + [
        _ref(root, p) for p in sorted(root.rglob("*.sql"))[:3]
    ]  # 12 files: 3 chunks of 4, all in flight from the start
    monkeypatch.setattr(parse, "parse_file", _slow_in_workers)
    with ParseCache(tmp_path / "c.sqlite") as cache:
        ctx = parse.ParseContext(None, None, "tag", cache)
        with parse.ParsePool(ctx, 1, chunk=4) as pool:
            results, here = _map_counting_here(pool, refs)
    assert sorted(r.ref.path for r in results) == sorted(r.path for r in refs)
    assert len(here) >= 4  # at least the newest chunk, parsed here
    assert len(here) % 4 == 0  # whole chunks


def test_search_pages_from_the_workers_equal_a_serial_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The search mirror's pages are rendered in the parse workers and written a
    group at a time: the same pages as a serial run, none left half-written."""
    monkeypatch.setattr(graph_ingest, "POOL_MIN_FILES", 1)

    def not_here(_frag: Any) -> str:
        raise AssertionError("a page rendered by the writer")

    monkeypatch.setattr(graph_ingest, "render", not_here)  # (the writer's fallback)
    root = _corpus(tmp_path)
    mirrors = {}
    for name, workers in (("serial", 0), ("pooled", 2)):
        mirror = tmp_path / f"{name}.search"
        with (
            ParseCache(tmp_path / f"{name}.cache") as parse_cache,
            GraphIndex(
                tmp_path / f"{name}.sqlite",
                cache=parse_cache,
                workers=workers,
                group_rows=300,
                search_mirror=mirror,
            ) as index,
        ):
            index.ingest([str(root)])
        mirrors[name] = {p.name: p.read_text() for p in mirror.iterdir()}
        assert not list(tmp_path.glob(f"{name}.search.tmp-*"))
    assert len(mirrors["pooled"]) == 13
    assert mirrors["pooled"] == mirrors["serial"]
    assert sum("## table film" in text for text in mirrors["pooled"].values()) >= 3
