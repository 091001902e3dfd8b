"""The index file: one SQLite database (through apsw, which can load sqlite-vec).

It holds the ledger (files, dead letters, runs, meta), the chunks, their full-text
index (FTS5) and their vectors (sqlite-vec), the embedding cache and the staging
table for files still in flight. Ledger and store change in one transaction, which
is what makes a file's commit atomic.

Durability: WAL with ``synchronous=NORMAL``. A process crash (``kill -9``) never loses
a committed transaction; a power cut may lose the last few, never corrupt the file,
and a lost commit only means that file is ingested again.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import apsw
import apsw.bestpractice

from headrace.errors import StoreError, TransientError
from headrace.ledger.migrations import migrate, scalar

BUSY_TIMEOUT_MS = 30_000
# Checkpoint at 32 MB of WAL, not SQLite's 4 MB: a page rewritten by many commits
# (index and FTS pages) is copied into the file once per checkpoint. Measured on a
# 210 MB keyword-only ingest: child CPU 44.8 -> 37.9 s, system time 14.6 -> 11.9 s
# (bench/large_files.py; docs/design.md).
AUTOCHECKPOINT_PAGES = 8000


@functools.cache
def _vec_path() -> str:
    """sqlite-vec's bundled library, found without importing the package: its
    ``__init__`` imports numpy (~16 MB of RSS) for helpers headrace never uses."""
    spec = importlib.util.find_spec("sqlite_vec")
    if spec is None or not spec.submodule_search_locations:
        raise StoreError("sqlite-vec is not installed (pip install sqlite-vec)")
    return os.path.join(next(iter(spec.submodule_search_locations)), "vec0")


def _load_vec(conn: apsw.Connection) -> None:
    conn.enable_load_extension(True)
    conn.load_extension(_vec_path())
    conn.enable_load_extension(False)


def connect(path: Path, *, readonly: bool = False) -> apsw.Connection:
    """Open (creating and migrating if needed) the index at ``path``."""
    try:
        if not readonly:
            path.parent.mkdir(parents=True, exist_ok=True)
        flags = (
            apsw.SQLITE_OPEN_READONLY
            if readonly
            else (apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        )
        conn = apsw.Connection(str(path), flags=flags)
        conn.setbusytimeout(BUSY_TIMEOUT_MS)
        _load_vec(conn)
        if not readonly:
            conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA temp_store=MEMORY")
        # Page cache per connection (KiB): the writer's B-tree inserts want 16 MB;
        # read-only lookups do with 2 MB. Bounded either way, whatever the index size.
        conn.execute(f"PRAGMA cache_size=-{2000 if readonly else 16000}")
        if not readonly:
            conn.wal_autocheckpoint(AUTOCHECKPOINT_PAGES)
        if not readonly:
            migrate(conn)
    except apsw.BusyError as exc:
        raise TransientError(f"{path}: index is busy: {exc}") from exc
    except apsw.Error as exc:
        raise StoreError(f"{path}: cannot open index: {exc}") from exc
    return conn


@contextlib.contextmanager
def transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """``BEGIN IMMEDIATE`` … ``COMMIT``; rolls back on any exception."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except apsw.BusyError as exc:
        raise TransientError(f"index is busy: {exc}") from exc
    try:
        yield conn
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


__all__ = ["AUTOCHECKPOINT_PAGES", "connect", "scalar", "transaction"]
