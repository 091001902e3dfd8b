"""The ontology database's migrations, step by step, and its foreign keys."""

from __future__ import annotations

from pathlib import Path

import apsw
import pytest

from headrace.errors import StoreError
from headrace.parsers.ontology.model import Axiom, OntologyDoc
from headrace.sinks.ontology_schema import LATEST, current_version, migrate
from headrace.sinks.ontology_sqlite import OntologyStore, connect_ontology_db


def _objects(conn: apsw.Connection) -> dict[str, str]:
    return dict(conn.execute("SELECT name, type FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'"))


def test_each_step_alone(tmp_path: Path) -> None:
    conn = apsw.Connection(str(tmp_path / "o.sqlite"))
    conn.execute("PRAGMA foreign_keys=ON")
    assert migrate(conn, 1) == 1
    objs = _objects(conn)
    for table in (
        "ontologies",
        "terms",
        "classes",
        "properties",
        "individuals",
        "axioms",
        "annotations",
        "relationships",
        "imports",
        "names",
        "dead_letters",
        "sync_state",
    ):
        assert objs[table] == "table"
    assert "dangling_references" not in objs
    # data written at v1 survives step 2
    conn.execute(
        "INSERT INTO ontologies(id, source, path, format, commit_sha, blob_sha, content_hash,"
        " parser_version, synced_at) VALUES (1, 's', 'p', 'ttl', 'c', 'b', 'h', '1', 0)"
    )
    conn.execute("INSERT INTO terms VALUES (1, 'x:A', 'class', 1)")
    conn.execute(
        "INSERT INTO axioms(ontology_id, subject_iri, kind, target_iri, expression)"
        " VALUES (1, 'x:A', 'subclass_of', 'x:Missing', 'SubClassOf(x:A x:Missing)')"
    )
    assert migrate(conn, 2) == 2
    assert _objects(conn)["dangling_references"] == "view"
    assert conn.execute("SELECT target FROM dangling_references").fetchall() == [("x:Missing",)]
    conn.execute("INSERT INTO sync_state VALUES ('s', 'loc', 'HEAD', 'c', '1', 0)")
    assert migrate(conn) == LATEST == 3
    # step 3: a cursor written before filters were recorded reads as "no filters known"
    assert conn.execute("SELECT filters FROM sync_state").fetchall() == [("",)]
    names = [r[0] for r in conn.execute("SELECT name FROM schema_migrations ORDER BY version")]
    assert names == ["v1", "v2", "v3"]
    assert migrate(conn) == 3  # idempotent


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    conn = apsw.Connection(str(tmp_path / "o.sqlite"))
    current_version(conn)
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 0)")
    with pytest.raises(StoreError, match="newer"):
        migrate(conn)


def test_composite_foreign_keys_cascade(tmp_path: Path) -> None:
    store = OntologyStore(tmp_path / "o.sqlite")
    doc = OntologyDoc(format="ofn")
    doc.term("x:A", "class")
    doc.term("x:p", "object_property")
    doc.axioms.append(Axiom("x:A", "subclass_of", "SubClassOf(x:A x:B)", "x:B"))
    doc.annotate("x:A", "http://www.w3.org/2000/01/rdf-schema#label", "A")
    oid = store.replace(
        "s", "a.ofn", doc, commit_sha="c", blob_sha="b", content_hash="h", parser_version="1"
    )
    conn = store.conn
    assert conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(apsw.ConstraintError):  # an axiom about a term the file lacks
        conn.execute(
            "INSERT INTO axioms(ontology_id, subject_iri, kind, expression)"
            " VALUES (?, 'x:Nope', 'k', 'e')",
            (oid,),
        )
    store.remove("s", "a.ofn")
    for table in ("terms", "classes", "properties", "axioms", "annotations", "names"):
        assert conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0
    assert list(conn.execute("PRAGMA foreign_key_check")) == []
    store.close()


def test_connect_twice_is_a_no_op(tmp_path: Path) -> None:
    connect_ontology_db(tmp_path / "o.sqlite").close()
    conn = connect_ontology_db(tmp_path / "o.sqlite")
    assert current_version(conn) == LATEST
    conn.close()


def test_a_failing_step_leaves_the_previous_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.sinks import ontology_schema

    def broken(conn: apsw.Connection) -> None:
        conn.execute("CREATE TABLE half_done(x)")
        raise apsw.SQLError("step fails half-way")

    conn = apsw.Connection(str(tmp_path / "o.sqlite"))
    assert migrate(conn, 2) == 2
    with monkeypatch.context() as m:
        m.setattr(ontology_schema, "MIGRATIONS", [*ontology_schema.MIGRATIONS[:2], broken])
        with pytest.raises(apsw.SQLError):
            ontology_schema.migrate(conn, 3)
    assert current_version(conn) == 2
    assert "half_done" not in _objects(conn)
    assert migrate(conn) == LATEST  # the real step 3 applies on the next open
