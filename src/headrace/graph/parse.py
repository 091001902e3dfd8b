"""One SQL file -> its graph fragment, in this process or in a pool of workers.

``parse_file`` is the graph ingest's per-file work before any write: read, hash
(blake3), look the fragment up in the parse cache (key: content, dialect,
database), else split, parse (statement-level cache) and build it. It touches no
graph or ledger state, so ``ParsePool`` runs it in worker processes while the
ingest's own process writes the previous files (the store, the ledger and the
cache file keep one writer: the ingest process).

Workers are forked (they inherit the loaded parser modules: no import time) and
open the parse cache read-only in spirit: what they would write (new entries, LRU
touches, hit/miss counts) comes back with each result and the ingest process
applies it (``ParseCache.absorb``). A file's fragment travels as the JSON the
cache stores for it anyway. The ingest process does not wait idle for a worker: when
no chunk in flight is ready it parses the next file itself (on 2 CPUs,
one worker plus this process: a cold 1,000-file ingest went from ~170-185 to
~225-290 files/s). Results come back as they are ready, with a bounded number of
files in flight, so memory is bounded as in a serial run; which files share a group
varies from run to run, and nothing depends on it (a file's contribution ranks by
role and path, not by order). Workers ignore SIGINT (stopping is the ingest
process's business; a SIGTERM to the whole group ends them, and a stop requested
meanwhile still finishes what was parsed) and die with the ingest process (Linux
``PR_SET_PDEATHSIG``), so a SIGKILL leaves no orphans.
"""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
import zstandard
from blake3 import blake3

from headrace.compression import zstd_codec
from headrace.errors import InputError, UnreadableFileError
from headrace.graph.build import BUILDER_VERSION, PROPS_TEXT, build_fragment
from headrace.graph.model import Edge, Fragment, Node
from headrace.graph.render import render
from headrace.parsers.cache import CacheLog, ParseCache
from headrace.parsers.sql.dialect import detect_dialect
from headrace.parsers.sql.script import PARSER_VERSION, ScriptParser
from headrace.records import FileRef, ParseIssue

WORKER_GC_THRESHOLD = 10_000  # a parse worker's generation-0 threshold (default 700)
# The fragment cache value's layout (2: counts line first; 3: properties as the
# stores' JSON text, see ``rows_json``; 4: the rows zlib-compressed; 5: zstd).
FRAGMENT_FORMAT = "5"  # zstd: see headrace.compression


# Statement counters of one file, in GraphRunStats' names.
COUNTERS = (
    "cache_file_hits",
    "cached_statements",
    "parsed_statements",
    "statements",
    "data_statements",
    "failed_statements",
)
PARSED_COUNT = COUNTERS.index("parsed_statements")


def rows_json(fragment: Fragment) -> bytes:
    """``fragment_rows`` encoded: what a file's fragment travels and rests as."""
    return orjson.dumps(fragment_rows(fragment))


def fragment_rows(fragment: Fragment) -> list[Any]:
    """A fragment as the writer takes it: nodes ``[key, kind, name, role, line,
    props]`` and edges ``[key, type, src, dst, props]`` with ``props`` already the
    stores' text (``props_json``), then issues and stats. Encoded where the file is
    parsed (a worker), so the single writer decodes fewer objects and encodes no
    properties: 1,000 warm benchmark files' decode plus the stores' sorted
    encoding took 0.16 CPU s in the writer, this form's decode 0.09-0.10 s."""
    # ``props_json`` (``{}`` for no properties, else sorted compact JSON), or its text
    # remembered by the builder for properties it shares (``PROPS_TEXT``: entries
    # hold their dictionary, so an id found there with that dictionary is it). One
    # helper for nodes and edges: inlining it twice saved 0.015-0.035 CPU s per 1,000
    # benchmark files, in the worker, which a cold run leaves ~0.4 s idle.
    dumps, sort, texts = orjson.dumps, orjson.OPT_SORT_KEYS, PROPS_TEXT

    def text(props: Any) -> str:
        if not props:
            return "{}"
        known = texts.get(id(props))
        if known is not None and known[0] is props:
            return known[1]
        return dumps(props, option=sort).decode()

    return [
        [
            [key, kind, name, role, line, text(props)]
            for key, kind, name, role, line, props in fragment.nodes.values()
        ],
        [
            [key, type_, src, dst, text(props)]
            for key, type_, src, dst, props in fragment.edges.values()
        ],
        [[i.message, i.line, i.offset, i.error_type] for i in fragment.issues],
        fragment.stats,
    ]


