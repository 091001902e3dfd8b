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
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from headrace.errors import StoreError
from headrace.sinks.base import Replica, StoredChunk

log = logging.getLogger(__name__)

_ROW = "c.id, c.ordinal, c.line_start, c.line_end, c.byte_start, c.byte_end, c.heading, c.metadata"
Snapshot = dict[str, tuple[Any, ...]]


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

    def drop(self, before: Snapshot) -> None:
        """The file's chunks were removed from the index: remove their points."""
        self.replica.delete(list(before))

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
        self.replica.upsert(self.load(missing))
        self.replica.delete(orphaned)
        return ReconcileReport(len(missing), len(orphaned))


def _stored(row: Iterable[Any]) -> StoredChunk:
    path, text, vector, cid, ordinal, l0, l1, b0, b1, heading, meta = row
    return StoredChunk(cid, path, text, ordinal, l0, l1, b0, b1, heading, json.loads(meta), vector)


__all__ = ["Diff", "ReconcileReport", "Replicator"]
