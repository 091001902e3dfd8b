"""Helpers of the embedded graph store's tests: a store file left at an older schema
version (migration tests), and the random file versions of the random histories."""

from __future__ import annotations

import random
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


# One file's rows, as ``random_versions`` draws them: nodes ``(key, kind, name, role,
# line, props)`` and edges ``(key, type, src, dst)`` (no properties).
Version = tuple[
    list[tuple[str, str, str, int, int, dict[str, int]]], list[tuple[str, str, str, str]]
]


def random_versions(
    rnd: random.Random,
    paths: list[str],
    keys: list[str],
    *,
    most_files: int,
    most_nodes: int,
    deleted: float,
    lines: int = 1,
    outside: int = 0,
) -> dict[str, Version | None]:
    """New versions of some of ``paths`` (None: the file is deleted), for the random
    histories that compare the embedded store against another store or write path.
    Each file contributes up to ``most_nodes`` of ``keys`` (roles defining or
    mentioning, properties ``{"v": 0..3}``) and relations between them; with
    ``outside`` > 0 a relation may also end at that many other keys, which another
    file contributes or nobody does (the store must not write such an edge)."""
    out: dict[str, Version | None] = {}
    for path in rnd.sample(paths, rnd.randint(1, most_files)):
        if rnd.random() < deleted:
            out[path] = None
            continue
        mine = rnd.sample(keys, rnd.randint(0, most_nodes))
        nodes = [
            (
                k,
                "table",
                k[-2:],
                rnd.choice([0, 0, 1]),
                rnd.randint(1, lines),
                {"v": rnd.randint(0, 3)},
            )
            for k in mine
        ]
        ends = mine + rnd.sample(keys, outside)
        pairs = {tuple(rnd.sample(ends, 2)) for _ in range(4)} if len(ends) > 1 and mine else set()
        out[path] = (nodes, [(f"{a}|R|{b}", "R", a, b) for a, b in sorted(pairs)])
    return out
