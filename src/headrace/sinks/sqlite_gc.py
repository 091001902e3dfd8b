"""Keeping the embedding cache bounded (issue 4: a watcher left on for weeks).

``embed_cache`` holds one vector per (model, text hash). Nothing else ever deletes
from it, so an index that follows a churning folder would keep every text it ever
embedded. ``CachePruner`` evicts, in this order and nothing else:

1. **unreferenced** entries, of any model: no chunk (``chunks.text_hash``) and no
   staged row (``pending``, whether a ``partial`` cursor vouches for it or not) has
   the text. Oldest embedded first (``created_at``; a cache hit does not refresh it).
2. only while still over the bound after 1: **other models'** vectors of texts the
   index still holds — they make switching back to that model free
   (``pipeline/switch.py``), so they go last, oldest first; never those of a model
   switch in progress (``meta.model_switch``).

The bound model's vectors of current texts are never evicted: publishing copies them
into ``chunks_vec``, the replica loads them, and the vectors of staged rows are what
keeps a crash replay from embedding a text twice (docs/design.md, "Runtime and crash
safety"). If they alone exceed the bound, the cache is exactly them.

Contract for callers: hold the index's writer lock and never call while a run is in
flight — the embed stage skipped texts it found in the cache, and evicting one before
its window is published would leave a chunk without a vector. ``Index`` calls it at
the end of ``ingest``, a watcher when work goes idle, ``headrace gc`` on demand.

Cost: sizes per model are kept by triggers (migrations v7-v8), so ``due`` is O(1). A pass
walks the cache by age in steps of ``step_rows`` entries (index probes only), each
step its own short transaction, and evicts down to 90% of the bound (a trickle of new
vectors does not start a pass per batch). When the texts in use alone exceed the
bound, a pass can free nothing; the next starts only once the cache has grown 10%
past what the last one left (stored in ``meta``), so the walks cost O(1) amortised
per new vector, and the cache stays within max(bound, 1.1 x what was in use then).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

import apsw

from headrace.ledger.db import scalar, transaction

STEP_ROWS: Final = 1000  # entries looked at per step, one transaction (p50 16-26 ms: bench)
LOW_WATER: Final = 0.9  # a pass evicts down to this share of the bound
REGROW: Final = 1.1  # next pass once the cache is this much larger than the last left
FLOOR_KEY: Final = "embed_cache_floor"  # bytes the last completed pass left
SWITCH_KEY: Final = "model_switch"  # pipeline.switch.PROGRESS_KEY (no import: layers)

_WALK: Final = (
    "SELECT created_at, model, text_hash FROM embed_cache INDEXED BY embed_cache_age"
    " WHERE (created_at, model, text_hash) > (?1, ?2, ?3)"
    " ORDER BY created_at, model, text_hash LIMIT ?4"
)
# Per walked entry: its vector's length when nothing uses its text, else NULL. The
# pending probe goes through pending_hash (path, text_hash) for each staged path.
_UNUSED: Final = (
    "SELECT w.created_at, w.model, w.text_hash,"
    " CASE WHEN NOT EXISTS (SELECT 1 FROM chunks INDEXED BY chunks_text_hash"
    "   WHERE text_hash = w.text_hash)"
    " AND NOT EXISTS (SELECT 1 FROM pending INDEXED BY pending_hash"
    "   WHERE path IN (SELECT value FROM json_each(?5)) AND text_hash = w.text_hash)"
    " THEN (SELECT length(vector) FROM embed_cache AS e"
    "   WHERE e.model = w.model AND e.text_hash = w.text_hash) END"
    f" FROM ({_WALK}) AS w"
)
_OTHER: Final = (
    "SELECT w.created_at, w.model, w.text_hash,"
    " CASE WHEN w.model NOT IN (SELECT value FROM json_each(?5))"
    " THEN (SELECT length(vector) FROM embed_cache AS e"
    "   WHERE e.model = w.model AND e.text_hash = w.text_hash) END"
    f" FROM ({_WALK}) AS w"
)
_START: Final = (0.0, "", "")


@dataclass
class CacheSize:
    """Entries and vector bytes in the cache, all models together (O(1) to read)."""

    entries: int
    bytes: int


@dataclass
class PruneReport:
    """What a pass (or the steps of one so far) did; ``done``: the pass is over."""

    entries: int = 0  # cache entries evicted
    bytes: int = 0  # their vector bytes
    walked: int = 0  # entries looked at
    steps: int = 0  # transactions
    done: bool = True


def cache_size(conn: apsw.Connection) -> CacheSize:
    """Entries and vector bytes of every model's cached vectors."""
    # fetchall: a cursor left unfinished would be finalised by the GC, possibly on
    # another thread while this connection is busy (apsw.ThreadingViolationError).
    rows: list[tuple[Any, ...]] = conn.execute(
        "SELECT coalesce(sum(entries), 0), coalesce(sum(bytes), 0) FROM embed_cache_size"
    ).fetchall()
    for entries, size in rows:
        return CacheSize(int(entries), int(size))
    return CacheSize(0, 0)  # an aggregate always has a row; for the type checker


