"""WAL checkpoints off the writer's path: a thread with its own connection copies the
committed WAL frames into the database file while the writer goes on committing.

A WAL database is checkpointed by the connection whose commit took the WAL past its
auto-checkpoint size, inside that commit: the writer stops for the copy and the
file's fsync. ``BackgroundCheckpoints`` replaces that, for one writer connection and
while it is active, by a ``PASSIVE`` checkpoint that a thread of its own runs (apsw
releases the GIL inside SQLite, and the wait for the disk needs no CPU). A
``PASSIVE`` checkpoint never blocks the writer and copies only frames no checkpoint
has copied yet; once the WAL has been copied whole, the writer's next transaction
starts it again from the beginning, so the WAL stays near ``pages`` frames.
Crash safety is SQLite's, as for any checkpoint: a process killed in the middle of
one leaves the WAL to the next connection.

The thread must not run while the process forks (SQLite's process-wide mutexes would
be copied held into the child): start it only after any worker processes exist.

Used by the SQL graph ingest (``GraphIndex``); measured on its cold 1,000-file
benchmark (docs/design.md, round 8).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import TracebackType

import apsw

from headrace.ledger.db import AUTOCHECKPOINT_PAGES, BUSY_TIMEOUT_MS

log = logging.getLogger(__name__)

# WAL frames (8 MB of 4 KB pages) that wake the thread. Cold 1,000-file SQL graph
# benchmark, 10 rounds each against the writer's own checkpoints at 8,000: 2,000
# won 9 of 10 (median ratio 1.115; in another 10 rounds 7 of 10, 1.052), 1,000 and
# 500 8 of 10 (1.086), 4,000 7 of 10 (1.011), 8,000 3 of 10 (0.974).
CHECKPOINT_PAGES = 2000


class BackgroundCheckpoints:
    """While active (``with``, or ``start`` … ``stop``): ``conn``'s commits leave the
    WAL to a thread's ``PASSIVE`` checkpoints once it holds ``pages`` frames (default
    ``CHECKPOINT_PAGES``), instead of checkpointing it themselves. ``stop`` joins the
    thread and gives ``conn`` back its auto-checkpoint size (``restore_pages``:
    ``connect``'s). A checkpoint that fails is logged and ends the thread: the
    writer's own checkpoints take over at ``stop``, so nothing but time depends on
    it."""

    def __init__(
        self,
        conn: apsw.Connection,
        path: str | Path,
        *,
        pages: int | None = None,
        restore_pages: int = AUTOCHECKPOINT_PAGES,
    ) -> None:
        self.conn, self.path, self.restore_pages = conn, str(path), restore_pages
        self.pages = CHECKPOINT_PAGES if pages is None else pages
        self.checkpoints = 0  # checkpoints the thread ran
        self.error: BaseException | None = None
        self._wake = threading.Event()
        self._stopping = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="wal-checkpoints", daemon=True)
        self._thread.start()
        # Replaces SQLite's auto-checkpoint (itself a WAL hook) on this connection.
        self.conn.set_wal_hook(self._hook)

    def stop(self) -> None:
        """Join the thread (after the checkpoint it may be running) and give the
        writer its auto-checkpoint back."""
        thread = self._thread
        if thread is None:
            return
        self.conn.set_wal_hook(None)
        self.conn.wal_autocheckpoint(self.restore_pages)
        self._stopping = True
        self._wake.set()
        thread.join()
        self._thread = None

    def __enter__(self) -> BackgroundCheckpoints:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _hook(self, _conn: apsw.Connection, _name: str, pages: int) -> int:
        # After each commit, with the WAL's size in frames: cheap, no I/O here.
        if pages >= self.pages:
            self._wake.set()
        return apsw.SQLITE_OK

    def _run(self) -> None:
        conn: apsw.Connection | None = None
        try:
            conn = apsw.Connection(self.path, flags=apsw.SQLITE_OPEN_READWRITE)
            conn.set_busy_timeout(BUSY_TIMEOUT_MS)
            conn.execute("PRAGMA synchronous=NORMAL")
            while True:
                self._wake.wait()
                self._wake.clear()
                if self._stopping:
                    return
                conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_PASSIVE)
                self.checkpoints += 1
        except apsw.Error as exc:  # the writer's own checkpoints take over at stop
            self.error = exc
            log.warning("%s: background checkpoints stopped: %s", self.path, exc)
        finally:
            if conn is not None:
                conn.close()


__all__ = ["CHECKPOINT_PAGES", "BackgroundCheckpoints"]
