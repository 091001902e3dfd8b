"""Versioned migrations of the ontology database (its own file, not the index).

Each step runs in its own transaction and is recorded in ``schema_migrations``;
a database newer than this code is refused. Add a step, never edit an old one.

Every row of a file hangs off its ``ontologies`` row; terms are keyed by
``(ontology_id, iri)`` and everything about a term references that pair with a
composite foreign key and ``ON DELETE CASCADE``, so replacing or deleting a file
is one ``DELETE FROM ontologies`` plus inserts. References *to* terms (axiom
targets, relationship targets) are plain columns resolved across files by the
views of step 2: a term may be defined in a file synced later, or nowhere.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import apsw

from headrace.errors import StoreError
from headrace.ledger.migrations import scalar

_TERM_FK = "FOREIGN KEY (ontology_id, {col}) REFERENCES terms(ontology_id, iri) ON DELETE CASCADE"


def _v1(conn: apsw.Connection) -> None:
    fk = _TERM_FK.format(col="subject_iri")
    conn.execute(
        f"""
        CREATE TABLE sync_state(
            source TEXT PRIMARY KEY,
            location TEXT NOT NULL,
            ref TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            parser_version TEXT NOT NULL,
            synced_at REAL NOT NULL
        );
        CREATE TABLE ontologies(
            id INTEGER PRIMARY KEY,
            source TEXT NOT NULL,
            path TEXT NOT NULL,
            iri TEXT,
            format TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            blob_sha TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            parser_version TEXT NOT NULL,
            synced_at REAL NOT NULL,
            rendered INTEGER NOT NULL DEFAULT 0,
            UNIQUE (source, path)
        );
        CREATE INDEX ontologies_iri ON ontologies(iri);
        CREATE TABLE terms(
            ontology_id INTEGER NOT NULL REFERENCES ontologies(id) ON DELETE CASCADE,
            iri TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('ontology', 'class', 'object_property',
                'data_property', 'annotation_property', 'property', 'datatype', 'individual',
                'resource')),
            line INTEGER,
            PRIMARY KEY (ontology_id, iri)
        ) WITHOUT ROWID;
        CREATE INDEX terms_iri ON terms(iri);
        CREATE TABLE classes(
            ontology_id INTEGER NOT NULL,
            iri TEXT NOT NULL,
            PRIMARY KEY (ontology_id, iri),
            {_TERM_FK.format(col="iri")}
        ) WITHOUT ROWID;
        CREATE TABLE properties(
            ontology_id INTEGER NOT NULL,
            iri TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('object_property', 'data_property',
                'annotation_property', 'property')),
            PRIMARY KEY (ontology_id, iri),
            {_TERM_FK.format(col="iri")}
        ) WITHOUT ROWID;
        CREATE TABLE individuals(
            ontology_id INTEGER NOT NULL,
            iri TEXT NOT NULL,
            PRIMARY KEY (ontology_id, iri),
            {_TERM_FK.format(col="iri")}
        ) WITHOUT ROWID;
        CREATE TABLE axioms(
            id INTEGER PRIMARY KEY,
            ontology_id INTEGER NOT NULL,
            subject_iri TEXT NOT NULL,
            kind TEXT NOT NULL,
            property_iri TEXT,
            target_iri TEXT,
            expression TEXT NOT NULL,
            line INTEGER,
            {fk}
        );
        CREATE INDEX axioms_subject ON axioms(ontology_id, subject_iri);
        CREATE INDEX axioms_target ON axioms(target_iri);
        CREATE TABLE annotations(
            id INTEGER PRIMARY KEY,
            ontology_id INTEGER NOT NULL,
            subject_iri TEXT NOT NULL,
            property TEXT NOT NULL,
            role TEXT CHECK (role IN ('label', 'definition', 'term_id', 'comment')),
            value TEXT NOT NULL,
            lang TEXT,
            datatype TEXT,
            line INTEGER,
            {fk}
        );
        CREATE INDEX annotations_subject ON annotations(ontology_id, subject_iri);
        CREATE INDEX annotations_role ON annotations(role, value);
        CREATE TABLE relationships(
            id INTEGER PRIMARY KEY,
            ontology_id INTEGER NOT NULL,
            subject_iri TEXT NOT NULL,
            predicate TEXT NOT NULL,
            target TEXT NOT NULL,
            target_kind TEXT NOT NULL CHECK (target_kind IN ('iri', 'name')),
            target_key TEXT,
            line INTEGER,
            {fk}
        );
        CREATE INDEX relationships_subject ON relationships(ontology_id, subject_iri);
        CREATE INDEX relationships_target ON relationships(target);
        CREATE INDEX relationships_target_key ON relationships(target_key);
        CREATE TABLE imports(
            ontology_id INTEGER NOT NULL REFERENCES ontologies(id) ON DELETE CASCADE,
            iri TEXT NOT NULL,
            PRIMARY KEY (ontology_id, iri)
        ) WITHOUT ROWID;
        CREATE TABLE names(
            ontology_id INTEGER NOT NULL,
            name_key TEXT NOT NULL,
            iri TEXT NOT NULL,
            PRIMARY KEY (ontology_id, name_key),
            {_TERM_FK.format(col="iri")}
        ) WITHOUT ROWID;
        CREATE INDEX names_key ON names(name_key);
        CREATE TABLE dead_letters(
            source TEXT NOT NULL,
            path TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            blob_sha TEXT,
            stage TEXT NOT NULL,
            error_type TEXT NOT NULL,
            message TEXT NOT NULL,
            line INTEGER,
            attempts INTEGER NOT NULL DEFAULT 1,
            at REAL NOT NULL,
            PRIMARY KEY (source, path)
        );
        """
    )


def _v2(conn: apsw.Connection) -> None:
    # Cross-file resolution as views, so a reference resolves whichever file is
    # synced first, and a file synced later makes old references resolve.
    conn.execute(
        """
        CREATE VIEW term_references AS
            SELECT ontology_id, subject_iri, 'axiom:' || kind AS via, target_iri AS target,
                   'iri' AS target_kind, NULL AS target_key, line
              FROM axioms WHERE target_iri IS NOT NULL
            UNION ALL
            SELECT ontology_id, subject_iri, predicate, target, target_kind, target_key, line
              FROM relationships;
        CREATE VIEW dangling_references AS
            SELECT r.* FROM term_references AS r
             WHERE NOT EXISTS (SELECT 1 FROM terms AS t WHERE t.iri = r.target)
               AND (r.target_key IS NULL
                    OR NOT EXISTS (SELECT 1 FROM names AS n WHERE n.name_key = r.target_key))
               AND r.target NOT LIKE 'http://www.w3.org/%'
               AND r.target NOT LIKE '\\_:%' ESCAPE '\\';
        """
    )


def _v3(conn: apsw.Connection) -> None:
    # The path filters a cursor was reached with: a diff from that cursor is only
    # valid under the same filters; other filters mean a reconcile of the whole tree.
    conn.execute("ALTER TABLE sync_state ADD COLUMN filters TEXT NOT NULL DEFAULT ''")


MIGRATIONS: list[Callable[[apsw.Connection], None]] = [_v1, _v2, _v3]
LATEST = len(MIGRATIONS)


def current_version(conn: apsw.Connection) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations("
        "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    return int(scalar(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations"))


def migrate(conn: apsw.Connection, target: int = LATEST) -> int:
    """Apply pending steps up to ``target``, one transaction each; returns the version."""
    version = current_version(conn)
    if version > LATEST:
        raise StoreError(f"ontology schema v{version} is newer than this headrace (v{LATEST})")
    while version < target:
        step = MIGRATIONS[version]
        conn.execute("BEGIN IMMEDIATE")
        try:
            step(conn)
            conn.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, ?)",
                (version + 1, step.__name__.lstrip("_"), time.time()),
            )
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        version += 1
    return version
