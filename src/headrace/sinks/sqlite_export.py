"""The canonical dump of an index: what a clean run and a resumed run must agree on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import apsw
import blake3


def export_rows(conn: apsw.Connection, *, has_vectors: bool) -> Iterator[dict[str, Any]]:
    """One dict per chunk, ordered by source path and ordinal.

    ``vector_digest`` is the blake3 of the stored float32 bytes (``None`` for a
    keyword-only index), so two dumps compare vectors without printing them.
    """
    vec_join = "LEFT JOIN chunks_vec v ON v.rowid = c.rowid" if has_vectors else ""
    vec_col = "v.embedding" if has_vectors else "NULL"
    rows = conn.execute(
        "SELECT c.id, f.path, c.ordinal, c.line_start, c.line_end, c.byte_start, c.byte_end,"
        f" c.heading, c.text, c.metadata, c.token_count, {vec_col}"
        f" FROM chunks c JOIN files f ON f.id = c.file_id {vec_join}"
        " ORDER BY f.path, c.ordinal"
    )
    for r in rows:
        yield {
            "id": r[0],
            "source": r[1],
            "ordinal": r[2],
            "position": {"lines": [r[3], r[4]], "bytes": [r[5], r[6]], "heading": r[7]},
            "text": r[8],
            "metadata": json.loads(r[9]),
            "tokens": r[10],
            "vector_digest": None if r[11] is None else blake3.blake3(r[11]).hexdigest()[:32],
        }
