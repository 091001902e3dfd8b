"""The relational ontology store: its own SQLite file (apsw, WAL, foreign keys on).

Writes are per file and atomic: ``replace`` deletes the file's ``ontologies`` row
(every term, axiom, annotation, relationship, import and name goes with it by
``ON DELETE CASCADE``) and inserts the new version in the same transaction, so a
crash leaves the old version or the new one. A dead letter is written in the same
transaction that drops the file's rows. The sync cursor (``sync_state``) is a
separate, later write: the caller moves it only once every file of a commit is
stored.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import apsw

from headrace.errors import StoreError, TransientError
from headrace.ledger.migrations import scalar
from headrace.parsers.ontology.model import (
    PROPERTY_KINDS,
    OntologyDoc,
    base_iri,
    local_name,
    name_key,
)
from headrace.sinks.ontology_schema import migrate

BUSY_TIMEOUT_MS = 10_000


@dataclass(frozen=True, slots=True)
class StoredOntology:
    """What the store knows of one file: enough to skip it when unchanged."""

    path: str
    blob_sha: str
    parser_version: str


@dataclass(frozen=True, slots=True)
class Cursor:
    """The last commit of a source whose every file is stored."""

    source: str
    location: str
    ref: str
    commit_sha: str
    parser_version: str
    synced_at: float
    filters: str


def connect_ontology_db(path: Path) -> apsw.Connection:
    """Open (creating and migrating) the ontology database at ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = apsw.Connection(str(path))
        conn.setbusytimeout(BUSY_TIMEOUT_MS)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA temp_store=MEMORY")
        migrate(conn)
    except apsw.BusyError as exc:
        raise TransientError(f"{path}: ontology database is busy: {exc}") from exc
    except apsw.Error as exc:
        raise StoreError(f"{path}: cannot open ontology database: {exc}") from exc
    return conn


