"""The embedded default store: chunks, FTS5 and sqlite-vec in the index file.

Staging and publishing follow ``sinks.base``. Staged chunks live in ``pending``
(committed in batches, so a file of any size never sits in memory); vectors live in
``embed_cache`` keyed by model and text hash, so publishing copies them with one
``INSERT … SELECT`` and a text is never embedded twice by the same model.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Mapping, Sequence

import apsw

from headrace.errors import ModelMismatchError
from headrace.ledger.db import scalar
from headrace.records import Chunk

_CHUNK_COLS = (
    "ordinal, text, text_hash, token_count, line_start, line_end, byte_start, byte_end,"
    " heading, metadata"
)
_BATCH = 10_000  # rows deleted per round when a file's chunks are replaced
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


class SqliteSink:
    """Chunks, full-text and vectors inside the index's SQLite file."""

    def __init__(self, conn: apsw.Connection, model_id: str | None, dim: int | None) -> None:
        self.conn = conn
        self.model_id = model_id or "none"
        self.dim = dim
        self._seq: dict[str, int] = {}

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
        """Write chunks to ``pending`` and new vectors to the cache (caller's transaction)."""
        now = time.time()
        self.conn.executemany(
            "INSERT OR IGNORE INTO embed_cache VALUES (?, ?, ?, ?)",
            [(self.model_id, h, v, now) for h, v in vectors.items()],
        )
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
                    json.dumps(dict(c.metadata), separators=(",", ":"), default=str),
                )
            )
            seq += 1
        self._seq[path] = seq
        self.conn.executemany(
            "INSERT OR REPLACE INTO pending VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows
        )

    def clear_stale(self) -> None:
        """Drop staged chunks left by an earlier run, except those a durable
        ``partial`` cursor vouches for (they resume instead of starting over)."""
        self.conn.execute(
            "DELETE FROM pending WHERE path NOT IN"
            " (SELECT path FROM cursors WHERE mode = 'partial')"
        )
        self._seq.clear()

    def discard(self, path: str, *, from_ordinal: int = 0) -> None:
        """Drop what was staged for ``path`` (a failed or restarted file), or only its
        chunks from ``from_ordinal`` on (a file resumed at a durable cursor)."""
        self.conn.execute(
            "DELETE FROM pending WHERE path = ? AND ordinal >= ?", (path, from_ordinal)
        )
        self._seq.pop(path, None)

    def publish(self, path: str, file_id: int, *, keep_before: int = 0) -> int:
        """Make the staged chunks the file's chunks; returns how many it has now.

        ``keep_before``: published chunks with a lower ordinal stay as they are (an
        appended file stages only what follows its last seam).
        """
        c = self.conn
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

    def remove(self, file_id: int) -> None:
        every = (
            "SELECT rowid, ordinal FROM chunks WHERE file_id = ? AND ordinal > ?"
            " ORDER BY ordinal LIMIT ?"
        )
        self._delete_in_batches(every, 0, lambda after: (file_id, after, _BATCH))

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
