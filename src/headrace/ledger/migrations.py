"""Versioned schema migrations of the index file.

Each step is a function applied in its own transaction and recorded in
``schema_migrations``; a database is moved forward one step at a time and a
database newer than this code is refused. Add a step, never edit an old one.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import apsw

from headrace.errors import StoreError


def scalar(conn: apsw.Connection, sql: str, params: Any = ()) -> Any:
    """The first column of the first row, or None."""
    row = conn.execute(sql, params).fetchone()
    return None if row is None else row[0]


def _v1(conn: apsw.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
        CREATE TABLE files(
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL UNIQUE,
            root TEXT NOT NULL,
            size INTEGER NOT NULL,
            mtime_ns INTEGER NOT NULL,
            inode INTEGER NOT NULL,
            content_hash TEXT,
            state TEXT NOT NULL CHECK (state IN ('indexed', 'skipped', 'failed')),
            reason TEXT,
            signature TEXT NOT NULL,
            chunk_count INTEGER NOT NULL DEFAULT 0,
            indexed_at REAL NOT NULL
        );
        CREATE INDEX files_hash ON files(content_hash);
        CREATE TABLE chunks(
            rowid INTEGER PRIMARY KEY,
            id TEXT NOT NULL UNIQUE,
            file_id INTEGER NOT NULL REFERENCES files(id) ON DELETE CASCADE,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            token_count INTEGER NOT NULL,
            line_start INTEGER NOT NULL,
            line_end INTEGER NOT NULL,
            byte_start INTEGER NOT NULL,
            byte_end INTEGER NOT NULL,
            heading TEXT,
            metadata TEXT NOT NULL DEFAULT '{}'
        );
        CREATE INDEX chunks_file ON chunks(file_id, ordinal);
        CREATE INDEX chunks_text_hash ON chunks(text_hash);
        CREATE VIRTUAL TABLE chunks_fts USING fts5(
            text, heading, content='', contentless_delete=1,
            tokenize='unicode61 remove_diacritics 2'
        );
        CREATE TABLE embed_cache(
            model TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            created_at REAL NOT NULL,
            PRIMARY KEY(model, text_hash)
        ) WITHOUT ROWID;
        CREATE TABLE pending(
            path TEXT NOT NULL,
            seq INTEGER NOT NULL,
            chunk_id TEXT NOT NULL,
            ordinal INTEGER NOT NULL,
            text TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            token_count INTEGER NOT NULL,
            line_start INTEGER NOT NULL,
            line_end INTEGER NOT NULL,
            byte_start INTEGER NOT NULL,
            byte_end INTEGER NOT NULL,
            heading TEXT,
            metadata TEXT NOT NULL,
            PRIMARY KEY(path, seq)
        ) WITHOUT ROWID;
        CREATE TABLE dead_letters(
            id INTEGER PRIMARY KEY,
            path TEXT NOT NULL,
            stage TEXT NOT NULL,
            error_type TEXT NOT NULL,
            message TEXT NOT NULL,
            line INTEGER,
            offset INTEGER,
            attempts INTEGER NOT NULL DEFAULT 1,
            first_seen REAL NOT NULL,
            last_seen REAL NOT NULL
        );
        CREATE INDEX dead_letters_path ON dead_letters(path);
        CREATE TABLE runs(
            id INTEGER PRIMARY KEY,
            started_at REAL NOT NULL,
            finished_at REAL,
            status TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}'
        );
        """
    )


def _v2(conn: apsw.Connection) -> None:
    # Durable byte cursors of large and growing files (issue 3). ``partial``: a file
    # part-way through, its chunks before ``ordinal`` staged in ``pending``; ``final``:
    # a published file and the last seam before its end, where an append resumes.
    # ``base_ordinal``: chunks below it are published and kept, pending holds the rest.
    conn.execute(
        """
        CREATE TABLE cursors(
            path TEXT PRIMARY KEY,
            mode TEXT NOT NULL CHECK (mode IN ('partial', 'final')),
            signature TEXT NOT NULL,
            inode INTEGER NOT NULL,
            size INTEGER NOT NULL,
            offset INTEGER NOT NULL,
            line INTEGER NOT NULL,
            ordinal INTEGER NOT NULL,
            base_ordinal INTEGER NOT NULL,
            head_digest TEXT NOT NULL,
            seam_digest TEXT NOT NULL,
            issues TEXT NOT NULL DEFAULT '[]',
            updated_at REAL NOT NULL
        );
        CREATE INDEX pending_hash ON pending(path, text_hash);
        """
    )


def _v3(conn: apsw.Connection) -> None:
    # Publishing a file of millions of chunks probes pending by chunk id instead of
    # building `NOT IN` lists in memory (flat RSS, issue 3).
    conn.execute("CREATE INDEX pending_chunk ON pending(chunk_id)")


