"""``Scheduler``: pending changes, debounced per file, handed out oldest first.

Ordering (decided): user-marked files first (``--priority GLOB``, matched against
the path and the base name), then **oldest change first**, so a steady stream of
new files can never starve an old one (seed 000's rule). "Most recent first" would
lower the latency of the newest file under a backlog, but it starves the tail and
makes the backlog age unbounded; a user who wants some files fast marks them.

Debounce and settle: events for one path collapse into one ``Change`` (a burst of
writes is one unit of work). A change is *settled* once no event arrived for
``debounce_s`` and the file's (size, mtime) did not move since the last look; a
file that never stops changing (a growing log) is taken after ``max_wait_s``
anyway and simply noted again by its next event. ``debounce_s=0`` (``--realtime``)
takes a change at once.

Bounded: at most ``max_pending`` changes are held. An overflowing change is
*deferred*, never dropped: it is counted, ``overflowed`` is raised, and the watcher
runs a rescan once there is room again; the rescan compares the tree with the
ledger, which finds every deferred file (and anything a notification missed).
"""

from __future__ import annotations

import fnmatch
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

Stat = tuple[int, int] | None  # (size, mtime_ns), None when the path is gone


@dataclass(slots=True)
class Change:
    """One path's unprocessed change.

    ``since`` is the wall-clock time of the first change not yet processed (its age
    is the backlog age; ``now - since`` when committed is the write→searchable
    latency); ``first_event``/``last_event`` are monotonic; ``priority`` 0 is marked
    by the user, 1 normal; ``stat`` is what the last look saw; ``size`` its bytes.
    """

    path: str
    since: float
    first_event: float
    last_event: float
    priority: int
    stat: Stat

    @property
    def size(self) -> int:
        return self.stat[0] if self.stat else 0


def stat_of(path: str) -> Stat:
    """(size, mtime_ns) of ``path``, or ``None`` if it is missing or unreadable."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_size, st.st_mtime_ns)


class Scheduler:
    """Pending changes (see the module docstring). Not thread-safe: one owner thread."""

    def __init__(
        self,
        *,
        max_pending: int,
        debounce_s: float,
        max_wait_s: float,
        priority: Sequence[str] = (),
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        stat: Callable[[str], Stat] = stat_of,
    ) -> None:
        self.max_pending = max_pending
        self.debounce_s = debounce_s
        self.max_wait_s = max_wait_s
        self.priority = tuple(priority)
        self._clock, self._wall, self._stat = clock, wall, stat
        self._pending: dict[str, Change] = {}
        self.deferred_total = 0
        self.overflowed = False

    def __len__(self) -> int:
        return len(self._pending)

    def __contains__(self, path: object) -> bool:
        return path in self._pending

    def note(self, path: str, *, since: float | None = None) -> bool:
        """Record a change of ``path``; False if it was deferred (queue full)."""
        now = self._clock()
        change = self._pending.get(path)
        if change is not None:
            change.last_event = now
            if since is not None:
                change.since = min(change.since, since)
            return True
        if len(self._pending) >= self.max_pending:
            self.deferred_total += 1
            self.overflowed = True
            return False
        wall = self._wall()
        self._pending[path] = Change(
            path, min(since, wall) if since else wall, now, now, self._rank(path), self._stat(path)
        )
        return True

    def take(self, max_files: int, max_bytes: int) -> list[Change]:
        """Remove and return settled changes in order, within the file and byte budget.

        At least one settled change is returned whatever its size.
        """
        now = self._clock()
        due = [c for c in self._pending.values() if self._quiet(c, now)]
        due.sort(key=_order)
        batch: list[Change] = []
        size = 0
        for change in due:
            if len(batch) >= max_files:
                break
            if not self._settled(change, now):
                continue
            if batch and size + change.size > max_bytes:
                break
            batch.append(change)
            size += change.size
        for change in batch:
            del self._pending[change.path]
        return batch

    def restore(self, changes: Iterable[Change]) -> None:
        """Put back changes whose processing did not happen (kept over the bound)."""
        for change in changes:
            current = self._pending.get(change.path)
            if current is None:
                self._pending[change.path] = change
            else:
                current.since = min(current.since, change.since)

    def next_due(self) -> float | None:
        """Seconds until the earliest pending change may settle (0: now), or None."""
        if not self._pending:
            return None
        now = self._clock()
        soonest = min(self._due_at(c) for c in self._pending.values())
        return max(0.0, soonest - now)

    def oldest_age(self) -> float:
        """Age in seconds of the oldest pending change (0 when nothing is pending)."""
        if not self._pending:
            return 0.0
        return max(0.0, self._wall() - min(c.since for c in self._pending.values()))

    def pending_bytes(self) -> int:
        return sum(c.size for c in self._pending.values())

    def _rank(self, path: str) -> int:
        base = os.path.basename(path)
        marked = any(
            fnmatch.fnmatchcase(path, g) or fnmatch.fnmatchcase(base, g) for g in self.priority
        )
        return 0 if marked else 1

    def _due_at(self, change: Change) -> float:
        return min(change.last_event + self.debounce_s, change.first_event + self.max_wait_s)

    def _quiet(self, change: Change, now: float) -> bool:
        return self._due_at(change) <= now

    def _settled(self, change: Change, now: float) -> bool:
        if self.debounce_s == 0 or now - change.first_event >= self.max_wait_s:
            return True
        current = self._stat(change.path)
        if current != change.stat:  # still being written: wait another quiet period
            change.stat = current
            change.last_event = now
            return False
        return True


def _order(change: Change) -> tuple[int, float, str]:
    return (change.priority, change.since, change.path)


__all__ = ["Change", "Scheduler", "stat_of"]