class OntologyStore:
    """Per-file writes of ``OntologyDoc`` s, dead letters and the sync cursor."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn = connect_ontology_db(path)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[apsw.Connection]:
        """``BEGIN IMMEDIATE`` … ``COMMIT``, with SQLite's errors translated by kind.

        Busy, locked, I/O and disk-full errors are ``TransientError`` (retried by the
        caller); a constraint violation or any other SQLite error is ``StoreError``
        (permanent for that file). Either way the transaction is rolled back first.
        """
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except apsw.Error as exc:
            raise _translate(self.path, "begin", exc) from exc
        try:
            yield self.conn
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:  # SQLite rolls back by itself on some I/O errors
                self.conn.execute("ROLLBACK")
            if isinstance(exc, apsw.Error):
                raise _translate(self.path, "write", exc) from exc
            raise

    # -- per-file writes -------------------------------------------------------------

    def replace(
        self,
        source: str,
        path: str,
        doc: OntologyDoc,
        *,
        commit_sha: str,
        blob_sha: str,
        content_hash: str,
        parser_version: str,
    ) -> int:
        """Store ``doc`` as the only version of ``path``; returns the ontology id.

        A row the schema rejects is ``StoreError`` (that file's dead letter); a busy or
        failing disk is ``TransientError``. Either way the old version stays.
        """
        with self.transaction() as c:
            self._drop(source, path)
            c.execute(
                "INSERT INTO ontologies(source, path, iri, format, commit_sha, blob_sha,"
                " content_hash, parser_version, synced_at) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    source,
                    path,
                    doc.iri,
                    doc.format,
                    commit_sha,
                    blob_sha,
                    content_hash,
                    parser_version,
                    time.time(),
                ),
            )
            oid = c.last_insert_rowid()
            _insert_doc(c, oid, doc)
            return oid

    def remove(self, source: str, path: str) -> None:
        """Forget ``path`` (deleted, or no longer an ontology)."""
        with self.transaction():
            self._drop(source, path)

    def rename(self, source: str, old: str, new: str, commit_sha: str) -> bool:
        """Re-key an unchanged file's rows to its new path; False if ``old`` is not stored."""
        with self.transaction() as c:
            c.execute("DELETE FROM ontologies WHERE source = ? AND path = ?", (source, new))
            c.execute(
                "UPDATE ontologies SET path = ?, commit_sha = ?, rendered = 0"
                " WHERE source = ? AND path = ?",
                (new, commit_sha, source, old),
            )
            moved = c.changes() > 0
            c.execute("DELETE FROM dead_letters WHERE source = ? AND path = ?", (source, old))
            return moved

    def fail(
        self,
        source: str,
        path: str,
        *,
        commit_sha: str,
        blob_sha: str | None,
        stage: str,
        error_type: str,
        message: str,
        line: int | None,
    ) -> None:
        """Record a permanent failure; the file's old rows go in the same transaction.

        Dropping them keeps an incremental sync equal to a fresh sync of the same
        commit, in which the broken file has no rows either.
        """
        with self.transaction() as c:
            c.execute("DELETE FROM ontologies WHERE source = ? AND path = ?", (source, path))
            c.execute(
                "INSERT INTO dead_letters(source, path, commit_sha, blob_sha, stage, error_type,"
                " message, line, attempts, at) VALUES (?,?,?,?,?,?,?,?,1,?)"
                " ON CONFLICT(source, path) DO UPDATE SET commit_sha = excluded.commit_sha,"
                " blob_sha = excluded.blob_sha, stage = excluded.stage,"
                " error_type = excluded.error_type, message = excluded.message,"
                " line = excluded.line, attempts = attempts + 1, at = excluded.at",
                (source, path, commit_sha, blob_sha, stage, error_type, message, line, time.time()),
            )

    def _drop(self, source: str, path: str) -> None:
        self.conn.execute("DELETE FROM ontologies WHERE source = ? AND path = ?", (source, path))
        self.conn.execute("DELETE FROM dead_letters WHERE source = ? AND path = ?", (source, path))

    # -- what is stored --------------------------------------------------------------

    def stored(self, source: str) -> dict[str, StoredOntology]:
        rows = self.conn.execute(
            "SELECT path, blob_sha, parser_version FROM ontologies WHERE source = ?", (source,)
        )
        return {p: StoredOntology(p, b, v) for p, b, v in rows}

    def failed_blobs(self, source: str) -> dict[str, str | None]:
        rows = self.conn.execute(
            "SELECT path, blob_sha FROM dead_letters WHERE source = ?", (source,)
        )
        return {p: b for p, b in rows}

    def cursor(self, source: str) -> Cursor | None:
        row = self.conn.execute(
            "SELECT source, location, ref, commit_sha, parser_version, synced_at, filters"
            " FROM sync_state WHERE source = ?",
            (source,),
        ).fetchone()
        return Cursor(*row) if row else None

    def set_cursor(
        self,
        source: str,
        location: str,
        ref: str,
        commit_sha: str,
        parser_version: str,
        *,
        filters: str = "",
    ) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO sync_state(source, location, ref, commit_sha, parser_version,"
                " synced_at, filters) VALUES (?,?,?,?,?,?,?) ON CONFLICT(source) DO UPDATE SET"
                " location = excluded.location, ref = excluded.ref,"
                " commit_sha = excluded.commit_sha, parser_version = excluded.parser_version,"
                " synced_at = excluded.synced_at, filters = excluded.filters",
                (source, location, ref, commit_sha, parser_version, time.time(), filters),
            )

    def mentions_base(self, source: str, path: str) -> bool:
        """Whether the stored model of ``path`` holds an IRI under its base IRI.

        Such IRIs came from relative references, which resolve differently at
        another path: a rename of that file must re-parse it.
        """
        base = base_iri(path)
        row = self.conn.execute(_MENTIONS_BASE, {"s": source, "p": path, "b": base}).fetchone()
        return row is not None

    def dangling_count(self, source: str) -> int:
        """References of ``source``'s files that resolve to no term of any file."""
        return int(
            scalar(
                self.conn,
                "SELECT count(*) FROM dangling_references d JOIN ontologies o"
                " ON o.id = d.ontology_id WHERE o.source = ?",
                (source,),
            )
        )

    def count(self, sql: str) -> int:
        return int(scalar(self.conn, sql) or 0)

    def close(self) -> None:
        self.conn.close()


# Every column that can hold an IRI of the file; subjects are covered by ``terms``.
_MENTIONS_BASE = """
SELECT 1 FROM ontologies o WHERE o.source = :s AND o.path = :p AND (
    instr(o.iri, :b) = 1
    OR EXISTS (SELECT 1 FROM terms x WHERE x.ontology_id = o.id AND instr(x.iri, :b) = 1)
    OR EXISTS (SELECT 1 FROM axioms x WHERE x.ontology_id = o.id AND (instr(x.target_iri, :b) = 1
        OR instr(x.property_iri, :b) = 1 OR instr(x.expression, :b) > 0))
    OR EXISTS (SELECT 1 FROM relationships x WHERE x.ontology_id = o.id
        AND (instr(x.predicate, :b) = 1 OR instr(x.target, :b) = 1))
    OR EXISTS (SELECT 1 FROM annotations x WHERE x.ontology_id = o.id
        AND (instr(x.property, :b) = 1 OR instr(x.datatype, :b) = 1))
    OR EXISTS (SELECT 1 FROM imports x WHERE x.ontology_id = o.id AND instr(x.iri, :b) = 1))
"""

# Failures that say nothing about the data: another writer, a flaky disk, a full disk.
_TRANSIENT_SQLITE = (apsw.BusyError, apsw.LockedError, apsw.IOError, apsw.FullError)


def _translate(path: Path, step: str, exc: apsw.Error) -> TransientError | StoreError:
    """SQLite's error as headrace's: retryable by type, never by message."""
    if isinstance(exc, _TRANSIENT_SQLITE):
        return TransientError(f"{path}: {step} failed ({type(exc).__name__}): {exc}")
    return StoreError(f"{path}: {step} failed ({type(exc).__name__}): {exc}")


def _insert_doc(c: apsw.Connection, oid: int, doc: OntologyDoc) -> None:
    terms = list(doc.terms.values())
    c.executemany(
        "INSERT INTO terms(ontology_id, iri, kind, line) VALUES (?,?,?,?)",
        [(oid, t.iri, t.kind, t.line) for t in terms],
    )
    c.executemany(
        "INSERT INTO classes VALUES (?, ?)", [(oid, t.iri) for t in terms if t.kind == "class"]
    )
    c.executemany(
        "INSERT INTO properties VALUES (?, ?, ?)",
        [(oid, t.iri, t.kind) for t in terms if t.kind in PROPERTY_KINDS],
    )
    c.executemany(
        "INSERT INTO individuals VALUES (?, ?)",
        [(oid, t.iri) for t in terms if t.kind == "individual"],
    )
    c.executemany(
        "INSERT INTO axioms(ontology_id, subject_iri, kind, property_iri, target_iri,"
        " expression, line) VALUES (?,?,?,?,?,?,?)",
        [(oid, a.subject, a.kind, a.property, a.target, a.expression, a.line) for a in doc.axioms],
    )
    c.executemany(
        "INSERT INTO annotations(ontology_id, subject_iri, property, role, value, lang,"
        " datatype, line) VALUES (?,?,?,?,?,?,?,?)",
        [
            (oid, a.subject, a.property, a.role, a.value, a.lang, a.datatype, a.line)
            for a in doc.annotations
        ],
    )
    c.executemany(
        "INSERT INTO relationships(ontology_id, subject_iri, predicate, target, target_kind,"
        " target_key, line) VALUES (?,?,?,?,?,?,?)",
        [
            (
                oid,
                r.subject,
                r.predicate,
                r.target,
                r.target_kind,
                name_key(r.target) if r.target_kind == "name" else None,
                r.line,
            )
            for r in doc.relationships
        ],
    )
    c.executemany(
        "INSERT OR IGNORE INTO imports VALUES (?, ?)", [(oid, iri) for iri in doc.imports]
    )
    c.executemany(
        "INSERT OR IGNORE INTO names VALUES (?, ?, ?)", [(oid, k, i) for k, i in _names(doc)]
    )


def _names(doc: OntologyDoc) -> Iterator[tuple[str, str]]:
    """Name keys → term, first wins: the primary term's page names, every term's
    labels, then every named term's local name (``mv:WheelAssembly`` → "wheelassembly",
    which is how the Logseq corpora link to classes that have no page of their own)."""
    primary = doc.primary or next((t.iri for t in doc.terms.values() if t.kind == "class"), None)
    if primary is not None:
        for name in doc.names:
            yield name_key(name), primary
    for a in doc.annotations:
        if a.role == "label" and a.subject in doc.terms:
            yield name_key(a.value), a.subject
    for t in doc.terms.values():
        if t.kind not in ("resource", "ontology") and not t.iri.startswith("_:"):
            yield name_key(local_name(t.iri)), t.iri
