"""The write stage: stage chunks, publish finished files, record them in the ledger.

Each window is one transaction: its new vectors enter the cache, its chunks are
staged, and every file whose ``FileDone`` is in the window is published and
recorded. A crash anywhere rolls the window back; files published in earlier
windows stay published, and nothing is ever half a file.

A ``SegmentDone`` commits a large file's durable cursor with the chunks staged
before it (issue 3); the file is still published only at its ``FileDone``.

With a replica, each file's publish runs in a savepoint: when the replica refuses
the file's data (``ReplicaRejectedError``), that file alone is rolled back (its
previous version stays), its touched points are restored, and it becomes a dead
letter (stage ``sink``); the window's other files commit. Any other error still
rolls the whole window back.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict

import apsw

from headrace.errors import ReplicaRejectedError, VanishedFileError
from headrace.ledger.cursors import CursorStore
from headrace.ledger.db import transaction
from headrace.ledger.ledger import DeadLetter, Ledger
from headrace.records import Chunk
from headrace.runtime.durable import DurableOffsets
from headrace.runtime.items import (
    FileDone,
    FileFailed,
    FileSkipped,
    FileStart,
    SegmentDone,
    Window,
)
from headrace.runtime.replicate import Replicator, Snapshot, replica_letter
from headrace.runtime.stats import RunStats
from headrace.sinks.sqlite import SqliteSink


class WriteStage:
    """Applies windows to the index; the only writer of the index during a run."""

    def __init__(
        self,
        conn: apsw.Connection,
        sink: SqliteSink,
        ledger: Ledger,
        stats: RunStats,
        replicator: Replicator | None = None,
        *,
        durable: DurableOffsets | None = None,
    ) -> None:
        self.conn = conn
        self.sink = sink
        self.ledger = ledger
        self.stats = stats
        # A replica (Qdrant) is written inside the window's transaction, before it
        # commits: the ledger records a file only after the replica acknowledged it.
        self.replicator = replicator
        self.cursors = CursorStore(conn)
        self.durable = durable  # told each segment cursor once its window committed
        self._committed: list[tuple[str, int]] = []
        self._progress: dict[str, int] = {}  # bytes of a file counted as done so far

    def apply(self, window: Window) -> None:
        started = time.perf_counter()
        try:
            self._apply(window)
        finally:
            self.stats.add(write_seconds=time.perf_counter() - started)

    def _apply(self, window: Window) -> None:
        self._committed.clear()
        with self.sink.unchecked_references(), transaction(self.conn):
            self.sink.stage("", [], window.vectors)
            buffered: dict[str, list[Chunk]] = defaultdict(list)
            for item in window.items:
                if isinstance(item, Chunk):
                    buffered[item.source].append(item)
                elif isinstance(item, FileStart):
                    self._start(item)
                elif isinstance(item, SegmentDone):
                    self.sink.stage(item.ref.path, buffered.pop(item.ref.path, []), {})
                    self._segment(item)
                elif isinstance(item, FileDone):
                    self.sink.stage(item.ref.path, buffered.pop(item.ref.path, []), {})
                    self._done(item)
                elif isinstance(item, FileFailed):
                    buffered.pop(item.ref.path, None)
                    self._failed(item)
                else:
                    self._skipped(item)
            for path, chunks in buffered.items():
                self.sink.stage(path, chunks, {})
        if self.durable is not None:  # only now are those cursors durable
            for path, offset in self._committed:
                self.durable.mark(path, offset)

    def _start(self, item: FileStart) -> None:
        path, resume = item.ref.path, item.resume
        if resume is None:
            self.sink.discard(path)
            self.cursors.delete(path)
            return
        self.sink.discard(path, from_ordinal=resume.ordinal)  # staged past the cursor
        self._progress[path] = resume.offset
        self.stats.add(bytes_done=resume.offset, bytes_resumed=resume.offset)

    def _segment(self, item: SegmentDone) -> None:
        self.cursors.save(item.cursor)
        path, offset = item.ref.path, item.cursor.offset
        self.stats.add(bytes_done=offset - self._progress.get(path, 0), segments=1)
        self._progress[path] = offset
        self._committed.append((path, offset))

    def _done(self, item: FileDone) -> None:
        if self.replicator is not None:
            self.conn.execute("SAVEPOINT file_done")  # released or rolled back in _replicate
        file_id = self.ledger.upsert(
            item.ref, content_hash=item.content_hash, state="indexed", signature=item.signature
        )
        before = self.replicator.snapshot(file_id) if self.replicator else None
        count = self.sink.publish(item.ref.path, file_id, keep_before=item.base_ordinal)
        if before is not None and not self._replicate(item, file_id, before):
            return
        self.ledger.set_chunk_count(file_id, count)
        letters = _parse_letters(item)
        self.ledger.replace_dead_letters(item.ref.path, letters)
        if item.final is not None:
            self.cursors.save(item.final)
        else:
            self.cursors.delete(item.ref.path)
        self.stats.add(
            files_done=1,
            bytes_done=item.ref.size - self._progress.pop(item.ref.path, 0),
            chunks_written=count,
            dead_letters=len(letters) + item.issues_dropped,
        )

    def _replicate(self, item: FileDone, file_id: int, before: Snapshot) -> bool:
        """Send the file's difference to the replica; ``False`` if it was refused."""
        assert self.replicator is not None
        diff = self.replicator.diff(file_id, before)
        try:
            self.replicator.send(diff)
        except ReplicaRejectedError as exc:
            where = self._position(exc.chunk_ids)
            self.conn.execute("ROLLBACK TO file_done")
            self.conn.execute("RELEASE file_done")
            self.replicator.restore(before, diff)
            self._refused(item, exc, where)
            return False
        self.conn.execute("RELEASE file_done")
        return True

    def _position(self, chunk_ids: tuple[str, ...]) -> tuple[int | None, int | None]:
        """Line and byte offset of the first refused chunk (before the rollback)."""
        if chunk_ids:
            row = self.conn.execute(
                "SELECT line_start, byte_start FROM chunks WHERE id = ?", (chunk_ids[0],)
            ).fetchone()
            if row is not None:
                return int(row[0]), int(row[1])
        return None, None

    def _refused(
        self, item: FileDone, exc: ReplicaRejectedError, where: tuple[int | None, int | None]
    ) -> None:
        path = item.ref.path
        self.sink.discard(path)
        self.cursors.delete(path)  # the next attempt reads the file from the start
        self._progress.pop(path, None)
        now = time.time()
        letter = DeadLetter(
            path, "sink", type(exc).__name__, exc.message, where[0], where[1], 1, now, now
        )
        letters = [*_parse_letters(item), letter]
        self.ledger.mark_failed(item.ref, exc.message, item.signature)
        self.ledger.replace_dead_letters(path, letters)
        self.stats.add(files_failed=1, dead_letters=len(letters))

    def _failed(self, item: FileFailed) -> None:
        self.sink.discard(item.ref.path)
        self.cursors.delete(item.ref.path)
        self._progress.pop(item.ref.path, None)
        err = item.error
        if isinstance(err, VanishedFileError) and not os.path.lexists(item.ref.path):
            # Deleted between the plan and the read: nothing is wrong with it. Its
            # indexed version (if any) stays until a plan sees the deletion, with the
            # plan's protection against a vanished root; no dead letter.
            self.stats.add(vanished=1)
            return
        now = time.time()
        letter = DeadLetter(
            item.ref.path,
            err.stage,
            type(err).__name__,
            err.message,
            err.line,
            err.offset,
            1,
            now,
            now,
        )
        self.ledger.mark_failed(item.ref, err.message, item.signature)
        self.ledger.replace_dead_letters(item.ref.path, [letter])
        self.stats.add(files_failed=1, dead_letters=1)

    def _skipped(self, item: FileSkipped) -> None:
        self.sink.discard(item.ref.path)
        self.cursors.delete(item.ref.path)
        file_id = self.ledger.upsert(
            item.ref,
            content_hash=item.content_hash,
            state="skipped",
            signature=item.signature,
            reason=item.reason,
        )
        refused = None
        if self.replicator is not None:
            refused = self.replicator.drop(self.replicator.snapshot(file_id))
        self.sink.remove(file_id)
        self.ledger.set_chunk_count(file_id, 0)
        letters = [] if refused is None else [replica_letter(item.ref.path, refused)]
        self.ledger.replace_dead_letters(item.ref.path, letters)
        self.stats.add(files_skipped=1, dead_letters=len(letters))


def _parse_letters(item: FileDone) -> list[DeadLetter]:
    now = time.time()
    return [
        DeadLetter(item.ref.path, "parse", i.error_type, i.message, i.line, i.offset, 1, now, now)
        for i in item.issues
    ]
