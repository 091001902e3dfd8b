"""Search with ``store = qdrant``: Qdrant's vectors fused with the embedded keyword index.

``mode="hybrid"`` (the default) fuses Qdrant's nearest points with the embedded
FTS5/BM25 ranking by reciprocal rank fusion, exactly as the SQLite store fuses its
own vector and keyword rankings (same depth, same ``RRF_K``, same stop words): the
embedded index holds the very chunks the collection mirrors (it is the ledger), so
the keyword half needs no second tokenizer or sparse vectors in Qdrant, and a
search ranks the same in both stores. ``"vector"`` is Qdrant alone; ``"keyword"``
the embedded full-text index alone. Filters apply to both halves.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from typing import Protocol

import apsw

from headrace.errors import ConfigError
from headrace.sinks.base import Hit
from headrace.sinks.filters import SearchFilters
from headrace.sinks.sqlite_search import MODES, RRF_K, hybrid_search


class VectorSearch(Protocol):
    def search(
        self, vector: Sequence[float], k: int, filters: SearchFilters | None
    ) -> list[Hit]: ...


def replica_search(
    replica: VectorSearch,
    conn: apsw.Connection,
    query: str,
    vector: Sequence[float],
    k: int,
    *,
    mode: str,
    filters: SearchFilters | None,
) -> list[Hit]:
    """The top ``k`` hits: Qdrant's vector ranking, fused with BM25 unless ``mode="vector"``."""
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    if mode == "keyword":
        return hybrid_search(conn, query, k, embedder=None, mode="keyword", filters=filters)
    if mode == "vector":  # hits carry their vector_rank
        return held(conn, replica.search(vector, k + 10, filters))[:k]
    depth = max(4 * k, 40)  # as the SQLite store's hybrid search
    vec = held(conn, replica.search(vector, depth, filters))
    kw = hybrid_search(conn, query, depth, embedder=None, mode="keyword", filters=filters)
    return fuse(vec, kw, k)


def held(conn: apsw.Connection, hits: list[Hit]) -> list[Hit]:
    """The hits whose chunks the index holds: orphaned points (a delete the replica
    refused, awaiting reconciliation) never reach a result."""
    if not hits:
        return hits
    ids = json.dumps([h.chunk_id for h in hits])
    rows = conn.execute(
        "SELECT id FROM chunks WHERE id IN (SELECT value FROM json_each(?))", (ids,)
    )
    keep = {row[0] for row in rows}
    return [h for h in hits if h.chunk_id in keep]


def fuse(vec: list[Hit], kw: list[Hit], k: int) -> list[Hit]:
    """RRF of two rankings by chunk id; the vector ranking's hits come first on ties."""
    scores: dict[str, float] = {}
    hits: dict[str, Hit] = {}
    for ranking in (vec, kw):
        for rank, hit in enumerate(ranking, start=1):
            scores[hit.chunk_id] = scores.get(hit.chunk_id, 0.0) + 1.0 / (RRF_K + rank)
            hits.setdefault(hit.chunk_id, hit)
    vec_rank = {h.chunk_id: r for r, h in enumerate(vec, start=1)}
    kw_rank = {h.chunk_id: r for r, h in enumerate(kw, start=1)}
    top = sorted(scores, key=lambda c: -scores[c])[:k]
    return [
        dataclasses.replace(
            hits[c], score=scores[c], vector_rank=vec_rank.get(c), keyword_rank=kw_rank.get(c)
        )
        for c in top
    ]


__all__ = ["fuse", "held", "replica_search"]
