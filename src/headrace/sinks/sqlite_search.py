"""Hybrid search over the embedded store: sqlite-vec KNN and FTS5 BM25, fused by RRF.

Reciprocal rank fusion (score = Σ 1 / (60 + rank)) needs no score calibration
between cosine distances and BM25, and a chunk found by both rankers rises to the
top. ``mode`` may be ``"hybrid"``, ``"vector"`` or ``"keyword"``.
"""

from __future__ import annotations

import json
from typing import Any

import apsw

from headrace.embedding.base import Embedder
from headrace.errors import ConfigError
from headrace.sinks.base import Hit
from headrace.sinks.filters import SearchFilters
from headrace.sinks.sqlite import fts_query

RRF_K = 60
MODES = ("hybrid", "vector", "keyword")


def _vector_ranks(
    conn: apsw.Connection, embedder: Embedder, query: str, n: int, filters: SearchFilters
) -> list[int]:
    import numpy as np  # only a query with a model needs it (keyword-only: ~16 MB less)

    vector = np.asarray(embedder.embed([query])[0], dtype=np.float32)
    if not filters:
        rows = conn.execute(
            "SELECT rowid FROM chunks_vec WHERE embedding MATCH ? AND k = ? ORDER BY distance",
            (vector.tobytes(), n),
        )
        return [row[0] for row in rows]
    # Filter first, then KNN among the matches: filtering the top n afterwards would
    # return nothing for a rare project or tool.
    where, params = filters.sql()
    allowed = [r[0] for r in conn.execute(f"SELECT c.rowid FROM chunks c WHERE {where}", params)]
    if not allowed:
        return []
    rows = conn.execute(
        "SELECT rowid FROM chunks_vec WHERE embedding MATCH ? AND k = ?"
        " AND rowid IN (SELECT value FROM json_each(?)) ORDER BY distance",
        (vector.tobytes(), n, json.dumps(allowed)),
    )
    return [row[0] for row in rows]


def _keyword_ranks(conn: apsw.Connection, query: str, n: int, filters: SearchFilters) -> list[int]:
    match = fts_query(query)
    if match is None:
        return []
    where, params = filters.sql()
    # A fresh keyword-only file is staged in place (sinks.sqlite): while any is, only
    # chunks of published files (with a `files` row) are results.
    staged = conn.execute("SELECT 1 FROM staging LIMIT 1").fetchone() is not None
    rows = conn.execute(
        "SELECT rowid FROM chunks_fts WHERE chunks_fts MATCH ?"
        + ("" if not filters else f" AND rowid IN (SELECT c.rowid FROM chunks c WHERE {where})")
        + (
            " AND NOT EXISTS (SELECT 1 FROM chunks c JOIN staging s ON s.file_id = c.file_id"
            " WHERE c.rowid = chunks_fts.rowid)"
            if staged
            else ""
        )
        + " ORDER BY rank LIMIT ?",
        (match, *(params if filters else []), n),
    )
    return [row[0] for row in rows]


def _fuse(rankings: list[list[int]]) -> dict[int, float]:
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, rowid in enumerate(ranking, start=1):
            scores[rowid] = scores.get(rowid, 0.0) + 1.0 / (RRF_K + rank)
    return scores


def hybrid_search(
    conn: apsw.Connection,
    query: str,
    k: int,
    *,
    embedder: Embedder | None,
    mode: str,
    filters: SearchFilters | None = None,
) -> list[Hit]:
    """The top ``k`` chunks matching ``filters``; without an embedder keyword-only."""
    if mode not in MODES:
        raise ConfigError(f"unknown search mode {mode!r}; use one of {', '.join(MODES)}")
    depth = max(4 * k, 40)
    where = filters or SearchFilters()
    vec = (
        _vector_ranks(conn, embedder, query, depth, where) if embedder and mode != "keyword" else []
    )
    kw = _keyword_ranks(conn, query, depth, where) if mode != "vector" else []
    scores = _fuse([vec, kw])
    top = sorted(scores, key=lambda r: -scores[r])[:k]
    vec_rank = {r: i for i, r in enumerate(vec, start=1)}
    kw_rank = {r: i for i, r in enumerate(kw, start=1)}
    return [_hit(conn, r, scores[r], vec_rank.get(r), kw_rank.get(r)) for r in top]


def _hit(conn: apsw.Connection, rowid: int, score: float, vr: int | None, kr: int | None) -> Hit:
    row: Any = conn.execute(
        "SELECT c.id, f.path, c.text, c.line_start, c.line_end, c.byte_start, c.byte_end,"
        " c.heading, c.metadata FROM chunks c JOIN files f ON f.id = c.file_id"
        " WHERE c.rowid = ?",
        (rowid,),
    ).fetchone()
    return Hit(
        row[0],
        row[1],
        row[2],
        score,
        row[3],
        row[4],
        row[5],
        row[6],
        row[7],
        json.loads(row[8]),
        vr,
        kr,
    )