def _v4(conn: apsw.Connection) -> None:
    # Fresh files of a keyword-only index are written straight into `chunks` (and
    # FTS5) segment by segment under a reserved negative file id, instead of twice
    # (`pending`, then `chunks` at publish). Until the file is published it has no
    # `files` row, so joins on `files` (export, replicas) do not see it, and
    # keyword search filters it out while this table has rows (issue 3).
    conn.execute(
        """
        CREATE TABLE staging(
            path TEXT PRIMARY KEY,
            file_id INTEGER NOT NULL UNIQUE
        );
        """
    )


def _v5(conn: apsw.Connection) -> None:
    # A cursor carries the file's content hash in progress (``HashChain``: bytes
    # [0, chain_offset) folded into chain_state), so the hash of an appended or
    # resumed file is finished from there, not re-read from byte 0 (issue 3).
    conn.execute(
        """
        ALTER TABLE cursors ADD COLUMN chain_offset INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE cursors ADD COLUMN chain_state TEXT NOT NULL DEFAULT '';
        """
    )


def _v6(conn: apsw.Connection) -> None:
    # The final cursor of a file of many chunks keeps its occurrence Bloom filter
    # (zlib), so an append looks up only texts the filter may have seen (issue 3).
    conn.execute("ALTER TABLE cursors ADD COLUMN bloom BLOB")


# The cache's size per model kept by triggers (v7; recreated with the table in v8).
_CACHE_SIZE_TRIGGERS = """
        CREATE TRIGGER embed_cache_added AFTER INSERT ON embed_cache BEGIN
            INSERT INTO embed_cache_size VALUES (new.model, 1, length(new.vector))
            ON CONFLICT(model) DO UPDATE
            SET entries = entries + 1, bytes = bytes + excluded.bytes;
        END;
        CREATE TRIGGER embed_cache_removed AFTER DELETE ON embed_cache BEGIN
            UPDATE embed_cache_size
            SET entries = entries - 1, bytes = bytes - length(old.vector)
            WHERE model = old.model;
        END;
"""


def _v7(conn: apsw.Connection) -> None:
    # The embedding cache gets bounded (issue 4: a watcher left on for weeks;
    # sinks/sqlite_gc.py): its size per model kept by triggers in the writing
    # transaction, so checking the bound is O(1), and an index on the embedding time,
    # so pruning walks it oldest first in short steps.
    conn.execute(
        f"""
        CREATE TABLE embed_cache_size(
            model TEXT PRIMARY KEY,
            entries INTEGER NOT NULL,
            bytes INTEGER NOT NULL
        ) WITHOUT ROWID;
        INSERT INTO embed_cache_size
            SELECT model, count(*), coalesce(sum(length(vector)), 0)
            FROM embed_cache GROUP BY model;
        CREATE INDEX embed_cache_age ON embed_cache(created_at);
        {_CACHE_SIZE_TRIGGERS}
        """
    )


def _v8(conn: apsw.Connection) -> None:
    # The cache as a rowid table: a WITHOUT ROWID row keeps at most ~1,000 bytes in its
    # page (4 KiB pages), so each 1,536-byte vector spilled into an overflow page of its
    # own, ~4.7 KB on disk per entry (measured 340 MB of pages for 117 MB of payload);
    # a rowid row holds it in place: ~2.1 KB, inserts 3.9x and lookups 4x as fast
    # (50,000 vectors; bench/cache_churn.py, docs/design.md). Same columns, same key
    # (UNIQUE), so every statement on it stays as it was.
    conn.execute(
        f"""
        ALTER TABLE embed_cache RENAME TO embed_cache_v7;
        CREATE TABLE embed_cache(
            model TEXT NOT NULL,
            text_hash TEXT NOT NULL,
            vector BLOB NOT NULL,
            created_at REAL NOT NULL,
            UNIQUE(model, text_hash)
        );
        INSERT INTO embed_cache(model, text_hash, vector, created_at)
            SELECT model, text_hash, vector, created_at FROM embed_cache_v7
            ORDER BY created_at;
        DROP TABLE embed_cache_v7;
        CREATE INDEX embed_cache_age ON embed_cache(created_at, model, text_hash);
        {_CACHE_SIZE_TRIGGERS}
        """
    )


MIGRATIONS: list[Callable[[apsw.Connection], None]] = [_v1, _v2, _v3, _v4, _v5, _v6, _v7, _v8]
LATEST = len(MIGRATIONS)


def current_version(conn: apsw.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations("
        "version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)"
    )
    return int(scalar(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations"))


def migrate(conn: apsw.Connection, target: int = LATEST) -> int:
    """Apply pending steps up to ``target``; returns the resulting version."""
    version = current_version(conn)
    if version > LATEST:
        raise StoreError(f"index schema v{version} is newer than this headrace (v{LATEST})")
    while version < target:
        step = MIGRATIONS[version]
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute("INSERT INTO schema_migrations VALUES (?, ?)", (version + 1, time.time()))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version += 1
    return version
