"""``GraphIndex``: keep a schema graph in sync with folders of SQL files.

The flow reuses the text pipeline's parts: ``FolderSource`` discovers ``*.sql``
files, ``make_plan`` compares them with the graph's own ledger (a headrace index
file holding the ledger tables and, for the embedded store, the graph tables), so
an unchanged file is not even opened. Then, per group of files:

    read + hash → parse (parse cache) → fragment → UNWIND node batches →
    UNWIND edge batches → finish_file (drop the old generation) → ledger

The ledger records a file only after the store acknowledged all of it. Renamed
files are re-ingested at their new path (a parse-cache hit) before the old path
is removed, so entities they share never disappear in between; deleted files lose
their contributions. A changed database/dialect setting or store changes every
file's signature and re-ingests it.

Crash safety: the embedded store's group is one transaction of the ledger's own
connection, and the group's ledger rows are written in it: a kill leaves all of a
group or none of it. For a store that commits batch by batch (Neo4j), before a
group's first write its paths are recorded in the ledger (``graph_pending``); a run
that finds that record left behind first drops those files' contributions and
ledger rows. Either way a kill at any instant converges on the next run to the
graph of a fresh ingest (``tests/integration/test_sql_graph_kill.py``).
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, overload

import apsw
from blake3 import blake3

from headrace.errors import RootUnavailableError, StoreError
from headrace.graph.build import BUILDER_VERSION
from headrace.graph.parse import (
    COUNTERS,
    FileParts,
    ParseContext,
    Parsed,
    ParsePool,
    Unreadable,
    default_workers,
    parse_file,
)
from headrace.graph.render import remove_page, render, write_pages
from headrace.graph.writer import BatchWriter, RetryPolicy, WriteFailure
from headrace.ledger.checkpoints import BackgroundCheckpoints
from headrace.ledger.db import connect, transaction
from headrace.ledger.ledger import DeadLetter, Ledger
from headrace.parsers.cache import ParseCache
from headrace.parsers.sql.dialect import resolve_dialect
from headrace.parsers.sql.script import PARSER_VERSION
from headrace.pipeline.plan import Plan, make_plan
from headrace.records import FileRef
from headrace.sinks.graph_base import EdgeRow, FileWrites, GraphStore, NodeRow
from headrace.sources.folder import FolderSource

SQL_GLOBS = ("*.sql", "*.ddl", "*.pgsql", "*.psql", "*.mysql", "*.tsql", "*.plsql")
MAX_FILE_BYTES = 256 << 20
PENDING_KEY = "graph_pending"  # ledger meta: paths of the group being written
POOL_MIN_FILES = 64  # fewer files to parse: no worker processes (their start costs)
# Rows per write group (one store transaction). Each commit rewrites the pages of the
# random-keyed tables the group touched. Store v4 (round 3): 10,000 instead of 5,000
# saved 2.42-3.02 -> 2.05-2.30 CPU s per 1,000 warm benchmark files. Store v5, with the
# ingest process parsing too (round 5, 13 alternating runs each): 5,000 instead of
# 10,000 cold median ~360 -> ~400 files/s, p50 ~85 -> ~55 ms; warm ~575 -> ~530 files/s.
GROUP_ROWS = 5_000
PARSE_WAIT_S = 0.005  # a longer wait for the parse workers: the ingest is parse-bound


def group_full(rows: int, group_rows: int, *, parse_bound: bool) -> bool:
    """Whether a write group of ``rows`` rows is written now: at ``group_rows``, or at
    half as many right after the writer waited for the parse workers. A parse-bound
    ingest (a cold cache) gains nothing from larger groups, while each file waits for
    its group to fill: groups of 10,000 rows doubled the cold benchmark's p50 (~130
    -> ~265 ms, store v4) where a writer-bound (warm) one saved 8-10% CPU."""
    return rows >= group_rows or (parse_bound and rows >= group_rows // 2)


@dataclass(slots=True)
class GraphRunStats:
    """What one graph sync did. ``latencies_s``: per file, from reading it to its
    ledger commit (the wait for the rest of its write group included);
    ``parse_latencies_s``: per file, read + hash + parse + fragment."""

    files_done: int = 0
    files_failed: int = 0
    renamed: int = 0
    touched: int = 0
    deleted: int = 0
    unchanged: int = 0
    skipped: int = 0
    statements: int = 0
    data_statements: int = 0
    parsed_statements: int = 0
    cached_statements: int = 0
    failed_statements: int = 0
    cache_file_hits: int = 0
    nodes_written: int = 0
    edges_written: int = 0
    write_calls: int = 0
    groups: int = 0  # write groups (one store transaction each)
    retries: int = 0
    splits: int = 0
    rows_failed: int = 0
    dead_letters: int = 0
    checkpoints: int = 0  # WAL checkpoints run by the background thread
    stopped: bool = False  # a stop was requested: the rest waits for the next run
    elapsed_s: float = 0.0
    latencies_s: list[float] = field(default_factory=list)
    parse_latencies_s: list[float] = field(default_factory=list)

    def snapshot(self) -> dict[str, Any]:
        lists = ("latencies_s", "parse_latencies_s")
        out = {k: getattr(self, k) for k in self.__slots__ if k not in lists}
        for prefix, values in (("", self.latencies_s), ("parse_", self.parse_latencies_s)):
            lat = sorted(values)
            if lat:
                out[f"{prefix}p50_ms"] = round(lat[len(lat) // 2] * 1000, 2)
                p95 = lat[min(len(lat) - 1, int(len(lat) * 0.95))]
                out[f"{prefix}p95_ms"] = round(p95 * 1000, 2)
        return out


@dataclass(slots=True)
class _Pending:
    ref: FileRef
    digest: str
    started: float
    parts: FileParts


class GraphIndex:
    """Syncs SQL files into ``store``; its ledger lives in the file at ``path``.

    ``database`` names the database of unqualified objects (default: the name of
    each root folder); ``dialect`` forces a SQL dialect (default: detect per file).
    ``store`` is passed ready-made (Neo4j), or built from the opened ledger
    connection by ``store_factory`` (default: the embedded ``SqliteGraphStore``,
    which shares the file; tests wrap it in a fault injector). With
    ``search_mirror``, each file's schema is also rendered as a Markdown page in
    that folder (``graph/render.py``) for the search index. ``workers``: processes
    that parse files while this one writes (``graph/parse.py``; default
    ``default_workers()``, used from ``POOL_MIN_FILES`` files to parse; 0: parse
    in this process).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        store: GraphStore | None = None,
        store_factory: Callable[[apsw.Connection], GraphStore] | None = None,
        cache: ParseCache | None = None,
        database: str | None = None,
        dialect: str | None = None,
        batch_size: int = 500,
        retry: RetryPolicy | None = None,
        group_rows: int = GROUP_ROWS,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        allow_root_deletion: bool = False,
        search_mirror: str | os.PathLike[str] | None = None,
        workers: int | None = None,
    ) -> None:
        self.path = Path(path)
        self.conn = connect(self.path)
        self.ledger = Ledger(self.conn)
        if store is None:
            from headrace.sinks.graph_sqlite import SqliteGraphStore

            store = (store_factory or SqliteGraphStore)(self.conn)
        self.store = store
        self.cache = cache
        self.database = database
        self.dialect = resolve_dialect(dialect)
        self.batch_size = batch_size
        self.retry = retry
        self.group_rows = group_rows
        self.include = list(include) or list(SQL_GLOBS)
        self.exclude = list(exclude)
        self.allow_root_deletion = allow_root_deletion
        self.search_mirror = Path(search_mirror) if search_mirror is not None else None
        self.workers = default_workers() if workers is None else workers
        self._signature_tag = blake3(self.signature().encode()).hexdigest(length=4)
        self._ctx = ParseContext(self.dialect, database, self._signature_tag, cache)
        self._ctx.pages = self.search_mirror is not None  # rendered where files are parsed
        # A store that takes whole files (FileWrites) gets its rows prepared where
        # they are parsed: the parse workers, not this process (the single writer).
        self._file_writes = store if isinstance(store, FileWrites) else None
        if self._file_writes is not None:
            self._ctx.prepare = self._file_writes.prepare_rows
        # The store's group is a transaction of this very connection (the embedded
        # store, wrapped or not): the ledger rows can join it (see ``_flush``).
        self._atomic = getattr(store, "conn", None) is self.conn
        self.writer = BatchWriter(batch_size, retry)
        self._pages_io: ThreadPoolExecutor | None = None  # while _process runs
        self._stop = False

    def request_stop(self) -> None:
        """Stop gracefully (safe from a signal handler): no new file is read; the
        group being written is finished and recorded (one transaction with the
        ledger's record of it), then ``ingest`` returns with ``stopped`` set. The
        files not reached, renames and deletions are what the next run's plan does."""
        self._stop = True

    # -- planning -----------------------------------------------------------------

    def _source(self, roots: Sequence[str]) -> FolderSource:
        return FolderSource(
            roots, include=self.include, exclude=self.exclude, max_file_bytes=MAX_FILE_BYTES
        )

    def signature(self, ref: FileRef | None = None) -> str:
        return (
            f"sql{PARSER_VERSION}+graph{BUILDER_VERSION}|db={self.database or '<folder>'}"
            f"|dialect={self.dialect if self.dialect is not None else 'auto'}|{self.store.identity}"
        )

    def plan(self, roots: Sequence[str]) -> Plan:
        """What ``ingest(roots)`` would do; writes nothing."""
        source = self._source(roots)
        stored = self.ledger.files_under(source.roots)
        return make_plan(
            source.discover(),
            stored,
            source.check_roots(),
            self.signature,
            allow_root_deletion=self.allow_root_deletion,
        )

    # -- syncing ------------------------------------------------------------------

    def ingest(self, roots: Sequence[str], stats: GraphRunStats | None = None) -> GraphRunStats:
        """Bring the graph in line with the SQL files under ``roots``."""
        stats = stats or GraphRunStats()
        started = time.perf_counter()
        self.writer = BatchWriter(self.batch_size, self.retry)
        with self._writer_lock(), _gc_frozen():
            self._recover()
            plan = self.plan([os.path.abspath(r) for r in roots])
            self._refuse_unsafe(plan)
            with transaction(self.conn):
                run_id = self.ledger.start_run()
            status = "failed"
            try:
                self._apply(plan, stats)
                status = "stopped" if stats.stopped else "ok"
            finally:
                self._collect_writer_stats(stats)
                stats.elapsed_s = time.perf_counter() - started
                if self.cache is not None:
                    self.cache.flush()
                with transaction(self.conn):
                    self.ledger.finish_run(run_id, status, stats.snapshot())
        return stats

    def _apply(self, plan: Plan, stats: GraphRunStats) -> None:
        stats.unchanged += plan.unchanged
        stats.skipped += len(plan.skipped)
        with transaction(self.conn):
            for ref in plan.touched:
                self.ledger.touch(ref)
        stats.touched += len(plan.touched)
        refs = plan.to_process + [ref for _old, ref in plan.renamed]
        self._process(refs, stats)
        if self._stop:
            stats.stopped = True
            return
        for old, _ref in plan.renamed:
            self._forget(old)
        stats.renamed += len(plan.renamed)
        for path in plan.deleted:
            self._forget(path)
        stats.deleted += len(plan.deleted)

    def _recover(self) -> None:
        """Finish what a crashed run left: files whose rows were being written.

        A store upserts a file's rows in place, so after a crash mid-group the
        file may hold a mix of its old and new rows. Each such file loses all its
        contributions and its ledger row, and the plan then ingests it afresh (or
        not at all, if it is gone meanwhile).
        """
        pending = json.loads(self.ledger.meta(PENDING_KEY) or "[]")
        for path in pending:
            self._forget(path)
        if pending:
            self._set_pending([])

    def _set_pending(self, paths: list[str]) -> None:
        with transaction(self.conn):
            self.ledger.set_meta(PENDING_KEY, json.dumps(paths))

    def _forget(self, path: str) -> None:
        self.store.finish_file(path, None, (), ())
        if self.search_mirror is not None:
            remove_page(self.search_mirror, path)
        with transaction(self.conn):
            self.ledger.forget(path)

    def _process(self, refs: Sequence[FileRef], stats: GraphRunStats) -> None:
        # A parser's whole-file entries are listed when there are at most 4 a file to
        # parse: cheaper to read than the lookups that miss, at that ratio (parse.py)
        self._ctx.list_at_most = 4 * len(refs)
        pool = None
        if self.workers > 0 and len(refs) >= POOL_MIN_FILES:
            pool = ParsePool(self._ctx, self.workers)
            results: Iterator[Parsed | Unreadable] = pool.map(refs, lambda: self._stop)
        else:
            results = (parse_file(self._ctx, ref) for ref in refs if not self._stop)
        collecting = gc.isenabled()
        # The WAL is checkpointed by a thread of its own while this process writes
        # (after the pool's fork: the workers exist once ParsePool returns).
        checkpoints = BackgroundCheckpoints(self.conn, self.path)
        checkpoints.start()
        # A group's search pages are written by a thread while the store takes the
        # group's rows (``_flush``); started after the fork too.
        self._pages_io = ThreadPoolExecutor(1) if self.search_mirror is not None else None
        try:
            self._write_all(results, stats, pooled=pool is not None)
        finally:
            if self._pages_io is not None:
                self._pages_io.shutdown()
                self._pages_io = None
            checkpoints.stop()
            stats.checkpoints += checkpoints.checkpoints
            if pool is not None:
                pool.close()
            if collecting:
                gc.enable()

    def _write_all(
        self, results: Iterator[Parsed | Unreadable], stats: GraphRunStats, *, pooled: bool
    ) -> None:
        group: list[_Pending] = []
        rows = 0
        clock = time.perf_counter
        try:
            while True:
                asked = clock()
                result = next(results, None)
                if result is None:
                    break
                parse_bound = pooled and clock() - asked >= PARSE_WAIT_S
                if pooled and gc.isenabled():
                    # The workers parse (sqlglot's trees are cyclic); this process
                    # only makes acyclic rows, tuples and lists, freed by their
                    # reference counts, and the collector's passes over a group's
                    # live rows cost 0.08-0.14 CPU s per 1,000 warm files
                    # (docs/design.md, round 3). Off only from the first result on:
                    # the pool forks its workers at its first task, and a fork
                    # inherits the switch (the workers keep collecting).
                    gc.disable()
                if self._stop:
                    break
                item = self._accept(result, stats)
                if item is None:
                    continue
                group.append(item)
                rows += sum(item.parts.shape)
                if group_full(rows, self.group_rows, parse_bound=parse_bound):
                    self._flush(group, stats)
                    group, rows = [], 0
        except BrokenProcessPool:
            # A SIGTERM to the whole process group stops the workers as well:
            # when a stop was asked for, finish what was parsed, as without them.
            if not self._stop:
                raise
        if group:
            self._flush(group, stats)

    def _accept(self, result: Parsed | Unreadable, stats: GraphRunStats) -> _Pending | None:
        """A parsed file's fragment and counts (a fresh one into the cache), or its
        failure recorded."""
        if isinstance(result, Unreadable):
            self._record_failure(result.ref, result)
            stats.files_failed += 1
            stats.dead_letters += 1
            return None
        gen = f"{result.digest}-{self._signature_tag}"
        parts = result.parts(gen)
        if not result.hit and self.cache is not None:
            self.cache.put(result.frag_parser, result.full, result.cache_value)
        for name, n in zip(COUNTERS, result.counts, strict=True):
            setattr(stats, name, getattr(stats, name) + n)
        stats.parse_latencies_s.append(result.parse_s)
        return _Pending(result.ref, result.digest, result.started, parts)

    def _flush(self, group: list[_Pending], stats: GraphRunStats) -> None:
        """Write a group's rows, finish each file, then record them in the ledger.

        A store whose group is one transaction of the ledger's own connection (the
        embedded store) records the files in that transaction: a crash leaves all or
        nothing, so no pending mark is needed, and a group costs one commit instead
        of three (cold benchmark: ~0.1 CPU s of commits per 1,000 files)."""
        if not self._atomic:
            self._set_pending([p.ref.path for p in group])  # durable before the first write
        failures: dict[str, list[DeadLetter]] = {}
        parts = [p.parts for p in group]
        pages = None
        if self._pages_io is not None and self.search_mirror is not None:
            page_list = [(p.path, _page(p)) for p in parts]
            pages = self._pages_io.submit(write_pages, self.search_mirror, page_list)
        with self.store.group():
            if not self._write_whole(parts):
                now = time.time()
                for fail in self._write_rows(parts):
                    row = fail.row
                    failures.setdefault(row.file, []).append(_write_letter(row, fail, now))
            letters = [self._finish(item, failures.get(item.ref.path, [])) for item in group]
            if pages is not None:
                pages.result()  # the pages are on disk before the ledger records them
            if self._atomic:
                self._record(group, letters)
        if not self._atomic:
            # Every file of the group is in the store: record them all, and clear
            # the pending mark, in one ledger transaction.
            with transaction(self.conn):
                self._record(group, letters)
                self.ledger.set_meta(PENDING_KEY, "[]")
        stats.groups += 1
        stats.nodes_written += sum(f.shape[0] for f in parts)
        stats.edges_written += sum(f.shape[1] for f in parts)
        done = time.perf_counter()
        for item, file_letters in zip(group, letters, strict=True):
            stats.files_done += 1
            stats.dead_letters += len(file_letters)
            stats.latencies_s.append(done - item.started)

    def _record(self, group: list[_Pending], letters: list[list[DeadLetter]]) -> None:
        """The ledger rows of a written group (inside the caller's transaction)."""
        signature = self.signature()
        for item, file_letters in zip(group, letters, strict=True):
            self.ledger.upsert(
                item.ref, content_hash=item.digest, state="indexed", signature=signature
            )
            self.ledger.replace_dead_letters(item.ref.path, file_letters)

    def _write_whole(self, parts: list[FileParts]) -> bool:
        """The group's files in one store call, where the store takes whole files
        and every file's rows were prepared (``FileWrites``). False: write rows."""
        if self._file_writes is None or not all(f.prep is not None for f in parts):
            return False
        return self.writer.write_whole(self._file_writes.write_files, parts)

    def _write_rows(self, parts: list[FileParts]) -> list[WriteFailure[Any]]:
        """The group's node rows, then its edge rows, in batches; the rows refused."""
        # Node = NodeRow's tail, Edge = EdgeRow's. tuple.__new__: the rows without a
        # Python-level __new__ call each (hundreds of thousands per large sync); from
        # a list display, not a tuple one (which CPython builds as a list, then
        # copies): 0.057 -> 0.044 s for the benchmark's 114,690 node rows.
        new_tuple = tuple.__new__
        node_rows = [new_tuple(NodeRow, [f.path, f.gen, *n]) for f in parts for n in f.nodes]
        edge_rows = [new_tuple(EdgeRow, [f.path, f.gen, *e]) for f in parts for e in f.edges]
        return [
            *self.writer.write(self.store.write_nodes, node_rows),
            *self.writer.write(self.store.write_edges, edge_rows),
        ]

    def _finish(self, item: _Pending, write_failures: list[DeadLetter]) -> list[DeadLetter]:
        """The store drops the file's old generation; its page is written. Its letters."""
        frag = item.parts
        letters = list(write_failures)
        try:
            self.store.finish_file(frag.path, frag.gen, _Keys(frag, 0), _Keys(frag, 1))
        except StoreError as exc:
            if isinstance(exc, RootUnavailableError):
                raise
            now = time.time()
            letters.append(
                DeadLetter(
                    frag.path, "graph-finish", type(exc).__name__, str(exc), None, None, 1, now, now
                )
            )
        now = time.time()
        letters += [
            DeadLetter(
                frag.path, "parse", issue.error_type, issue.message, issue.line, None, 1, now, now
            )
            for issue in frag.issues
        ]
        return letters

    def _record_failure(self, ref: FileRef, bad: Unreadable) -> None:
        now = time.time()
        letter = DeadLetter(
            ref.path, bad.stage, bad.error_type, bad.message, bad.line, bad.offset, 1, now, now
        )
        with transaction(self.conn):
            self.ledger.mark_failed(ref, bad.message, self.signature())
            self.ledger.replace_dead_letters(ref.path, [letter])

    def _collect_writer_stats(self, stats: GraphRunStats) -> None:
        w = self.writer.stats
        stats.write_calls += w.calls
        stats.retries += w.retries
        stats.splits += w.splits
        stats.rows_failed += w.rows_failed

    def _refuse_unsafe(self, plan: Plan) -> None:
        if plan.protected and not self.allow_root_deletion and plan.root_problems:
            problems = "; ".join(f"{p.root}: {p.reason}" for p in plan.root_problems)
            raise RootUnavailableError(
                f"refusing to delete {len(plan.protected)} files' graph under roots that look"
                f" unavailable ({problems}); pass --allow-root-deletion if intended"
            )

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(f"{self.path}: another headrace process is writing") from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- reading ------------------------------------------------------------------

    def failed(self) -> list[DeadLetter]:
        return self.ledger.dead_letters()

    def close(self) -> None:
        self.store.close()
        if self.cache is not None:
            self.cache.flush()
        self.conn.close()

    def __enter__(self) -> GraphIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _page(parts: FileParts) -> str:
    """A written file's search page: rendered where it was parsed, else here."""
    return parts.page if parts.page is not None else render(parts.fragment())


