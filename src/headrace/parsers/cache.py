"""A content-addressed cache of parse results, shared by every parser.

An entry is keyed by ``(parser, digest)``: ``parser`` names the parser, its version
and any option that changes its output (``"sql-script@1:mysql"``), ``digest`` is
the blake3 hash of the parsed bytes. So a result is reused for the same content at
any path, or when a file flips back to earlier content, and a new parser version
never reads an old result. Values are opaque bytes (parsers store JSON: a cache
file must never be able to run code, which rules out pickle).

Bounds: at most ``max_entries`` entries, least recently used evicted first; an
entry older than ``ttl_s`` (since it was written) is a miss and is deleted. A use
is recorded only when the recorded one is older than ``touch_after_s`` (an hour):
recording it rewrites the whole row, a fragment entry's tens of KB included (1,000
warm hits cost the ingest process 0.25 CPU s and 0.59 s wall), so the LRU order has
that resolution.

The cache lives in its own SQLite file (WAL), shared by all indexes of a user.
Reads are point lookups; writes and LRU touches are buffered and applied in one
transaction by ``flush()`` (called every ``flush_every`` writes and on close), so a
hit costs no write. Hit and miss counts persist, for ``headrace cache stats``.
A cache that cannot be opened or written is never fatal: it logs once and behaves
as empty, since it only saves time.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apsw

log = logging.getLogger(__name__)

DEFAULT_MAX_ENTRIES = 100_000
DEFAULT_TTL_S = 30 * 24 * 3600.0
DEFAULT_TOUCH_AFTER_S = 3600.0  # a use is recorded when the recorded one is older
FLUSH_BYTES = 8 << 20  # buffered values written once they reach 8 MB
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries(
    parser TEXT NOT NULL,
    digest BLOB NOT NULL,
    value BLOB NOT NULL,
    created REAL NOT NULL,
    used REAL NOT NULL,
    PRIMARY KEY(parser, digest)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS entries_used ON entries(used);
CREATE TABLE IF NOT EXISTS counters(name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""
_COUNTERS = ("hits", "misses", "evictions", "expired")

# What a buffer-only cache would have written: new entries, LRU touches, counters.
CacheLog = tuple[dict[tuple[str, bytes], bytes], dict[tuple[str, bytes], float], dict[str, int]]


def _one(conn: apsw.Connection, sql: str) -> tuple[Any, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None  # aggregates always return a row
    return tuple(row)


def default_cache_path() -> Path:
    """``$HEADRACE_CACHE_DIR/parse-cache.sqlite`` or ``~/.cache/headrace/…``."""
    base = os.environ.get("HEADRACE_CACHE_DIR") or str(Path.home() / ".cache" / "headrace")
    return Path(base) / "parse-cache.sqlite"


class ParseCache:
    """See the module docstring. Not thread-safe: one owner thread per instance."""

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        max_entries: int = DEFAULT_MAX_ENTRIES,
        ttl_s: float = DEFAULT_TTL_S,
        flush_every: int = 2000,
        clock: Any = time.time,
        buffer_only: bool = False,
        touch_after_s: float = DEFAULT_TOUCH_AFTER_S,
    ) -> None:
        """``buffer_only``: never write the file; what would be written is collected
        for ``take_log`` (a parse worker's view: its owner ``absorb``s the log)."""
        self.path = Path(path) if path is not None else default_cache_path()
        self.buffer_only = buffer_only
        self.max_entries = max_entries
        self.ttl_s = ttl_s
        self.touch_after_s = touch_after_s
        self.flush_every = flush_every
        self._clock = clock
        self._puts: dict[tuple[str, bytes], bytes] = {}
        self._put_bytes = 0
        self._touched: dict[tuple[str, bytes], float] = {}
        self._counts = dict.fromkeys(_COUNTERS, 0)
        # parser -> the keys it had stored when ``listed`` was first asked, and this
        # instance's puts since: a key outside is a miss without a lookup
        self._listed: dict[str, set[bytes]] = {}
        self._unlisted: set[str] = set()  # parsers with too many entries to list
        self._conn: apsw.Connection | None = self._open()

    def _open(self) -> apsw.Connection | None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = apsw.Connection(str(self.path))
            conn.setbusytimeout(10_000)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(_SCHEMA)
        except (apsw.Error, OSError) as exc:
            log.warning("parse cache %s unavailable, parsing without it: %s", self.path, exc)
            return None
        return conn

    # -- lookups ------------------------------------------------------------------

    def get(self, parser: str, digest: bytes) -> bytes | None:
        """The cached value, or ``None`` (miss, expired, or no cache)."""
        return self.get_many(parser, [digest]).get(digest)

    def listed(self, parser: str, *, at_most: int) -> None:
        """From now on, look up only keys of ``parser`` that were stored at this call
        or put through this instance since; any other reads as a miss without a
        query. For an entry kind looked up once per key in a run (a whole file's),
        where one stored meanwhile by another process is only a missed saving: a
        cold run's whole-file lookups all miss, and each is a B-tree descent through
        a file the ingest process commits to meanwhile. Only if ``parser`` has at
        most ``at_most`` entries (a listing reads each of them; asked again later,
        it is not tried again)."""
        if self._conn is None or parser in self._listed or parser in self._unlisted:
            return
        try:
            rows = self._conn.execute(
                "SELECT digest FROM entries WHERE parser = ? LIMIT ?", (parser, at_most + 1)
            ).fetchall()
        except apsw.Error as exc:
            self._disable(exc)
            return
        if len(rows) > at_most:
            self._unlisted.add(parser)
        else:
            self._listed[parser] = {r[0] for r in rows if isinstance(r[0], bytes)}

    def get_many(self, parser: str, digests: Sequence[bytes]) -> dict[bytes, bytes]:
        """The cached values of those ``digests`` that have one."""
        found: dict[bytes, bytes] = {}
        now = self._clock()
        expired: list[bytes] = []
        listed = self._listed.get(parser)
        for digest in digests:
            key = (parser, digest)
            if key in self._puts:
                found[digest] = self._puts[key]
                continue
            if listed is not None and digest not in listed:
                continue
            row = self._row(parser, digest)
            if row is None:
                continue
            value, created, used = row
            if now - created > self.ttl_s:
                expired.append(digest)
                continue
            found[digest] = value
            if now - used >= self.touch_after_s:
                self._touched[key] = now
        self._counts["hits"] += len(found)
        self._counts["misses"] += len(digests) - len(found)
        self._counts["expired"] += len(expired)
        if expired:
            self._delete(parser, expired)
        return found

    def _row(self, parser: str, digest: bytes) -> tuple[bytes, float, float] | None:
        if self._conn is None:
            return None
        try:
            row = self._conn.execute(
                "SELECT value, created, used FROM entries WHERE parser = ? AND digest = ?",
                (parser, digest),
            ).fetchone()
        except apsw.Error as exc:
            self._disable(exc)
            return None
        return None if row is None else (bytes(row[0]), float(row[1]), float(row[2]))

    # -- writes -------------------------------------------------------------------

    def put(self, parser: str, digest: bytes, value: bytes) -> None:
        """Remember ``value`` for ``(parser, digest)`` (written at the next flush)."""
        if self._conn is None:
            return
        self._puts[(parser, digest)] = value
        self._put_bytes += len(value)
        listed = self._listed.get(parser)
        if listed is not None:
            listed.add(digest)
        # Whole-file entries are tens of KB: bound the buffer's bytes too (RSS).
        if len(self._puts) >= self.flush_every or self._put_bytes >= FLUSH_BYTES:
            self.flush()

    def take_log(self) -> CacheLog:
        """What was buffered since the last call (entries, touches, counts), cleared."""
        log_ = (self._puts, self._touched, self._counts)
        self._puts, self._touched = {}, {}
        self._put_bytes = 0
        self._counts = dict.fromkeys(_COUNTERS, 0)
        return log_

    def absorb(self, log_: CacheLog) -> None:
        """Buffer another instance's ``take_log`` as if its calls were made here."""
        if self._conn is None:
            return
        puts, touched, counts = log_
        self._touched.update(touched)
        for name, n in counts.items():
            self._counts[name] = self._counts.get(name, 0) + n
        for (parser, digest), value in puts.items():
            self.put(parser, digest, value)

    def flush(self) -> None:
        """Write buffered entries, LRU touches and counters; evict beyond the bound."""
        conn = self._conn
        if conn is None or self.buffer_only:
            return
        now = self._clock()
        try:
            with conn:
                conn.executemany(
                    "INSERT INTO entries VALUES (?,?,?,?,?) ON CONFLICT DO UPDATE SET"
                    " value=excluded.value, created=excluded.created, used=excluded.used",
                    [(p, d, v, now, now) for (p, d), v in self._puts.items()],
                )
                conn.executemany(
                    "UPDATE entries SET used = ? WHERE parser = ? AND digest = ?",
                    [(t, p, d) for (p, d), t in self._touched.items()],
                )
                self._counts["evictions"] += self._evict(conn)
                conn.executemany(
                    "INSERT INTO counters VALUES (?, ?)"
                    " ON CONFLICT DO UPDATE SET value = value + excluded.value",
                    [(k, v) for k, v in self._counts.items() if v],
                )
        except apsw.Error as exc:
            self._disable(exc)
            return
        self._puts.clear()
        self._put_bytes = 0
        self._touched.clear()
        self._counts = dict.fromkeys(_COUNTERS, 0)

    def _evict(self, conn: apsw.Connection) -> int:
        count = int(_one(conn, "SELECT count(*) FROM entries")[0])
        excess = count - self.max_entries
        if excess <= 0:
            return 0
        conn.execute(
            "DELETE FROM entries WHERE (parser, digest) IN"
            " (SELECT parser, digest FROM entries ORDER BY used, created LIMIT ?)",
            (excess,),
        )
        return excess

    def _delete(self, parser: str, digests: list[bytes]) -> None:
        if self._conn is None or self.buffer_only:
            return
        try:
            with self._conn:
                self._conn.executemany(
                    "DELETE FROM entries WHERE parser = ? AND digest = ?",
                    [(parser, d) for d in digests],
                )
        except apsw.Error as exc:
            self._disable(exc)

    def _disable(self, exc: Exception) -> None:
        log.warning("parse cache %s failed, continuing without it: %s", self.path, exc)
        self._conn = None

    # -- administration -------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        """Entries, bytes, per-parser counts, hits, misses, hit rate, evictions."""
        self.flush()
        out: dict[str, Any] = {
            "path": str(self.path),
            "max_entries": self.max_entries,
            "ttl_days": self.ttl_s / 86400,
        }
        if self._conn is None:
            return {**out, "available": False}
        conn = self._conn
        entries, size = _one(conn, "SELECT count(*), coalesce(sum(length(value)), 0) FROM entries")
        counters = {str(k): int(v) for k, v in conn.execute("SELECT name, value FROM counters")}
        hits, misses = counters.get("hits", 0), counters.get("misses", 0)
        by_parser = {
            str(p): int(n)
            for p, n in conn.execute("SELECT parser, count(*) FROM entries GROUP BY parser")
        }
        return {
            **out,
            "available": True,
            "entries": int(entries),
            "bytes": int(size),
            "by_parser": by_parser,
            "hits": hits,
            "misses": misses,
            "hit_rate": hits / (hits + misses) if hits + misses else 0.0,
            "evictions": int(counters.get("evictions", 0)),
            "expired": int(counters.get("expired", 0)),
        }

    def clear(self) -> int:
        """Delete every entry and reset the counters; returns the entries removed."""
        self._puts.clear()
        self._listed.clear()
        self._unlisted.clear()
        self._put_bytes = 0
        self._touched.clear()
        if self._conn is None:
            return 0
        with self._conn:
            removed = int(_one(self._conn, "SELECT count(*) FROM entries")[0])
            self._conn.execute("DELETE FROM entries; DELETE FROM counters;")
        self._conn.execute("VACUUM")
        return removed

    def close(self) -> None:
        self.flush()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> ParseCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