@dataclass(slots=True)
class Parsed:
    """A file read and turned into its fragment's rows: ``packed``, the zstd of its
    ``rows_json`` (the same from a worker and in this process), what the cache
    stores after the counts line (``cache_value``), and ``rows``, the rows as lists
    where this process made or decoded them. A worker sends its results without
    ``rows`` (``_work``): the ingest process decodes a file's rows from ``packed``
    only when something asks for them (``FileParts``), and the pipe carries an
    eighth of the bytes (the 1,000-file benchmark's rows: 54 MB of JSON, 6.2 MB
    packed; the results' pickling went 0.094 -> 0.024 CPU s, their unpickling
    0.070 -> 0.016 s)."""

    ref: FileRef
    digest: str  # hex, 16 bytes: the ledger's content hash
    full: bytes  # the 32-byte blake3 digest: the cache key
    started: float  # perf_counter when reading began (system-wide on Linux)
    parse_s: float
    frag_parser: str
    hit: bool  # the fragment came from the cache whole
    counts: tuple[int, ...]  # COUNTERS
    counts_line: bytes  # the counts' JSON: the cache value's first line (b"": a hit)
    packed: bytes  # zstd of the rows' JSON
    shape: tuple[int, int]  # node rows, edge rows
    issues: list[ParseIssue]
    rows: list[Any] | None = None  # [nodes, edges, issues, stats] as lists, if at hand
    prep: Any = None  # the store's FileWrites.prepare_rows of the rows, if it has one
    page: str | None = None  # the file's search page (``ParseContext.pages``)

    @property
    def cache_value(self) -> bytes:
        """What the cache stores for a miss: the counts' JSON, a newline, then the
        rows compressed (empty for a cache hit: nothing to store)."""
        return self.counts_line + b"\n" + self.packed if self.counts_line else b""

    def parts(self, gen: str) -> FileParts:
        """What the writer takes of the fragment (its rows decoded when asked for)."""
        return FileParts(
            self.ref.path,
            gen,
            self.issues,
            self.shape,
            self.packed,
            rows=self.rows,
            prep=self.prep,
            page=self.page,
        )


class FileParts:
    """What the writer needs of a fragment: ``nodes`` shaped like ``Node`` (key,
    kind, name, role, line, props) and ``edges`` like ``Edge``, as lists, their
    ``props`` as ``props_json`` text, decoded from the packed rows at the first ask
    (a store that takes whole files asks for a few rows of most files)."""

    __slots__ = ("_packed", "_rows", "gen", "issues", "page", "path", "prep", "shape")

    def __init__(
        self,
        path: str,
        gen: str,
        issues: list[ParseIssue],
        shape: tuple[int, int],
        packed: bytes,
        *,
        rows: list[Any] | None = None,
        prep: Any = None,
        page: str | None = None,
    ) -> None:
        self.path, self.gen, self.issues, self.shape = path, gen, issues, shape
        self._packed, self._rows, self.prep, self.page = packed, rows, prep, page

    def _lists(self) -> list[Any]:
        rows = self._rows
        if rows is None:
            rows = self._rows = orjson.loads(zstd_codec()[1].decompress(self._packed))
        return rows

    @property
    def nodes(self) -> list[Any]:
        return self._lists()[0]  # type: ignore[no-any-return]

    @property
    def edges(self) -> list[Any]:
        return self._lists()[1]  # type: ignore[no-any-return]

    def fragment(self) -> Fragment:
        """As a ``Fragment``."""
        return rows_fragment(self.path, self.gen, self.nodes, self.edges, self.issues)