class CachePruner:
    """Evicts cache entries of one index in bounded steps (see the module docstring).

    ``max_bytes``: the bound (vector bytes, all models); ``None``: no bound, so
    ``due`` is never true (a full pass can still be started).
    """

    def __init__(
        self, conn: apsw.Connection, max_bytes: int | None, *, step_rows: int | None = None
    ) -> None:
        self.conn = conn
        self.max_bytes = max_bytes
        self.step_rows = step_rows or STEP_ROWS  # read at call time: tests shrink it
        self.report = PruneReport()
        self._target = 0
        self._phases: list[str] = []
        self._after: tuple[float, str, str] = _START

    @property
    def active(self) -> bool:
        """A pass is under way (``step`` has more to do)."""
        return bool(self._phases)

    def due(self) -> bool:
        """Over the bound, and grown past what the last pass left (O(1))."""
        if self.max_bytes is None:
            return False
        total = cache_size(self.conn).bytes
        floor = int(scalar(self.conn, "SELECT value FROM meta WHERE key = ?", (FLOOR_KEY,)) or 0)
        return total > self.max_bytes and total > floor * REGROW

    def start(self, *, full: bool = False, other_models: bool = False) -> None:
        """Begin a pass: down to 90% of the bound, or (``full``) every unreferenced
        entry, plus other models' vectors if ``other_models``."""
        if full or self.max_bytes is None:
            self._target = 0
            self._phases = ["unused", "other"] if other_models else ["unused"]
        else:
            self._target = int(self.max_bytes * LOW_WATER)
            self._phases = ["unused", "other"]
        self._after = _START
        self.report = PruneReport(done=False)

    def step(self) -> bool:
        """One bounded step in its own transaction; True while the pass goes on."""
        if not self._phases:
            return False
        with transaction(self.conn):
            more = self._step()
            if not more:
                self._phases = []
                self.report.done = True
                self._record_floor()
        self.report.steps += 1
        return more

    def run(self) -> PruneReport:
        """Steps until the pass is over."""
        while self.step():
            pass
        return self.report

    def _step(self) -> bool:
        excess = cache_size(self.conn).bytes - self._target
        if excess <= 0:
            return False
        phase = self._phases[0]
        if phase == "unused":
            rows = list(self.conn.execute(_UNUSED, (*self._after, self.step_rows, self._staged())))
        else:
            rows = list(self.conn.execute(_OTHER, (*self._after, self.step_rows, self._kept())))
        if not rows:
            return self._next_phase()
        self._after = (float(rows[-1][0]), str(rows[-1][1]), str(rows[-1][2]))
        self.report.walked += len(rows)
        victims: list[tuple[str, str]] = []
        for _, model, text_hash, size in rows:
            if size is None:
                continue
            if excess <= 0:
                break
            victims.append((model, text_hash))
            excess -= int(size)
            self.report.bytes += int(size)
        self.conn.executemany("DELETE FROM embed_cache WHERE model = ? AND text_hash = ?", victims)
        self.report.entries += len(victims)
        return excess > 0

    def _next_phase(self) -> bool:
        self._phases.pop(0)
        self._after = _START
        if self._phases == ["other"] and not self._others_exist():
            self._phases = []
        return bool(self._phases)

    def _staged(self) -> str:
        """The paths with staged rows, as JSON: one index hop each (a skip scan over
        ``pending``'s key, however many rows a path has)."""
        paths: list[str] = []
        after = ""
        while (
            path := scalar(self.conn, "SELECT min(path) FROM pending WHERE path > ?", (after,))
        ) is not None:
            paths.append(str(path))
            after = str(path)
        return json.dumps(paths)

    def _kept(self) -> str:
        """Models whose vectors are never evicted as "other": the bound one and the
        target of a model switch in progress."""
        kept = [scalar(self.conn, "SELECT value FROM meta WHERE key = 'model'")]
        if (
            raw := scalar(self.conn, "SELECT value FROM meta WHERE key = ?", (SWITCH_KEY,))
        ) is not None:
            kept.append(json.loads(raw).get("to"))
        return json.dumps([str(m) for m in kept if m is not None])

    def _others_exist(self) -> bool:
        found = scalar(
            self.conn,
            "SELECT 1 FROM embed_cache_size WHERE entries > 0"
            " AND model NOT IN (SELECT value FROM json_each(?)) LIMIT 1",
            (self._kept(),),
        )
        return found is not None

    def _record_floor(self) -> None:
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (FLOOR_KEY, str(cache_size(self.conn).bytes)),
        )


__all__ = ["CachePruner", "CacheSize", "PruneReport", "cache_size"]
