"""The embed stage: windows of items in, vectors for texts not seen before out.

A window is what the upstream queue holds (up to ``window`` items). Its chunk texts
are de-duplicated by hash, looked up in the embedding cache and among the texts
this run already embedded; only the rest reach the model, in batches sorted by
token length and cut by a budget of padded tokens (``batch_tokens``): on this
2-core machine 512 padded tokens per call ran ~1.5x faster than 32 texts per call
and cut the model's working memory from ~350 MB to ~25 MB (bench notes in
docs/design.md). Items leave in their original order, so every
``FileDone`` still follows all of its file's chunks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence

from headrace.embedding.base import Embedder
from headrace.records import Chunk
from headrace.runtime.items import Item, Window
from headrace.runtime.stats import RunStats


def token_batches(chunks: list[Chunk], budget: int) -> Iterator[list[Chunk]]:
    """Sort by token count and cut so that ``len(batch) * longest <= budget``."""
    batch: list[Chunk] = []
    for chunk in sorted(chunks, key=lambda c: c.token_count):
        if batch and (len(batch) + 1) * chunk.token_count > budget:
            yield batch
            batch = []
        batch.append(chunk)
    if batch:
        yield batch


class EmbedStage:
    """Computes the vectors a window needs; owns no connection, only a lookup."""

    def __init__(
        self,
        embedder: Embedder | None,
        cached: Callable[[Sequence[str]], set[str]],
        stats: RunStats,
        batch_tokens: int = 512,
    ) -> None:
        self.embedder = embedder
        self.cached = cached
        self.stats = stats
        self.batch_tokens = batch_tokens
        # Texts embedded in windows not yet committed: the cache lookup (another
        # connection) cannot see them yet. Forgotten at commit, so this holds at most
        # the windows in flight, whatever the size of the corpus.
        self._recent: set[str] = set()
        self._lock = threading.Lock()

    def run(self, items: list[Item]) -> Window:
        window = Window(items=items)
        if self.embedder is None:
            return window
        todo = self._missing({c.text_hash: c for c in items if isinstance(c, Chunk)})
        if todo:
            window.vectors = self._embed(list(todo.values()))
        return window

    def _missing(self, by_hash: dict[str, Chunk]) -> dict[str, Chunk]:
        with self._lock:
            fresh = {h: c for h, c in by_hash.items() if h not in self._recent}
        known = self.cached(list(fresh)) if fresh else set()
        missing = {h: c for h, c in fresh.items() if h not in known}
        self.stats.add(embeddings_cached=len(by_hash) - len(missing))
        return missing

    def _embed(self, chunks: list[Chunk]) -> dict[str, bytes]:
        assert self.embedder is not None
        import numpy as np  # keyword-only runs never load it (~16 MB of RSS)

        out: dict[str, bytes] = {}
        started = time.perf_counter()
        for batch in token_batches(chunks, self.batch_tokens):
            vectors = np.ascontiguousarray(
                self.embedder.embed([c.text for c in batch]), dtype=np.float32
            )
            for chunk, vector in zip(batch, vectors, strict=True):
                out[chunk.text_hash] = vector.tobytes()
        self.stats.add(
            embeddings_computed=len(chunks),
            tokens=sum(c.token_count for c in chunks),
            embed_seconds=time.perf_counter() - started,
        )
        self._remember(out)
        return out

    def _remember(self, hashes: dict[str, bytes]) -> None:
        with self._lock:
            self._recent.update(hashes)

    def committed(self, hashes: Iterable[str]) -> None:
        """The write stage committed these vectors: the cache lookup sees them now."""
        with self._lock:
            self._recent.difference_update(hashes)
