"""Keeps a ``Replica`` (Qdrant) equal to the chunks the embedded index publishes.

The embedded SQLite index is the ledger, the staging area and the vector cache;
the replica receives each file's *difference* inside the window's transaction:
``snapshot`` before ``publish``, ``sync`` after it (upsert what is new or moved,
delete what is gone). The transaction commits only after the replica
acknowledged, so the ledger never records more than the replica holds; a crash
after the acknowledgement re-sends the same ids next run. ``reconcile`` compares
both sides by id on start and repairs missing and orphaned points.

When the replica refuses a file's data (``ReplicaRejectedError``), the write stage
rolls that file back to its savepoint and ``restore`` puts the points it touched
back to what the index holds again (the file's previous version, or nothing).

When it refuses to *delete* the points of a file that left the index (deleted,
renamed, now skipped), the index still follows the source: ``drop`` and ``move``
return the refusal instead of raising, the caller records it as a dead letter of
stage ``replica`` for that path, and the run goes on. The points left behind are
orphans: search never shows them (``replica_search`` keeps only hits the index
holds) and ``reconcile`` deletes them at the next start (or ``retry``); a
reconciliation with nothing refused clears the ``replica`` dead letters.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from headrace.errors import ReplicaRejectedError, StoreError
from headrace.ledger.ledger import DeadLetter
from headrace.sinks.base import Replica, StoredChunk

log = logging.getLogger(__name__)

_ROW = "c.id, c.ordinal, c.line_start, c.line_end, c.byte_start, c.byte_end, c.heading, c.metadata"
Snapshot = dict[str, tuple[Any, ...]]
REPLICA_STAGE = "replica"  # the dead letters of a replica left different from the index


@dataclass(frozen=True, slots=True)
class Diff:
    """What one file's publish changes in the replica."""

    upsert: list[str]
    delete: list[str]


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What reconciliation found and repaired."""

    missing: int
    orphaned: int
    refused: int = 0  # ids the replica refused to take or delete (left for next time)


class Replicator:
    """Reads published chunks from the index and mirrors them into ``replica``."""

    def __init__(self, conn: apsw.Connection, replica: Replica, model_id: str) -> None:
        self.conn = conn
        self.replica = replica
        self.model_id = model_id

    def snapshot(self, file_id: int) -> Snapshot:
        """A file's published chunks: id → (path, position, heading, metadata)."""
        rows = self.conn.execute(
            f"SELECT f.path, {_ROW} FROM chunks c JOIN files f ON f.id = c.file_id"
            " WHERE c.file_id = ?",
            (file_id,),
        )
        return {row[1]: (row[0], *row[2:]) for row in rows}

    def sync(self, file_id: int, before: Snapshot) -> None:
        """Send the file's new and changed chunks, then delete the vanished ones."""
        self.send(self.diff(file_id, before))

    def diff(self, file_id: int, before: Snapshot) -> Diff:
        after = self.snapshot(file_id)
        changed = [cid for cid, row in after.items() if before.get(cid) != row]
        return Diff(changed, [cid for cid in before if cid not in after])

    def send(self, diff: Diff) -> None:
        self.replica.upsert(self.load(diff.upsert))
        self.replica.delete(diff.delete)

    def restore(self, before: Snapshot, diff: Diff) -> None:
        """After a rolled-back ``send``: the touched points as the index holds them again.

        Best effort: if the replica fails again, the next start's ``reconcile``
        deletes what is orphaned and re-sends what is missing.
        """
        touched = [*diff.upsert, *diff.delete]
        try:
            self.replica.upsert(self.load([c for c in touched if c in before]))
            self.replica.delete([c for c in touched if c not in before])
        except StoreError as exc:
            log.warning("replica: could not undo a refused file's points: %s", exc)

    def drop(self, before: Snapshot) -> ReplicaRejectedError | None:
        """The file's chunks were removed from the index: remove their points.

        A refusal is returned, not raised (see the module doc): the points it left
        are orphans that ``reconcile`` removes later.
        """
        return _refusal("deleting a removed file", lambda: self.replica.delete(list(before)))

    def move(self, file_id: int, before: Snapshot) -> ReplicaRejectedError | None:
        """A renamed file's chunks got new ids: send them and delete the old points.

        A refusal is returned, not raised: the rename stands in the index, and
        ``reconcile`` sends what is missing and deletes what is orphaned later.
        """
        return _refusal("moving a renamed file", lambda: self.sync(file_id, before))

    def load(self, chunk_ids: Sequence[str]) -> list[StoredChunk]:
        """Published chunks with their vectors (from the embedding cache)."""
        out: list[StoredChunk] = []
        for start in range(0, len(chunk_ids), 500):
            part = list(chunk_ids[start : start + 500])
            rows = self.conn.execute(
                f"SELECT f.path, c.text, e.vector, {_ROW} FROM chunks c"
                " JOIN files f ON f.id = c.file_id"
                " JOIN embed_cache e ON e.model = ? AND e.text_hash = c.text_hash"
                " WHERE c.id IN (SELECT value FROM json_each(?)) ORDER BY c.rowid",
                (self.model_id, json.dumps(part)),
            )
            out.extend(_stored(row) for row in rows)
        return out

    def reconcile(self) -> ReconcileReport:
        """Make the replica hold exactly the index's chunks (by id)."""
        held = set(self.replica.ids())
        ours = {row[0] for row in self.conn.execute("SELECT id FROM chunks")}
        missing = sorted(ours - held)
        orphaned = sorted(held - ours)
        refused = 0
        repairs: list[Callable[[], None]] = [
            lambda: self.replica.upsert(self.load(missing)),
            lambda: self.replica.delete(orphaned),
        ]
        for repair in repairs:
            try:
                repair()
            except ReplicaRejectedError as exc:  # the rest was repaired; these wait
                left = len(exc.chunk_ids)
                log.warning("replica: reconcile left %d points different: %s", left, exc)
                refused += left
        return ReconcileReport(len(missing), len(orphaned), refused)


def _refusal(what: str, send: Callable[[], None]) -> ReplicaRejectedError | None:
    """Run ``send``; a data refusal is logged and returned instead of raised."""
    try:
        send()
    except ReplicaRejectedError as exc:
        log.warning("replica: %d points refused (%s): %s", len(exc.chunk_ids), what, exc)
        return exc
    return None


def replica_letter(path: str, exc: ReplicaRejectedError) -> DeadLetter:
    """The dead letter of a path whose points the replica still holds or lacks."""
    now = time.time()
    message = (
        f"{exc.message}; {len(exc.chunk_ids)} points differ from the index until"
        " reconciliation (next start or `headrace retry`) repairs them"
    )
    return DeadLetter(path, REPLICA_STAGE, type(exc).__name__, message, None, None, 1, now, now)


def _stored(row: Iterable[Any]) -> StoredChunk:
    path, text, vector, cid, ordinal, l0, l1, b0, b1, heading, meta = row
    return StoredChunk(cid, path, text, ordinal, l0, l1, b0, b1, heading, json.loads(meta), vector)


__all__ = ["REPLICA_STAGE", "Diff", "ReconcileReport", "Replicator", "replica_letter"]
