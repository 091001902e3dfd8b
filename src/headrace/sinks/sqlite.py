"""The embedded default store: chunks, FTS5 and sqlite-vec in the index file.

Staging and publishing follow ``sinks.base``. Staged chunks live in ``pending``
(committed in batches, so a file of any size never sits in memory); vectors live in
``embed_cache`` keyed by model and text hash, so publishing copies them with one
``INSERT … SELECT`` and a text is never embedded twice by the same model (the cache is
bounded by ``sinks.sqlite_gc``, which evicts only vectors nothing uses, between runs).

In place (issue 3): a *fresh* file of a keyword-only index (no ``files`` row, nothing
in ``pending``) is staged straight into ``chunks`` and ``chunks_fts`` under a file id
reserved in ``staging`` (negative, so no ``files`` insert can take it); publishing it
is then only the ledger row (``Ledger.upsert`` takes the reserved id) and dropping
the reservation: every chunk is written once instead of twice. Until then the file
has no ``files`` row, so nothing that joins ``files`` sees it, and keyword search
filters staged ids out while ``staging`` has rows. The write stage runs its windows
with foreign keys off (``unchecked_references``): those rows reference a ``files``
row that is created only at publish.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import apsw

from headrace.errors import ModelMismatchError
from headrace.ledger.db import scalar
from headrace.records import Chunk

_CHUNK_COLS = (
    "ordinal, text, text_hash, token_count, line_start, line_end, byte_start, byte_end,"
    " heading, metadata"
)
_BATCH = 10_000  # rows deleted per round when a file's chunks are replaced
# One encoder for every chunk's metadata: ``json.dumps`` with arguments builds a new
# encoder per call (measured 80 vs 146 MB/s of JSONL on this machine); same output.
_META = json.JSONEncoder(separators=(",", ":"), default=str).encode
_EVERY = (
    "SELECT rowid, ordinal FROM chunks WHERE file_id = ? AND ordinal > ? ORDER BY ordinal LIMIT ?"
)
_WORD = re.compile(r"[\w-]+", re.UNICODE)
# Function words carry no topic: OR-ing them in makes every chunk a keyword match and
# drowns the fused ranking. English only; other languages pass through untouched.
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "me",
        "my",
        "no",
        "not",
        "of",
        "on",
        "or",
        "our",
        "should",
        "so",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "up",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
    ]
)


def fts_query(text: str) -> str | None:
    """A safe FTS5 query matching any of the topic words (ranked by BM25)."""
    words = [w.strip("-") for w in _WORD.findall(text.lower())]
    topical = [w for w in dict.fromkeys(words) if w and w not in STOPWORDS]
    chosen = topical or [w for w in words if w]
    if not chosen:
        return None
    return " OR ".join(f'"{w}"' for w in chosen)


def _meta_json(meta: Mapping[str, object]) -> str:
    # Parsers hand plain dicts; copying each (as dict(meta)) cost a dict per chunk.
    return str(_META(meta if type(meta) is dict else dict(meta)))


def _in_place_row(ch: Chunk, file_id: int) -> tuple[object, ...]:
    return (
        ch.id, file_id, ch.ordinal, ch.text, ch.text_hash, ch.token_count, ch.line_start,
        ch.line_end, ch.byte_start, ch.byte_end, ch.heading, _meta_json(ch.metadata),
    )  # fmt: skip


class SqliteSink:
    """Chunks, full-text and vectors inside the index's SQLite file."""

    def __init__(self, conn: apsw.Connection, model_id: str | None, dim: int | None) -> None:
        self.conn = conn
        self.model_id = model_id or "none"
        self.dim = dim
        self._seq: dict[str, int] = {}
        self._inplace: dict[str, int | None] = {}  # path -> reserved id, None: pending

    # -- model identity -----------------------------------------------------------

    def bind_model(self) -> None:
        """Record the index's model on first use; refuse another model afterwards."""
        self.check_model()
        if scalar(self.conn, "SELECT value FROM meta WHERE key = 'model'") is None:
            self.conn.execute("INSERT INTO meta VALUES ('model', ?)", (self.model_id,))
        if self.dim is not None:
            self.conn.execute(
                "CREATE VIRTUAL TABLE IF NOT EXISTS chunks_vec USING vec0("
                f"embedding float[{int(self.dim)}] distance_metric=cosine)"
            )

    def check_model(self) -> None:
        """Raise ``ModelMismatchError`` if the index is bound to another model (reads only)."""
        stored = scalar(self.conn, "SELECT value FROM meta WHERE key = 'model'")
        if stored is not None and stored != self.model_id:
            raise ModelMismatchError(
                f"this index holds vectors of {stored!r}, not {self.model_id!r}: use"
                f" --embedder matching the index, another --index, or switch the index"
                f" to the new model with `headrace reembed --embedder NAME`"
                f" (or `ingest --reembed`)"
            )

    @property
    def has_vectors(self) -> bool:
        return self.dim is not None

    # -- embedding cache ----------------------------------------------------------

    def cached(self, hashes: Sequence[str]) -> set[str]:
        """Which text hashes already have a vector of this model."""
        found: set[str] = set()
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            marks = ",".join("?" * len(part))
            rows = self.conn.execute(
                f"SELECT text_hash FROM embed_cache WHERE model = ? AND text_hash IN ({marks})",
                (self.model_id, *part),
            )
            found.update(row[0] for row in rows)
        return found

    # -- staging and publishing ---------------------------------------------------

    def stage(self, path: str, chunks: Sequence[Chunk], vectors: Mapping[str, bytes]) -> None:
        """Write chunks to ``pending`` (or in place, see the module docstring) and new
        vectors to the cache (caller's transaction)."""
        if vectors:
            now = time.time()
            self.conn.executemany(
                "INSERT OR IGNORE INTO embed_cache VALUES (?, ?, ?, ?)",
                [(self.model_id, h, v, now) for h, v in vectors.items()],
            )
        if not chunks:
            return
        file_id = self._staged_id(path)
        if file_id is not None:
            self._write_in_place(file_id, chunks)
            return
        seq = self._seq.get(path)
        if seq is None:
            seq = (
                int(
                    scalar(
                        self.conn,
                        "SELECT coalesce(max(seq), -1) FROM pending WHERE path = ?",
                        (path,),
                    )
                )
                + 1
            )
        rows = []
        for c in chunks:
            rows.append(
                (
                    path,
                    seq,
                    c.id,
                    c.ordinal,
                    c.text,
                    c.text_hash,
                    c.token_count,
                    c.line_start,
                    c.line_end,
                    c.byte_start,
                    c.byte_end,
                    c.heading,
                    _meta_json(c.metadata),
                )
            )
            seq += 1
        self._seq[path] = seq
        self.conn.executemany(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
        )

    def _staged_id(self, path: str) -> int | None:
        """The reserved file id ``path`` is staged under in place, reserving one for a
        fresh file of a keyword-only index; None: the file is staged in ``pending``."""
        if path in self._inplace:
            return self._inplace[path]
        c = self.conn
        found = scalar(c, "SELECT file_id FROM staging WHERE path = ?", (path,))
        if found is None and not self.has_vectors:
            fresh = (
                scalar(c, "SELECT 1 FROM files WHERE path = ?", (path,)) is None
                and scalar(c, "SELECT 1 FROM pending WHERE path = ? LIMIT 1", (path,)) is None
            )
            if fresh:
                found = int(
                    scalar(
                        c,
                        "SELECT min(-1, coalesce((SELECT min(id) FROM files), 0) - 1,"
                        " coalesce((SELECT min(file_id) FROM staging), 0) - 1)",
                    )
                )
                c.execute("INSERT INTO staging VALUES (?, ?)", (path, found))
        self._inplace[path] = None if found is None else int(found)
        return self._inplace[path]

    def _write_in_place(self, file_id: int, chunks: Sequence[Chunk]) -> None:
        c = self.conn
        high = int(scalar(c, "SELECT coalesce(max(rowid), 0) FROM chunks"))
        c.executemany(
            f"INSERT INTO chunks(id, file_id, {_CHUNK_COLS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [_in_place_row(ch, file_id) for ch in chunks],
        )
        c.execute(
            "INSERT INTO chunks_fts(rowid, text, heading)"
            " SELECT rowid, text, coalesce(heading, '') FROM chunks WHERE rowid > ?",
            (high,),
        )

    @contextlib.contextmanager
    def unchecked_references(self) -> Iterator[None]:
        """Foreign keys off around a window (outside its transaction): chunks staged in
        place reference a ``files`` row that publishing creates."""
        self.conn.execute("PRAGMA foreign_keys=OFF")
        try:
            yield
        finally:
            self.conn.execute("PRAGMA foreign_keys=ON")

    def clear_stale(self) -> None:
        """Drop staged chunks left by an earlier run, except those a durable
        ``partial`` cursor vouches for (they resume instead of starting over)."""
        self.conn.execute(
            "DELETE FROM pending WHERE path NOT IN"
            " (SELECT path FROM cursors WHERE mode = 'partial')"
        )
        staged = [row[0] for row in self.conn.execute("SELECT path FROM staging")]
        partial = {
            row[0] for row in self.conn.execute("SELECT path FROM cursors WHERE mode='partial'")
        }
        for path in staged:
            # No cursor vouches for them, or their file is gone (it has no `files` row,
            # so no deletion would ever find these chunks).
            if path not in partial or not os.path.exists(path):
                self.discard(path)
                self.conn.execute("DELETE FROM cursors WHERE path = ?", (path,))
        self._seq.clear()
        self._inplace.clear()

    def discard(self, path: str, *, from_ordinal: int = 0) -> None:
        """Drop what was staged for ``path`` (a failed or restarted file), or only its
        chunks from ``from_ordinal`` on (a file resumed at a durable cursor)."""
        self.conn.execute(
            "DELETE FROM pending WHERE path = ? AND ordinal >= ?", (path, from_ordinal)
        )
        self._seq.pop(path, None)
        self._inplace.pop(path, None)
        staged = scalar(self.conn, "SELECT file_id FROM staging WHERE path = ?", (path,))
        if staged is not None:
            self._delete_in_batches(_EVERY, from_ordinal, lambda after: (staged, after, _BATCH))
            if from_ordinal <= 0:
                self.conn.execute("DELETE FROM staging WHERE path = ?", (path,))

    def staged_id(self, path: str) -> int | None:
        """The id reserved for ``path``'s in-place chunks (``Ledger.upsert`` uses it)."""
        found = scalar(self.conn, "SELECT file_id FROM staging WHERE path = ?", (path,))
        return None if found is None else int(found)

    def publish(self, path: str, file_id: int, *, keep_before: int = 0) -> int:
        """Make the staged chunks the file's chunks; returns how many it has now.

        ``keep_before``: published chunks with a lower ordinal stay as they are (an
        appended file stages only what follows its last seam).
        """
        c = self.conn
        staged = self.staged_id(path)
        if staged is not None:
            return self._publish_in_place(path, file_id, staged)
        # Probes by index (NOT EXISTS), never `NOT IN` lists: a file of millions of
        # chunks is published in bounded memory.
        stale = (
            "SELECT rowid, ordinal FROM chunks AS c WHERE file_id = ?1 AND ordinal > ?3"
            " AND NOT EXISTS (SELECT 1 FROM pending AS p"
            " WHERE p.chunk_id = c.id AND p.path = ?2) ORDER BY ordinal LIMIT ?4"
        )
        self._delete_in_batches(stale, keep_before, lambda after: (file_id, path, after, _BATCH))
        c.execute(
            "UPDATE chunks SET ordinal=p.ordinal, line_start=p.line_start,"
            " line_end=p.line_end, byte_start=p.byte_start, byte_end=p.byte_end,"
            " heading=p.heading, metadata=p.metadata"
            " FROM pending AS p WHERE p.path = ?1 AND p.chunk_id = chunks.id",
            (path,),
        )
        high = int(scalar(c, "SELECT coalesce(max(rowid), 0) FROM chunks"))
        c.execute(
            # OR IGNORE skips the kept chunks (UNIQUE id). A SELECT that read `chunks`
            # itself would make SQLite buffer its whole result first: a file's
            # every staged row in memory (measured: 506 MB peak RSS at 210 MB).
            f"INSERT OR IGNORE INTO chunks(id, file_id, {_CHUNK_COLS})"
            f" SELECT chunk_id, ?1, {_CHUNK_COLS} FROM pending WHERE path = ?2 ORDER BY seq",
            (file_id, path),
        )
        c.execute(
            "INSERT INTO chunks_fts(rowid, text, heading)"
            " SELECT rowid, text, coalesce(heading, '') FROM chunks WHERE rowid > ?",
            (high,),
        )
        if self.has_vectors:
            # CROSS JOIN pins the loop order: new chunks outside, cache lookups inside
            # (the planner otherwise may scan the whole cache for every file).
            c.execute(
                "INSERT INTO chunks_vec(rowid, embedding) SELECT ch.rowid, e.vector"
                " FROM chunks AS ch CROSS JOIN embed_cache AS e"
                " ON e.model = ? AND e.text_hash = ch.text_hash WHERE ch.rowid > ?",
                (self.model_id, high),
            )
        if keep_before:
            # An append: ordinals 0 … keep_before-1 kept, then one chunk per staged
            # row; counting the file's chunks instead took 0.2-0.4 s at 1 GB.
            staged = int(scalar(c, "SELECT count(*) FROM pending WHERE path = ?", (path,)))
            self.discard(path)
            return keep_before + staged
        self.discard(path)
        return int(scalar(c, "SELECT count(*) FROM chunks WHERE file_id = ?", (file_id,)))

    def _publish_in_place(self, path: str, file_id: int, staged: int) -> int:
        """The chunks are in place: only the reservation goes (the ledger row took its
        id; if it did not, the chunks move to the row's id)."""
        c = self.conn
        if file_id != staged:
            c.execute("UPDATE chunks SET file_id = ? WHERE file_id = ?", (file_id, staged))
        c.execute("DELETE FROM staging WHERE path = ?", (path,))
        self._inplace.pop(path, None)
        self.discard(path)
        return int(scalar(c, "SELECT count(*) FROM chunks WHERE file_id = ?", (file_id,)))

    def remove(self, file_id: int) -> None:
        self._delete_in_batches(_EVERY, 0, lambda after: (file_id, after, _BATCH))

    def _delete_in_batches(
        self, select: str, start: int, params: Callable[[int], tuple[object, ...]]
    ) -> None:
        """Delete the rows ``select`` finds from ordinal ``start`` on, 10,000 at a time
        (keyset on ordinal: each row is visited once, the rowid list stays small)."""
        after = start - 1
        while rows := list(self.conn.execute(select, params(after))):
            self._drop([(r,) for r, _ in rows])
            after = rows[-1][1]

    def _drop(self, rowids: list[tuple[int]]) -> None:
        # Rowids are fetched first and deleted one by one: virtual tables (vec0) do not
        # plan `rowid IN (subquery)` as lookups and would scan the whole table per file.
        c = self.conn
        c.executemany("DELETE FROM chunks_fts WHERE rowid = ?", rowids)
        if self.has_vectors:
            c.executemany("DELETE FROM chunks_vec WHERE rowid = ?", rowids)
        c.executemany("DELETE FROM chunks WHERE rowid = ?", rowids)

    def rekey(self, file_id: int, new_ids: Mapping[int, str]) -> None:
        """Give a moved file's chunks the ids of their new source path."""
        self.conn.executemany(
            "UPDATE chunks SET id = ? WHERE rowid = ? AND file_id = ?",
            [(cid, rowid, file_id) for rowid, cid in new_ids.items()],
        )
