"""Switching an index between embedding models (issue 3: "re-embeds from the cache
where possible and never mixes vectors of two models in one index").

An index is bound to one model (``meta.model``); ``ingest`` with another refuses
(``ModelMismatchError``). ``Index.reembed()`` / ``headrace reembed --embedder X``
switches it, in one of three ways chosen from what the stored chunks are:

- **in place** (both models chunk alike: same tokenizer and token limit, e.g.
  ``minilm`` <-> ``minilm-int8``, or two hash test embedders): the stored chunk texts
  are embedded for the new model, nothing is re-read. Phase 1 walks ``chunks`` by
  rowid in batches bounded in rows and bytes, takes vectors already in
  ``embed_cache`` (keyed by model and text hash) and embeds only the missing ones,
  committing each batch with its progress (``meta.model_switch``). Search meanwhile
  still uses the old model's vectors only. Phase 2 is one transaction: the vector
  table is rebuilt for the new model from the cache, ``meta.model`` and every file's
  (and final cursor's) signature are rewritten. ``kill -9`` in phase 1 leaves the
  old model in force and resumes at the stored rowid (what was embedded is cached:
  not embedded again); in phase 2 it rolls back to the old model.
- **re-chunk** (from ``none``, or to a model with another tokenizer or limit): the
  chunks themselves must change, so the files are read again. One transaction
  drops the old vectors, creates the new (empty) vector table, binds the new model
  and gives every chunk a provisional id (``old:`` prefix) so that no stored chunk
  is "kept" without a vector when its file is re-processed. Files are then
  re-processed (their signatures name the old model, so a plain ``ingest`` of their
  roots does the same); the embed stage takes cached vectors where present. A crash
  leaves a resumable state: files not yet re-processed are searchable by keyword
  and have no vectors, so vector search only ever sees the new model's.
- **drop** (to ``none``): the same transaction as re-chunk, without a new vector
  table; files are re-chunked for the keyword-only chunker as they are re-read.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Final, TypeVar

import apsw
from blake3 import blake3

from headrace.embedding.base import Embedder
from headrace.embedding.registry import NO_EMBEDDER, make_embedder
from headrace.errors import ConfigError, HeadraceError, StoreError
from headrace.ledger.db import scalar, transaction
from headrace.runtime.stats import RunStats

log = logging.getLogger(__name__)
T = TypeVar("T")

PROGRESS_KEY: Final = "model_switch"  # in-place phase 1: {"to": model, "after": rowid}
CHUNKING_KEY: Final = "chunking"  # how the stored chunks were cut (see chunking_key)
OLD_ID_PREFIX: Final = "old:"
READ_ROWS: Final = 2048  # chunks read per phase-1 batch …
READ_BYTES: Final = 4 << 20  # … and at most this many bytes of their text


def chunking_key(embedder: Embedder | None) -> str:
    """What decides how chunks are cut for ``embedder`` (``"chars"`` without one).

    Two models with equal keys (same tokenizer, same token limit) produce the same
    chunks, so an index can switch between them without re-reading its files.
    """
    if embedder is None:
        return "chars"
    tokenizer = embedder.tokenizer().to_str()
    digest = blake3(tokenizer.encode("utf-8")).hexdigest(length=8)
    return f"tokens:{embedder.max_tokens}:{digest}"


@dataclass
class SwitchReport:
    """What ``Index.reembed`` did: ``mode`` is bind | current | in-place | re-chunk | drop."""

    old_model: str | None
    new_model: str
    mode: str
    chunks: int = 0  # chunks given a vector of the new model in place
    embeddings_computed: int = 0  # texts the new model embedded in place
    embeddings_cached: int = 0  # texts whose vector of the new model was cached
    files_reprocessed: int = 0  # files read again (re-chunk, drop, or left by a crash)


def _suffix_sql(column: str) -> str:
    """SQL true when ``column`` (a signature) ends with ``'|' || ?1``."""
    return f"substr({column}, -(length(?1) + 1)) = '|' || ?1"


class ModelSwitch:
    """Moves one SQLite index from its bound model to ``embedder`` (``None``: none)."""

    def __init__(
        self,
        conn: apsw.Connection,
        embedder: Embedder | None,
        label: str | None,
        stats: RunStats,
        *,
        batch_tokens: int = 512,
    ) -> None:
        self.conn = conn
        self.embedder = embedder
        self.label = label
        self.stats = stats
        self.batch_tokens = batch_tokens
        self.target = embedder.model_id if embedder is not None else NO_EMBEDDER

    # -- deciding -----------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        value = scalar(self.conn, "SELECT value FROM meta WHERE key = ?", (key,))
        return None if value is None else str(value)

    def stored_chunking(self, model: str) -> str | None:
        """How the index's chunks were cut: recorded at bind time, else derived from
        the registry name it was bound with; ``None`` when that cannot be known."""
        if (known := self.meta(CHUNKING_KEY)) is not None:
            return known
        if model == NO_EMBEDDER:
            return "chars"
        label = self.meta("embedder")
        if label is None:
            return None
        try:
            old = make_embedder(label)
        except ConfigError:
            return None
        return chunking_key(old) if old is not None and old.model_id == model else None

    def mixed_files(self, model: str) -> int:
        """Indexed files whose chunks were not made for ``model`` (a re-chunk left
        half done): they forbid an in-place switch."""
        where = f"state = 'indexed' AND NOT {_suffix_sql('signature')}"
        return int(scalar(self.conn, f"SELECT count(*) FROM files WHERE {where}", (model,)))

    def mode(self) -> str:
        old = self.meta("model")
        if old is None:
            return "bind"
        if old == self.target:
            return "current"
        if self.embedder is None:
            return "drop"
        same = self.stored_chunking(old) == chunking_key(self.embedder)
        in_place = same and old != NO_EMBEDDER and not self.mixed_files(old)
        return "in-place" if in_place else "re-chunk"

    # -- switching ----------------------------------------------------------------

    def run(self) -> SwitchReport:
        """Switch (or finish switching) the index; files to re-read are left to the
        caller (``stale``)."""
        old = self.meta("model")
        mode = self.mode()
        report = SwitchReport(old, self.target, mode)
        log.info("model switch %s -> %s: %s", old, self.target, mode)
        if mode == "in-place":
            assert old is not None
            self._fill_cache(report)
            self._flip_in_place(old, report)
        elif mode in ("re-chunk", "drop"):
            self._flip_rebuild()
        elif mode == "current":
            with transaction(self.conn):  # an abandoned in-place switch to another model
                self.conn.execute("DELETE FROM meta WHERE key = ?", (PROGRESS_KEY,))
        return report

    def _progress(self) -> int:
        raw = self.meta(PROGRESS_KEY)
        if raw is None:
            return 0
        state = json.loads(raw)
        return int(state["after"]) if state.get("to") == self.target else 0

    def _batches(self, after: int) -> Iterator[list[tuple[int, str, str, int]]]:
        """Chunks by rowid after ``after``: at most READ_ROWS rows or READ_BYTES of text."""
        while True:
            rows: list[tuple[int, str, str, int]] = []
            size = 0
            cursor = self.conn.execute(
                "SELECT rowid, text_hash, text, token_count FROM chunks WHERE rowid > ?"
                " ORDER BY rowid LIMIT ?",
                (after, READ_ROWS),
            )
            for rowid, text_hash, text, tokens in cursor:
                rows.append((rowid, text_hash, text, tokens))
                size += len(text)
                if size >= READ_BYTES:
                    break
            cursor.close()
            if not rows:
                return
            yield rows
            after = rows[-1][0]

    def _cached(self, hashes: list[str]) -> set[str]:
        found: set[str] = set()
        for start in range(0, len(hashes), 500):
            part = hashes[start : start + 500]
            marks = ",".join("?" * len(part))
            found.update(
                row[0]
                for row in self.conn.execute(
                    f"SELECT text_hash FROM embed_cache WHERE model = ? AND text_hash IN ({marks})",
                    (self.target, *part),
                )
            )
        return found

    def _fill_cache(self, report: SwitchReport) -> None:
        """Phase 1: every stored text gets a cached vector of the new model."""
        assert self.embedder is not None
        for rows in self._batches(self._progress()):
            texts = {h: (text, tokens) for _, h, text, tokens in rows}
            known = self._cached(list(texts))
            todo = [(h, t, n) for h, (t, n) in texts.items() if h not in known]
            vectors = self._embed(todo)
            now = time.time()
            with transaction(self.conn):
                self.conn.executemany(
                    "INSERT OR IGNORE INTO embed_cache VALUES (?, ?, ?, ?)",
                    [(self.target, h, v, now) for h, v in vectors.items()],
                )
                progress = json.dumps({"to": self.target, "after": rows[-1][0]})
                self.conn.execute(
                    "INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE"
                    " SET value = excluded.value",
                    (PROGRESS_KEY, progress),
                )
            report.embeddings_computed += len(todo)
            report.embeddings_cached += len(known)
            self.stats.add(embeddings_computed=len(todo), embeddings_cached=len(known))

    def _embed(self, todo: list[tuple[str, str, int]]) -> dict[str, bytes]:
        """Vectors of ``(hash, text, tokens)``, in length-sorted token-budget batches."""
        assert self.embedder is not None
        import numpy as np  # loaded with the model, not with every index

        out: dict[str, bytes] = {}
        for batch in token_budget_batches(todo, lambda t: t[2], self.batch_tokens):
            vectors = np.ascontiguousarray(
                self.embedder.embed([text for _, text, _ in batch]), dtype=np.float32
            )
            if vectors.shape != (len(batch), self.embedder.dim):
                raise HeadraceError(
                    f"{self.target} returned vectors of shape {vectors.shape},"
                    f" expected ({len(batch)}, {self.embedder.dim})"
                )
            for (text_hash, _, _), vector in zip(batch, vectors, strict=True):
                out[text_hash] = vector.tobytes()
        return out

    def _new_vector_table(self) -> None:
        self.conn.execute("DROP TABLE IF EXISTS chunks_vec")
        if self.embedder is not None:
            self.conn.execute(
                "CREATE VIRTUAL TABLE chunks_vec USING vec0("
                f"embedding float[{int(self.embedder.dim)}] distance_metric=cosine)"
            )

    def _bind(self) -> None:
        c = self.conn
        c.execute("DELETE FROM meta WHERE key IN ('model', 'embedder', ?, ?)", (
            PROGRESS_KEY, CHUNKING_KEY))  # fmt: skip
        c.execute("INSERT INTO meta VALUES ('model', ?)", (self.target,))
        c.execute("INSERT INTO meta VALUES (?, ?)", (CHUNKING_KEY, chunking_key(self.embedder)))
        if self.label is not None:
            # Lets later commands (search, status) load the index's new model.
            c.execute("INSERT INTO meta VALUES ('embedder', ?)", (self.label,))

    def _drop_partials(self) -> None:
        """Files part-way through keep no staged chunks: they start again (their
        staged texts have no vector of the new model)."""
        self.conn.execute(
            "DELETE FROM pending WHERE path IN (SELECT path FROM cursors WHERE mode = 'partial')"
        )
        self.conn.execute("DELETE FROM cursors WHERE mode = 'partial'")

    def _flip_in_place(self, old: str, report: SwitchReport) -> None:
        """Phase 2, one transaction: the new model's vectors replace the old ones."""
        c = self.conn
        with transaction(c):
            self._new_vector_table()
            c.execute(
                "INSERT INTO chunks_vec(rowid, embedding) SELECT ch.rowid, e.vector"
                " FROM chunks AS ch CROSS JOIN embed_cache AS e"
                " ON e.model = ? AND e.text_hash = ch.text_hash",
                (self.target,),
            )
            filled = c.changes()
            total = int(scalar(c, "SELECT count(*) FROM chunks"))
            if filled != total:  # rolled back: the old model stays in force
                raise StoreError(
                    f"switching to {self.target!r}: {total - filled} of {total} chunks have no"
                    " cached vector; run the switch again"
                )
            for table in ("files", "cursors"):
                c.execute(
                    f"UPDATE {table} SET signature = substr(signature, 1,"
                    " length(signature) - length(?1)) || ?2"
                    f" WHERE {_suffix_sql('signature')}",
                    (old, self.target),
                )
            self._drop_partials()
            self._bind()
        report.chunks = filled

    def _flip_rebuild(self) -> None:
        """One transaction: old vectors gone, new model bound; files re-read later.

        Provisional ids: a re-read file then keeps none of its old chunks (a kept one
        would keep no vector, and the old chunker's token count)."""
        with transaction(self.conn):
            self._new_vector_table()
            self.conn.execute(
                "UPDATE chunks SET id = ?1 || id WHERE substr(id, 1, length(?1)) != ?1",
                (OLD_ID_PREFIX,),
            )
            self._drop_partials()
            self._bind()


def token_budget_batches(
    items: list[T], tokens: Callable[[T], int], budget: int
) -> Iterator[list[T]]:
    """Sort by token count and cut so that ``len(batch) * longest <= budget``."""
    batch: list[T] = []
    for item in sorted(items, key=tokens):
        if batch and (len(batch) + 1) * tokens(item) > budget:
            yield batch
            batch = []
        batch.append(item)
    if batch:
        yield batch


__all__ = ["CHUNKING_KEY", "ModelSwitch", "SwitchReport", "chunking_key"]