def rows_fragment(
    path: str,
    gen: str,
    nodes: Sequence[Sequence[Any]],
    edges: Sequence[Sequence[Any]],
    issues: list[ParseIssue] | None = None,
) -> Fragment:
    """A fragment's rows (``fragment_rows``) as a ``Fragment`` again: what the search
    mirror's page is rendered from, the same wherever the rows came from."""
    return Fragment(
        path,
        gen,
        {n[0]: Node(n[0], n[1], n[2], n[3], n[4], orjson.loads(n[5])) for n in nodes},
        {e[0]: Edge(e[0], e[1], e[2], e[3], orjson.loads(e[4])) for e in edges},
        issues if issues is not None else [],
    )


@dataclass(frozen=True, slots=True)
class Unreadable:
    """A file that could not be read: what its dead letter says."""

    ref: FileRef
    stage: str
    error_type: str
    message: str
    line: int | None
    offset: int | None


@dataclass(slots=True)
class ParseContext:
    """What parsing a file depends on besides the file (one per process)."""

    dialect: str | None  # forced dialect, else detected per file
    database: str | None  # forced database, else the root folder's name
    signature_tag: str
    cache: ParseCache | None = None
    parsers: dict[str, ScriptParser] = field(default_factory=dict)
    # the store's FileWrites.prepare_rows (None: the store writes rows only)
    prepare: Callable[[Sequence[Sequence[Any]], Sequence[Sequence[Any]], bytes], Any] | None = None
    # whole-file entries are listed (``ParseCache.listed``) where a parser has at most
    # this many: a listing reads ~5 us an entry, a lookup that misses ~40 us (0: never)
    list_at_most: int = 0
    # render each file's search page here (the graph's search mirror): in a parse
    # worker, not in the single writer (``Parsed.page``)
    pages: bool = False


def parse_file(ctx: ParseContext, ref: FileRef) -> Parsed | Unreadable:
    """Read, hash and parse ``ref`` into its fragment (see the module docstring)."""
    started = time.perf_counter()
    try:
        data = read_file(ref.path)
    except InputError as exc:
        return Unreadable(ref, exc.stage, type(exc).__name__, exc.message, exc.line, exc.offset)
    full = blake3(data).digest()
    digest = full[:16].hex()  # = blake3(data).hexdigest(length=16): a prefix
    gen = f"{digest}-{ctx.signature_tag}"
    dialect = ctx.dialect if ctx.dialect is not None else detect_dialect(ref.path, _head(data))
    database = ctx.database or os.path.basename(ref.root.rstrip("/")) or "default"
    # The built fragment is cached too (key: content, dialect, database): a
    # whole-file hit skips the builder as well as the parser. Its value starts with
    # the counts on a line of their own (a worker reads them without the rest).
    frag_parser = (
        f"sql-graph@{PARSER_VERSION}.{BUILDER_VERSION}.{FRAGMENT_FORMAT}:{dialect}:{database}"
    )
    cache = ctx.cache
    if cache is not None and ctx.list_at_most:
        cache.listed(frag_parser, at_most=ctx.list_at_most)  # (looked up once a run)
    entry = cache.get(frag_parser, full) if cache is not None else None
    hit = _decode_entry(entry) if entry is not None else None
    counts_line = b""
    fragment: Fragment | None = None
    if hit is not None:
        counts, packed, lists = hit
        reused = counts.get("parsed", 0) + counts.get("cached", 0)
        row = (1, reused, 0)
    else:
        parser = ctx.parsers.get(dialect)
        if parser is None:
            parser = ctx.parsers[dialect] = ScriptParser(dialect, cache)
        # No whole-file script entry: the fragment entry serves the same files
        # (the statement entries still serve the same content in other roots).
        result, cached = parser.parse(data, full, whole_entry=False)
        fragment = build_fragment(ref.path, gen, database, result)
        counts = result.counts
        reused = counts.get("cached", 0)
        parsed = counts.get("parsed", 0)
        if cached:  # nothing was parsed in this run
            reused, parsed = reused + parsed, 0
        row = (int(cached), reused, parsed)
        lists = fragment_rows(fragment)
        packed = zstd_codec()[0].compress(orjson.dumps(lists))
        counts_line = orjson.dumps(counts)
    # The store's preparation (FileWrites.prepare_rows) is made here, in a parse
    # worker, not in the single writer; its record is the compressed rows.
    nodes, edges, issues = lists[0], lists[1], lists[2]
    prep = ctx.prepare(nodes, edges, packed) if ctx.prepare is not None else None
    page = None
    if ctx.pages:  # from the built fragment, else from its rows (a hit): the same page
        page = render(
            fragment if fragment is not None else rows_fragment(ref.path, gen, nodes, edges)
        )
    return Parsed(
        ref,
        digest,
        full,
        started,
        time.perf_counter() - started,
        frag_parser,
        hit is not None,
        (*row, counts.get("statements", 0), counts.get("data", 0), counts.get("failed", 0)),
        counts_line,
        packed,
        (len(nodes), len(edges)),
        [ParseIssue(*i) for i in issues],
        lists,
        prep,
        page,
    )