class _Keys(Sequence[str]):
    """The keys (first fields) of a file's node (``which`` 0) or edge (1) rows, read
    when a store asks: the embedded store never does (it finishes a file from what
    it staged), Neo4j's does. Saves two lists per file (310k keys copied per 1,000
    benchmark files), and the rows are not decoded for it (``FileParts``)."""

    __slots__ = ("_parts", "_which")

    def __init__(self, parts: FileParts, which: int) -> None:
        self._parts, self._which = parts, which

    @property
    def _rows(self) -> list[Any]:
        return self._parts.edges if self._which else self._parts.nodes

    def __len__(self) -> int:
        return self._parts.shape[self._which]

    @overload
    def __getitem__(self, index: int) -> str: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[str]: ...

    def __getitem__(self, index: int | slice) -> str | Sequence[str]:
        if isinstance(index, slice):
            return [str(row[0]) for row in self._rows[index]]
        return str(self._rows[index][0])

    def __iter__(self) -> Iterator[str]:
        return (str(row[0]) for row in self._rows)


@contextlib.contextmanager
def _gc_frozen() -> Iterator[None]:
    """Exempt the objects that exist before a sync from the cyclic GC while it runs.

    A sync allocates hundreds of tuples per file; every few thousand allocations
    the collector ran a full pass over the whole heap (sqlglot's grammar tables,
    the loaded modules, ...). Frozen, they are skipped: the 1,000-file benchmark's
    warm phase went from 12.4 to 5.3 CPU seconds (bench/sql_ingest.py). Objects made
    during the sync are collected as usual; ``unfreeze`` returns the rest to the
    oldest generation.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def _line_of(row: NodeRow | EdgeRow) -> int | None:
    return row.line if isinstance(row, NodeRow) and row.line else None


def _write_letter(row: NodeRow | EdgeRow, fail: WriteFailure[Any], now: float) -> DeadLetter:
    message = f"{row.key}: {fail.message}"[:1000]
    return DeadLetter(
        row.file, "graph-write", fail.error_type, message, _line_of(row), None, 1, now, now
    )
