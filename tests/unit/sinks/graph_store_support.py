"""An embedded graph store file left at an older schema version (migration tests)."""

from __future__ import annotations

from pathlib import Path

import apsw

from headrace.sinks import graph_sqlite


def store_at_version(path: Path, version: int) -> apsw.Connection:
    """A store file whose migrations stopped after ``version``, as an older release left it."""
    conn = apsw.Connection(str(path))
    conn.execute(
        "CREATE TABLE graph_schema_migrations(version INTEGER PRIMARY KEY, applied_at REAL)"
    )
    with conn:
        for number, step in enumerate(graph_sqlite.MIGRATIONS[:version], 1):
            step(conn)
            conn.execute("INSERT INTO graph_schema_migrations VALUES (?, 0)", (number,))
    return conn
