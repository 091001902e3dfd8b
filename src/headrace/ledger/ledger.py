"""The ledger: what is stored, per file; dead letters; runs; index metadata.

A file's row moves to its new state only inside the transaction that publishes its
chunks, so the ledger never claims more than the store holds.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import apsw

from headrace.ledger.db import scalar
from headrace.records import FileRef


@dataclass(frozen=True, slots=True)
class StoredFile:
    """The ledger's view of a file."""

    id: int
    path: str
    root: str
    size: int
    mtime_ns: int
    inode: int
    content_hash: str | None
    state: str
    signature: str

    def stat(self) -> tuple[int, int, int]:
        return (self.size, self.mtime_ns, self.inode)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A failure that is kept until the file changes or is retried successfully."""

    path: str
    stage: str
    error_type: str
    message: str
    line: int | None
    offset: int | None
    attempts: int
    first_seen: float
    last_seen: float


_FILE_COLS = "id, path, root, size, mtime_ns, inode, content_hash, state, signature"
_PAGE = 2_000  # paths per query while iterating a StoredView


class StoredView(Mapping[str, StoredFile]):
    """The ledger's files below some roots as a read-only mapping, queried on use.

    A plan looks up each discovered path (one indexed query, ~9 us) and walks the
    paths once for what vanished, in pages, so planning holds no copy of the ledger:
    a dict of 16,427 ``StoredFile`` took 11.4 MB (and 0.19 CPU s to build, more than
    the 0.14 s of the lookups), which a watcher's periodic rescan allocated and freed
    every minute. It reflects the ledger at the time of each call; every cursor is
    read to its end (an apsw cursor left open would be finalised by the GC, possibly
    on another thread).
    """

    def __init__(self, ledger: Ledger, roots: Iterable[str]) -> None:
        prefixes = sorted({r.rstrip("/") + "/" for r in roots})
        # A root inside another adds nothing (and would list its files twice).
        self._prefixes = tuple(
            p for p in prefixes if not any(p != q and p.startswith(q) for q in prefixes)
        )
        self._conn = ledger.conn

    def _within(self, path: str) -> bool:
        return path.startswith(self._prefixes)

    def __getitem__(self, path: str) -> StoredFile:
        if self._within(path):
            rows = self._conn.execute(
                f"SELECT {_FILE_COLS} FROM files WHERE path = ?", (path,)
            ).fetchall()
            if rows:
                found: tuple[Any, ...] = rows[0]
                return StoredFile(*found)
        raise KeyError(path)

    def __iter__(self) -> Iterator[str]:
        for prefix in self._prefixes:
            after, end = prefix, prefix[:-1] + "0"
            while True:
                page = self._conn.execute(
                    "SELECT path FROM files WHERE path >= ? AND path < ? AND path > ?"
                    " ORDER BY path LIMIT ?",
                    (prefix, end, after, _PAGE),
                ).fetchall()
                yield from (str(row[0]) for row in page)
                if len(page) < _PAGE:
                    break
                after = str(page[-1][0])

    def __len__(self) -> int:
        return sum(
            int(
                scalar(
                    self._conn,
                    "SELECT count(*) FROM files WHERE path >= ? AND path < ?",
                    (p, p[:-1] + "0"),
                )
            )
            for p in self._prefixes
        )


class Ledger:
    """Reads and writes the ledger tables on one apsw connection.

    Methods never open transactions themselves: the caller groups them with the
    store's changes in ``ledger.db.transaction``.
    """

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn

    def files_under(self, roots: Iterable[str]) -> StoredView:
        """The stored files below ``roots`` (whole path components), read lazily."""
        return StoredView(self, roots)

    def by_hash(self, content_hash: str) -> list[StoredFile]:
        rows = self.conn.execute(
            f"SELECT {_FILE_COLS} FROM files WHERE content_hash = ?", (content_hash,)
        )
        return [StoredFile(*row) for row in rows]

    def get(self, path: str) -> StoredFile | None:
        row = self.conn.execute(f"SELECT {_FILE_COLS} FROM files WHERE path = ?", (path,))
        found = row.fetchone()
        return None if found is None else StoredFile(*found)

    def upsert(
        self,
        ref: FileRef,
        *,
        content_hash: str | None,
        state: str,
        signature: str,
        reason: str | None = None,
    ) -> int:
        """Insert or update a file's row, returning its id.

        A new row takes the id reserved in ``staging`` for the file's chunks staged
        in place (``sinks.sqlite``), if any; otherwise SQLite assigns one.
        """
        self.conn.execute(
            "INSERT INTO files(id, path, root, size, mtime_ns, inode, content_hash, state,"
            " reason, signature, indexed_at) VALUES"
            " ((SELECT file_id FROM staging WHERE path = ?1),?1,?,?,?,?,?,?,?,?,?)"
            " ON CONFLICT(path) DO UPDATE SET root=excluded.root, size=excluded.size,"
            " mtime_ns=excluded.mtime_ns, inode=excluded.inode,"
            " content_hash=excluded.content_hash, state=excluded.state,"
            " reason=excluded.reason, signature=excluded.signature,"
            " indexed_at=excluded.indexed_at",
            (
                ref.path,
                ref.root,
                ref.size,
                ref.mtime_ns,
                ref.inode,
                content_hash,
                state,
                reason,
                signature,
                time.time(),
            ),
        )
        return int(scalar(self.conn, "SELECT id FROM files WHERE path = ?", (ref.path,)))

    def mark_failed(self, ref: FileRef, reason: str, signature: str) -> None:
        """Record a failed attempt. An indexed file keeps its chunks and content hash:
        an unreadable or broken file is an error, never a deletion."""
        old = self.get(ref.path)
        if old is None or old.state != "indexed":
            self.upsert(ref, content_hash=None, state="failed", signature=signature, reason=reason)
            return
        self.conn.execute(
            "UPDATE files SET state='failed', reason=?, size=?, mtime_ns=?, inode=? WHERE path=?",
            (reason, ref.size, ref.mtime_ns, ref.inode, ref.path),
        )

    def set_chunk_count(self, file_id: int, count: int) -> None:
        self.conn.execute("UPDATE files SET chunk_count = ? WHERE id = ?", (count, file_id))

    def touch(self, ref: FileRef) -> None:
        """Record a new stat for unchanged content."""
        self.conn.execute(
            "UPDATE files SET size=?, mtime_ns=?, inode=? WHERE path=?",
            (ref.size, ref.mtime_ns, ref.inode, ref.path),
        )
        # Same bytes: a final cursor stays true (an interrupted new version is moot).
        self.conn.execute("DELETE FROM cursors WHERE path=? AND mode='partial'", (ref.path,))
        self.conn.execute(
            "UPDATE cursors SET inode=? WHERE path=? AND mode='final'", (ref.inode, ref.path)
        )

    def move(self, old_path: str, ref: FileRef) -> None:
        self.conn.execute(
            "UPDATE files SET path=?, root=?, size=?, mtime_ns=?, inode=? WHERE path=?",
            (ref.path, ref.root, ref.size, ref.mtime_ns, ref.inode, old_path),
        )
        self.conn.execute("UPDATE dead_letters SET path=? WHERE path=?", (ref.path, old_path))
        self.conn.execute("DELETE FROM cursors WHERE path=?", (ref.path,))
        self.conn.execute(
            "UPDATE cursors SET path=?, inode=? WHERE path=? AND mode='final'",
            (ref.path, ref.inode, old_path),
        )
        self.conn.execute("DELETE FROM cursors WHERE path=?", (old_path,))

    def forget(self, path: str) -> None:
        self.conn.execute("DELETE FROM files WHERE path = ?", (path,))
        self.conn.execute("DELETE FROM dead_letters WHERE path = ?", (path,))
        self.conn.execute("DELETE FROM cursors WHERE path = ?", (path,))

    # -- dead letters -------------------------------------------------------------

    def replace_dead_letters(self, path: str, letters: Iterable[DeadLetter]) -> None:
        """Replace a file's dead letters, keeping attempt counts and first-seen times."""
        prior = {
            (row[0], row[1]): (row[2], row[3])
            for row in self.conn.execute(
                "SELECT stage, coalesce(line, -1), attempts, first_seen"
                " FROM dead_letters WHERE path = ?",
                (path,),
            )
        }
        self.conn.execute("DELETE FROM dead_letters WHERE path = ?", (path,))
        for dl in letters:
            attempts, first = prior.get((dl.stage, -1 if dl.line is None else dl.line), (0, None))
            self.conn.execute(
                "INSERT INTO dead_letters(path, stage, error_type, message, line, offset,"
                " attempts, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    path,
                    dl.stage,
                    dl.error_type,
                    dl.message,
                    dl.line,
                    dl.offset,
                    attempts + 1,
                    first or dl.first_seen,
                    dl.last_seen,
                ),
            )

    def clear_dead_letters(self, stage: str) -> None:
        """Forget every dead letter of one stage (its cause was repaired)."""
        self.conn.execute("DELETE FROM dead_letters WHERE stage = ?", (stage,))

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.conn.execute(
            "SELECT path, stage, error_type, message, line, offset, attempts, first_seen,"
            " last_seen FROM dead_letters ORDER BY path, line"
        )
        return [DeadLetter(*row) for row in rows]

    def failed_paths(self) -> list[str]:
        rows = self.conn.execute(
            "SELECT path FROM files WHERE state = 'failed'"
            " UNION SELECT path FROM dead_letters ORDER BY 1"
        )
        return [row[0] for row in rows]

    # -- meta and runs ------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        value = scalar(self.conn, "SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute(
            "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value",
            (key, value),
        )

    def start_run(self) -> int:
        self.conn.execute(
            "INSERT INTO runs(started_at, status) VALUES (?, 'running')", (time.time(),)
        )
        return int(self.conn.last_insert_rowid())

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        self.conn.execute(
            "UPDATE runs SET finished_at=?, status=?, summary=? WHERE id=?",
            (time.time(), status, json.dumps(summary), run_id),
        )

    def last_run(self) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, started_at, finished_at, status, summary FROM runs ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return {
            "id": row[0],
            "started_at": row[1],
            "finished_at": row[2],
            "status": row[3],
            "summary": json.loads(row[4]),
        }

    def counts(self) -> dict[str, int]:
        rows = self.conn.execute("SELECT state, count(*) FROM files GROUP BY state")
        out = {state: int(n) for state, n in rows}
        # Chunks staged in place (a fresh file not yet published) are not counted.
        out["chunks"] = int(
            scalar(
                self.conn,
                "SELECT (SELECT count(*) FROM chunks) - (SELECT count(*) FROM chunks"
                " WHERE file_id IN (SELECT file_id FROM staging))",
            )
        )
        out["dead_letters"] = int(scalar(self.conn, "SELECT count(*) FROM dead_letters"))
        return out

    def iter_paths(self) -> Iterator[str]:
        for (path,) in self.conn.execute("SELECT path FROM files ORDER BY path"):
            yield path