def _decode_entry(entry: bytes) -> tuple[dict[str, int], bytes, list[Any]] | None:
    """A whole-file cache entry's counts, packed rows and rows; None if it is damaged
    (a miss: the cache only saves time)."""
    try:
        cut = entry.index(b"\n")
        counts = orjson.loads(memoryview(entry)[:cut])
        packed = entry[cut + 1 :]
        lists = orjson.loads(zstd_codec()[1].decompress(packed))
    except (ValueError, TypeError, zstandard.ZstdError):  # (orjson: ValueError)
        return None
    if not (isinstance(counts, dict) and isinstance(lists, list) and len(lists) == 4):
        return None
    return counts, packed, lists


def read_file(path: str) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read()
    except FileNotFoundError as exc:
        raise UnreadableFileError(
            "file vanished before it was read", path=path, stage="read"
        ) from exc
    except OSError as exc:
        raise UnreadableFileError(
            f"cannot read file: {exc.strerror or exc}", path=path, stage="read"
        ) from exc


def _head(data: bytes) -> str:
    return data[:65536].decode("utf-8", errors="replace")


# -- the pool ---------------------------------------------------------------------

_WORKER: dict[str, ParseContext] = {}  # this worker process's context


def _init_worker(ctx: ParseContext, cache_path: str | None) -> None:
    # Ctrl-C reaches the whole process group: stopping is the ingest process's
    # business. SIGTERM keeps its default (the pool terminates workers with it), and
    # a worker must not outlive the ingest process (SIGKILL of it: no orphans).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    _die_with_parent()
    # Fewer, larger young collections: sqlglot's trees are cyclic (the collector
    # must run), but at the default threshold (700) a cold 1,000-file parse ran
    # ~1,400 young and 11 full passes over the worker's growing statement memo,
    # 0.24 CPU s; at 10,000: 28 young and no full pass, 0.10-0.14 s, peak RSS the same.
    gc.set_threshold(WORKER_GC_THRESHOLD, 10, 10)
    ctx.cache = ParseCache(cache_path, buffer_only=True) if cache_path is not None else None
    ctx.parsers = {}
    _WORKER["ctx"] = ctx


