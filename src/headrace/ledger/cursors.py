"""Durable byte cursors: where a large or growing file's ingest can resume.

A cursor is written only in the transaction that stages (``partial``) or publishes
(``final``) every chunk before it, so it never claims more than the index holds.
It is the *durable* position; the reader's live position runs ahead of it and is
never stored. A cursor is trusted again only if the file still has the same inode,
at least ``offset`` bytes, and the same digests of its head and of the bytes just
before ``offset`` (``sources.fingerprint.edge_digests``); the runtime checks that.

A ``final`` cursor is used only when the file grew past ``size``: a file of the
same size with new content was rewritten, whatever its edges say.

``partial``: chunks ``[base_ordinal, ordinal)`` are staged, in ``pending`` or, for a
fresh keyword-only file, in place in ``chunks`` under the id reserved in ``staging``
(for an append that was interrupted, ``[0, base_ordinal)`` are published). ``final``: the file
is published; ``offset`` is its last seam, where an append resumes, and
``base_ordinal == ordinal``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import apsw

from headrace.ledger.db import scalar
from headrace.records import ParseIssue
from headrace.sources.fingerprint import HashChain

_COLS = (
    "path, mode, signature, inode, size, offset, line, ordinal, base_ordinal,"
    " head_digest, seam_digest, issues, chain_offset, chain_state, bloom"
)


@dataclass(frozen=True, slots=True)
class Cursor:
    """A resumable point of one file (see the module docstring for ``mode``)."""

    path: str
    mode: str
    signature: str
    inode: int
    size: int  # the file's size when the cursor was taken
    offset: int
    line: int
    ordinal: int
    base_ordinal: int
    head_digest: str
    seam_digest: str
    issues: tuple[ParseIssue, ...] = ()
    chain: HashChain = field(default_factory=HashChain)  # content hash of [0, chain.offset)
    bloom: bytes | None = None  # final: the occurrence filter of every text before it


def _dump_issues(issues: tuple[ParseIssue, ...]) -> str:
    return json.dumps([[i.message, i.line, i.offset, i.error_type] for i in issues])


def _load_issues(text: str) -> tuple[ParseIssue, ...]:
    return tuple(ParseIssue(m, line, off, kind) for m, line, off, kind in json.loads(text))


class CursorStore:
    """Reads and writes ``cursors`` on one connection; never opens transactions."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn

    def get(self, path: str) -> Cursor | None:
        """The file's cursor; a ``final`` one only while the file is indexed."""
        row = self.conn.execute(
            f"SELECT {_COLS} FROM cursors AS c WHERE path = ? AND (mode = 'partial'"
            " OR EXISTS (SELECT 1 FROM files AS f WHERE f.path = c.path"
            " AND f.state = 'indexed' AND f.signature = c.signature))",
            (path,),
        ).fetchone()
        if row is None:
            return None
        path_, mode, signature, inode, size, offset, line, ordinal, base, head, seam = row[:11]
        issues, chain_offset, chain_state, bloom = row[11:]
        return Cursor(
            path_, mode, signature, inode, size, offset, line, ordinal, base, head, seam,
            _load_issues(issues), HashChain(chain_offset, chain_state), bloom,
        )  # fmt: skip

    def save(self, cursor: Cursor) -> None:
        c = cursor
        self.conn.execute(
            f"INSERT OR REPLACE INTO cursors({_COLS}, updated_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                c.path,
                c.mode,
                c.signature,
                c.inode,
                c.size,
                c.offset,
                c.line,
                c.ordinal,
                c.base_ordinal,
                c.head_digest,
                c.seam_digest,
                _dump_issues(c.issues),
                c.chain.offset,
                c.chain.state,
                c.bloom,
                time.time(),
            ),
        )

    def delete(self, path: str) -> None:
        self.conn.execute("DELETE FROM cursors WHERE path = ?", (path,))

    def count_stored(self, path: str, text_hash: str, base: int, below: int) -> int:
        """Stored chunks of ``path`` with this text and an ordinal below ``below``:
        published ones under ``base`` plus staged ones from ``base`` on."""
        published = 0
        if base:
            # Unary + keeps the planner on chunks_text_hash: by (file_id, ordinal) it
            # scanned every chunk below the base (76 ms a lookup at 97k chunks, 6 us).
            published = int(
                scalar(
                    self.conn,
                    "SELECT count(*) FROM chunks WHERE text_hash = ?2 AND +ordinal < ?3"
                    " AND +file_id = (SELECT id FROM files WHERE path = ?1)",
                    (path, text_hash, base),
                )
            )
        if below <= base:  # an append's lookups: nothing of this file is staged yet
            return published
        staged = int(
            scalar(
                self.conn,
                # Else the planner takes the primary key (path, seq): every staged
                # row of the file per lookup.
                "SELECT count(*) FROM pending INDEXED BY pending_hash WHERE path = ?"
                " AND text_hash = ? AND ordinal >= ? AND ordinal < ?",
                (path, text_hash, base, below),
            )
        )
        # A fresh file of a keyword-only index is staged in place (sinks.sqlite).
        in_place = int(
            scalar(
                self.conn,
                "SELECT count(*) FROM chunks WHERE text_hash = ?2 AND +ordinal >= ?3"
                " AND +ordinal < ?4 AND +file_id = (SELECT file_id FROM staging WHERE path = ?1)",
                (path, text_hash, base, below),
            )
        )
        return published + staged + in_place

    def stored_hashes(self, cursor: Cursor) -> Iterator[str]:
        """Text hashes of the chunks before ``cursor`` (published and staged), streamed."""
        if cursor.base_ordinal:
            rows = self.conn.execute(
                "SELECT text_hash FROM chunks WHERE ordinal < ?2"
                " AND file_id = (SELECT id FROM files WHERE path = ?1)",
                (cursor.path, cursor.base_ordinal),
            )
            for (digest,) in rows:
                yield digest
        rows = self.conn.execute(
            "SELECT text_hash FROM pending WHERE path = ? AND ordinal >= ? AND ordinal < ?",
            (cursor.path, cursor.base_ordinal, cursor.ordinal),
        )
        for (digest,) in rows:
            yield digest
        rows = self.conn.execute(
            "SELECT text_hash FROM chunks WHERE ordinal >= ?2 AND ordinal < ?3"
            " AND file_id = (SELECT file_id FROM staging WHERE path = ?1)",
            (cursor.path, cursor.base_ordinal, cursor.ordinal),
        )
        for (digest,) in rows:
            yield digest


__all__ = ["Cursor", "CursorStore"]