def _die_with_parent() -> None:
    """Linux: SIGKILL this process when its parent dies (prctl PR_SET_PDEATHSIG)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):  # not Linux: the pool's own checks remain
        pass


def _work(refs: Sequence[FileRef]) -> tuple[list[Parsed | Unreadable], CacheLog | None]:
    ctx = _WORKER["ctx"]
    out = [parse_file(ctx, ref) for ref in refs]
    for result in out:  # the rows travel packed only (see ``Parsed``)
        if isinstance(result, Parsed):
            result.rows = None
    return out, (ctx.cache.take_log() if ctx.cache is not None else None)


class ParsePool:
    """``workers`` forked processes running ``parse_file``; see the module docstring.

    A ``concurrent.futures`` process pool: a worker that dies (killed, out of
    memory) fails the pending results with ``BrokenProcessPool`` instead of leaving
    the ingest waiting for them."""

    def __init__(self, ctx: ParseContext, workers: int, *, chunk: int = 4) -> None:
        cache_path = str(ctx.cache.path) if ctx.cache is not None else None
        if ctx.cache is not None:
            ctx.cache.flush()  # what this process buffered becomes visible to workers
        # everything but this process's cache connection and parsers (_init_worker)
        worker_ctx = replace(ctx, cache=None, parsers={})
        self._pool = ProcessPoolExecutor(
            workers,
            mp_context=multiprocessing.get_context("fork"),
            initializer=_init_worker,
            initargs=(worker_ctx, cache_path),
        )
        _widen_result_pipe(self._pool)
        # The first task forks every worker (a fork pool launches them all at once and
        # never again): once this returns, threads may start (``BackgroundCheckpoints``).
        self._pool.submit(os.getpid)
        self.workers = workers
        self.chunk = chunk
        self.cache = ctx.cache
        self._ctx = ctx
        # parses a file in this process while no worker result is ready (None: never)
        self.help: Callable[[FileRef], Parsed | Unreadable] | None = self._parse_here

    def _parse_here(self, ref: FileRef) -> Parsed | Unreadable:
        """``parse_file`` in this process. Its collector may be off while the pool
        runs (its rows are acyclic, see ``GraphIndex._write_all``); sqlglot's trees
        are not, so a file that ran the parser is followed by a young collection
        (the trees are garbage by then, and still young)."""
        result = parse_file(self._ctx, ref)
        if isinstance(result, Parsed) and result.counts[PARSED_COUNT] and not gc.isenabled():
            gc.collect(0)
        return result

    def map(
        self, refs: Iterable[FileRef], stop: Callable[[], bool] | None = None
    ) -> Iterator[Parsed | Unreadable]:
        """Each ref's result; once ``stop()`` is true nothing more is sent or parsed.

        Chunks are taken as they finish. When none has, this process parses a ref
        itself instead of waiting (``help``): it is the single writer, idle while the
        workers parse (a cold 1,000-file benchmark's ingest process was busy ~2.5 of
        ~5 s). It takes its refs from the other end of the list, from the start: the
        workers' chunks come from the front, so the two rarely parse the same new
        statements at once (which the rule it replaces, no parsing here before the
        first 8 chunks were back, avoided by idling ~0.14 s per cold run). Once the
        list is used up, it takes back the newest chunk no worker has started, rather
        than wait for the workers to get through every chunk still queued.

        From the back it claims a block of refs at a time and parses the block in
        list order (``_claim``; the workers take what it has not reached once the
        front is used up): a file's contribution ranks by path, and files
        written in falling path order each outrank the one before for the entities
        they share, so every one of them rewrote those entities' shown rows (cold
        1,000-file benchmark: 14,890-18,941 node upserts, against 6,549 when one
        process writes in list order)."""
        pending: list[Future[tuple[list[Parsed | Unreadable], CacheLog | None]]] = []
        chunks: dict[Future[Any], list[FileRef]] = {}
        todo = deque(refs)  # chunks from the front, this process's refs from the back
        mine: deque[FileRef] = deque()  # refs claimed from the back, in list order
        # Chunks in flight: bounded memory, and enough queued that the workers keep
        # parsing while this process writes a group or parses a file itself (cold
        # benchmark with ``help``, 2 alternating runs each: 3 chunks 236/259, 8
        # chunks 258/260, 16 chunks 249/280 files/s).
        limit = 8 * self.workers
        returned = 0
        exhausted = False
        while True:
            while not exhausted and len(pending) < limit and not (stop and stop()):
                chunk = _next_chunk(todo, mine, self.chunk)
                if not chunk:
                    exhausted = True
                    break
                future = self._pool.submit(_work, chunk)
                pending.append(future)
                chunks[future] = chunk
            if not pending and not todo and not mine:
                return
            done = next((f for f in pending if f.done()), None)
            if done is None and self.help is not None and not (stop and stop()):
                if not mine:
                    exhausted = exhausted or not todo  # (what is left is parsed here)
                    _claim(todo, mine, pending, chunks)
                if mine:
                    yield self.help(mine.popleft())
                    continue
            if not pending:
                return
            if done is None:
                done = next(as_completed(pending))
            pending.remove(done)
            chunks.pop(done, None)
            returned += 1
            results, log = done.result()
            if log is not None and self.cache is not None:
                self.cache.absorb(log)
                if returned % limit == 0:
                    # What this process parsed becomes visible to the workers (they
                    # read the cache file), else they parse it again: cold benchmark,
                    # 2,100 -> 1,781 statements parsed in all (one process: 1,663).
                    self.cache.flush()
            yield from results

    def close(self) -> None:
        """Cancel what has not started, wait for the chunks being parsed."""
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> ParsePool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


HERE_BLOCK = 64  # refs the ingest process claims from the back at a time (``_claim``)


def _next_chunk(todo: deque[FileRef], mine: deque[FileRef], size: int) -> list[FileRef]:
    """A worker's next chunk: from the front of ``todo``, else the last refs this
    process claimed and has not parsed yet (in list order)."""
    if todo:
        return [todo.popleft() for _ in range(min(size, len(todo)))]
    return _from_back(mine, size)


def _from_back(refs: deque[FileRef], n: int) -> list[FileRef]:
    """The last ``n`` refs (fewer if there are not as many), taken out, in list order."""
    block = [refs.pop() for _ in range(min(n, len(refs)))]
    block.reverse()
    return block


def _claim(
    todo: deque[FileRef],
    mine: deque[FileRef],
    pending: list[Future[Any]],
    chunks: dict[Future[Any], list[FileRef]],
) -> None:
    """Up to ``HERE_BLOCK`` refs from the back of ``todo`` into ``mine``, in list
    order; fewer as ``todo`` runs short (a quarter of it at most, at least one).
    With ``todo`` used up, the newest chunk no worker has started is taken back
    first. (The workers take chunks from the back of ``mine`` once ``todo`` is used
    up: ``_next_chunk``.)"""
    if not todo:
        _take_back(pending, chunks, todo)
    mine.extend(_from_back(todo, min(HERE_BLOCK, max(1, len(todo) // 4))))


def _take_back(
    pending: list[Future[Any]], chunks: dict[Future[Any], list[FileRef]], todo: deque[FileRef]
) -> None:
    """The newest chunk no worker has started, cancelled and put back in ``todo``."""
    taken = next((f for f in reversed(pending) if f.cancel()), None)
    if taken is not None:
        pending.remove(taken)
        todo.extend(chunks.pop(taken))


RESULT_PIPE_BYTES = 1 << 20  # Linux's default pipe-max-size for an unprivileged process


def _widen_result_pipe(pool: ProcessPoolExecutor) -> None:
    """Give the pool's result pipe 1 MB instead of 64 KB (Linux ``F_SETPIPE_SZ``).

    A chunk's results are ~200 KB; the ingest process's thread that reads them needs
    the GIL, which its main thread (writing, or parsing a file itself) holds for up to
    the switch interval at a time, so with 64 KB a worker waited in ``send`` for most
    of its results (py-spy: 88 of its 1,386 samples, the ingest process saturated).
    Cold benchmark, 6 alternating pairs at load 3-4: 133-276 -> 240-286 files/s, 5 of 6
    pairs faster. Best effort: the pool's queue is CPython's private attribute."""
    try:
        import fcntl

        queue: Any = pool._result_queue  # CPython's: a SimpleQueue over one pipe
        fcntl.fcntl(queue._reader.fileno(), fcntl.F_SETPIPE_SZ, RESULT_PIPE_BYTES)
    except (AttributeError, ImportError, OSError):  # not Linux, another Python, a limit
        pass


def default_workers() -> int:
    """Parse workers for a large sync: one per CPU beside the ingest process's own
    (which writes), at least 1, at most 4; ``HEADRACE_GRAPH_WORKERS`` overrides (0:
    parse in-process). On 2 CPUs one worker measured as fast as two on the cold
    1,000-file benchmark with less CPU in all (no statement parsed twice by two
    workers) and a lower p50 (README, SQL knowledge graph benchmark)."""
    env = os.environ.get("HEADRACE_GRAPH_WORKERS")
    if env is not None:
        return max(0, int(env))
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, (cpus or 1) - 1))
