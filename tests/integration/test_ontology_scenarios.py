"""Ontology sync scenarios: a commit history synced step by step and in one jump,
renames across file types, hostile XML in a repository, and error classification
(transient → retried, permanent → dead letter) at each boundary: git, blobs, SQLite."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
import pytest
from ontology_support import (  # foreign_keys_hold: autouse, checks every database
    Repo,
    dump,
    fk_violations,
    foreign_keys_hold,  # noqa: F401
)

from headrace.errors import TransientError
from headrace.ontology import OntologySync, SyncReport
from headrace.ontology import sync as sync_module
from headrace.sinks import ontology_query as q
from headrace.sinks import ontology_sqlite
from headrace.sinks.ontology_sqlite import OntologyStore
from headrace.sources import git as git_module

BASE = ["Lunar Rover.md", "Wheel Assembly.md", "Base Station.md", "pets.owl", "people.ttl"]


def _sync(db: Path, repo: Repo, **kwargs: Any) -> SyncReport:
    store = OntologyStore(db)
    try:
        return OntologySync(store, str(repo.root), backoff_s=0.001, **kwargs).run()
    finally:
        store.close()


def _fresh(repo: Repo, tmp_path: Path, name: str) -> dict[str, list[Any]]:
    db = tmp_path / f"fresh-{name}.sqlite"
    assert _sync(db, repo).mode == "full"
    return dump(db)


def _history(repo: Repo) -> list[Callable[[], None]]:
    """Commits, each one kind of change; the last one rewrites history."""

    def add() -> None:
        repo.copy_fixture("agents.nt", "onto/agents.nt")
        repo.copy_fixture("shapes.owx", "onto/shapes.owx")

    def modify() -> None:
        rover = (repo.root / "onto/Lunar Rover.md").read_text()
        repo.write("onto/Lunar Rover.md", rover.replace("Lunar Rover", "Moon Rover"))

    def rename() -> None:
        repo.mv("onto/people.ttl", "vocab/people.ttl")
        repo.mv("onto/Wheel Assembly.md", "pages/Wheel Assembly.md")

    def delete() -> None:
        repo.git("rm", "-q", "onto/shapes.owx")

    def break_and_type_change() -> None:
        repo.copy_fixture("bad.ttl", "onto/bad.ttl")
        repo.mv("onto/agents.nt", "onto/agents.txt")  # leaves the ontology types

    def rewrite() -> None:
        repo.git("reset", "-q", "--hard", "HEAD~3")  # back to after "modify"
        repo.write("notes/agents.ttl", (repo.root / "onto/agents.nt").read_text())
        repo.git("rm", "-q", "onto/agents.nt")

    return [add, modify, rename, delete, break_and_type_change, rewrite]


def test_each_commit_and_one_jump_converge_to_a_fresh_sync(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    for name in BASE:
        repo.copy_fixture(name, f"onto/{name}")
    repo.commit("base")
    step_db, jump_db = tmp_path / "step.sqlite", tmp_path / "jump.sqlite"
    _sync(step_db, repo)
    _sync(jump_db, repo)
    modes = []
    for n, change in enumerate(_history(repo)):
        change()
        repo.commit(f"change {n}")
        report = _sync(step_db, repo)
        modes.append(report.mode)
        assert dump(step_db) == _fresh(repo, tmp_path, f"step{n}"), change.__name__
        assert fk_violations(step_db) == []
        if n == 3:  # the jump db catches up over four commits in one diff
            assert _sync(jump_db, repo).mode == "incremental"
            assert dump(jump_db) == dump(step_db)
    assert modes == ["incremental"] * 5 + ["reconcile"]
    assert _sync(jump_db, repo).mode == "reconcile"
    assert dump(jump_db) == dump(step_db)


def test_renames_across_the_ontology_types(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.copy_fixture("people.ttl", "a/people.ttl")
    repo.copy_fixture("agents.nt", "a/agents.txt")
    repo.commit("base")
    db = tmp_path / "o.sqlite"
    assert _sync(db, repo).stored == 1
    repo.mv("a/people.ttl", "a/people.txt")  # out of the types: a deletion
    repo.mv("a/agents.txt", "a/agents.nt")  # into them: an addition
    repo.commit("swap")
    report = _sync(db, repo)
    assert (report.mode, report.deleted, report.stored, report.renamed) == (
        "incremental",
        1,
        1,
        0,
    )
    assert dump(db) == _fresh(repo, tmp_path, "swap")
    # moves that change what the same bytes mean are parsed again, others are renames:
    # relative IRIs resolve against the path; a Logseq page's name is its file name
    repo.write("rel/local.ttl", "<#Thing> a <http://www.w3.org/2002/07/owl#Class> .\n")
    repo.copy_fixture("Wheel Assembly.md", "pages/Wheel Assembly.md")
    repo.copy_fixture("Lunar Rover.md", "pages/Lunar Rover.md")
    repo.commit("more")
    _sync(db, repo)
    repo.mv("rel/local.ttl", "moved/local.ttl")
    repo.mv("pages/Wheel Assembly.md", "pages/Wheels.md")
    repo.mv("pages/Lunar Rover.md", "archive/Lunar Rover.md")
    repo.commit("moves")
    report = _sync(db, repo)
    assert (report.renamed, report.stored, report.deleted) == (1, 2, 2)
    assert dump(db) == _fresh(repo, tmp_path, "moves")


LAUGHS = "\n".join(
    ['<!ENTITY a0 "lol">'] + [f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)]
)
RDF_DOC = (
    '<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n{dtd}\n]>\n'
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    ' xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">\n'
    '<rdf:Description rdf:about="http://x/a"><rdfs:label>{ref}</rdfs:label>'
    "</rdf:Description></rdf:RDF>\n"
)
OWX_DOC = (
    '<?xml version="1.0"?>\n<!DOCTYPE Ontology [\n{dtd}\n]>\n'
    '<Ontology xmlns="http://www.w3.org/2002/07/owl#" ontologyIRI="http://x/o">\n'
    '<Declaration><Class IRI="http://x/{ref}"/></Declaration></Ontology>\n'
)


def test_hostile_xml_in_a_repository_is_refused_and_the_rest_syncs(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-VALUE")
    xxe = f'<!ENTITY x SYSTEM "file://{secret}">'
    repo = Repo(tmp_path / "repo")
    repo.copy_fixture("pets.owl", "ok/pets.owl")
    repo.write("evil/laughs.owl", RDF_DOC.format(dtd=LAUGHS, ref="&a9;"))
    repo.write("evil/xxe.rdf", RDF_DOC.format(dtd=xxe, ref="&x;"))
    repo.write("evil/xxe.owx", OWX_DOC.format(dtd=xxe, ref="&x;"))
    repo.write("evil/param.owl", RDF_DOC.format(dtd='<!ENTITY % p SYSTEM "http://x/p">%p;', ref=""))
    repo.commit("hostile")
    db = tmp_path / "o.sqlite"
    report = _sync(db, repo)
    assert (report.stored, report.failed, report.outcome) == (1, 4, "partial")
    store = OntologyStore(db)
    failures = {f["path"]: f for f in q.failures(store.conn)}
    store.close()
    assert set(failures) == {"evil/laughs.owl", "evil/xxe.rdf", "evil/xxe.owx", "evil/param.owl"}
    assert all(f["stage"] == "parse" and f["line"] == 2 for f in failures.values())
    assert "nested expansion" in failures["evil/laughs.owl"]["message"]
    assert b"TOP-SECRET" not in db.read_bytes()


def test_a_dead_blob_reader_is_restarted_by_the_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    for name in BASE:
        repo.copy_fixture(name, f"onto/{name}")
    repo.commit("base")
    real = git_module.BlobReader._read
    calls = {"n": 0}

    def dies_on_third(self: git_module.BlobReader, sha: str, max_bytes: int | None) -> bytes:
        calls["n"] += 1
        if calls["n"] == 3:
            self._proc.kill()  # git cat-file vanishes under the reader
            self._proc.wait()
        return real(self, sha, max_bytes)

    monkeypatch.setattr(git_module.BlobReader, "_read", dies_on_third)
    db = tmp_path / "o.sqlite"
    report = _sync(db, repo)
    assert (report.complete, report.stored, report.failed) == (True, 5, 0)
    assert report.retries == 1
    assert dump(db) == _fresh(repo, tmp_path, "blobs")


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (apsw.IOError("disk I/O error"), True),
        (apsw.BusyError("database is locked"), True),
        (apsw.FullError("database or disk is full"), True),
        (apsw.ConstraintError("CHECK constraint failed"), False),
    ],
)
def test_sqlite_errors_are_classified_by_type(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: apsw.Error, transient: bool
) -> None:
    repo = Repo(tmp_path / "repo")
    for name in BASE:
        repo.copy_fixture(name, f"onto/{name}")
    repo.commit("base")
    real = ontology_sqlite._insert_doc
    raised = {"n": 0}

    def fails_for_pets(c: apsw.Connection, oid: int, doc: Any) -> None:
        real(c, oid, doc)
        if doc.iri == "http://example.org/pets" and (not transient or raised["n"] == 0):
            raised["n"] += 1
            raise error

    monkeypatch.setattr(ontology_sqlite, "_insert_doc", fails_for_pets)
    db = tmp_path / "o.sqlite"
    report = _sync(db, repo)
    if transient:  # retried: the second attempt stores the file
        assert (report.retries, report.stored, report.failed, report.outcome) == (
            1,
            5,
            0,
            "complete",
        )
        return
    assert (report.retries, report.stored, report.failed, report.outcome) == (0, 4, 1, "partial")
    store = OntologyStore(db)
    (failure,) = q.failures(store.conn)
    assert store.count("SELECT count(*) FROM ontologies WHERE path = 'onto/pets.owl'") == 0
    store.close()
    assert (failure["path"], failure["stage"], failure["error_type"]) == (
        "onto/pets.owl",
        "store",
        "StoreError",
    )


def test_a_flaky_fetch_is_retried_with_backoff(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    repo.copy_fixture("people.ttl", "people.ttl")
    repo.commit("base")
    real = git_module.GitRepo.fetch
    calls = {"n": 0}

    def flaky(self: git_module.GitRepo) -> None:
        calls["n"] += 1
        if calls["n"] < 3:
            raise TransientError("Could not resolve host")
        real(self)

    monkeypatch.setattr(git_module.GitRepo, "fetch", flaky)
    report = _sync(tmp_path / "o.sqlite", repo)
    assert (report.retries, report.stored, report.complete) == (2, 1, True)


def test_a_parser_upgrade_reconciles_every_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = Repo(tmp_path / "repo")
    for name in BASE:
        repo.copy_fixture(name, f"onto/{name}")
    repo.commit("base")
    db = tmp_path / "o.sqlite"
    _sync(db, repo)
    assert _sync(db, repo).mode == "up-to-date"
    monkeypatch.setattr(sync_module, "PARSER_VERSION", "next")
    report = _sync(db, repo)
    assert (report.mode, report.stored) == ("reconcile", 5)
    store = OntologyStore(db)
    assert store.count("SELECT count(*) FROM ontologies WHERE parser_version != 'next'") == 0
    store.close()


def test_dangling_references_are_counted_and_kept(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.copy_fixture("Lunar Rover.md", "Lunar Rover.md")
    repo.commit("rover alone")
    db = tmp_path / "o.sqlite"
    alone = _sync(db, repo)
    assert alone.dangling is not None
    assert alone.dangling > 0
    repo.copy_fixture("Wheel Assembly.md", "Wheel Assembly.md")
    repo.commit("its wheels")
    # the new file defines what the rover referred to: fewer references dangle
    report = _sync(db, repo)
    assert report.dangling is not None
    assert 0 < report.dangling < alone.dangling
    assert _sync(db, repo).dangling is None  # nothing changed, nothing counted


def test_the_foreign_key_check_can_fail(tmp_path: Path) -> None:
    db = tmp_path / "orphan.sqlite"
    OntologyStore(db).close()
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA foreign_keys=OFF")
    conn.execute("INSERT INTO terms VALUES (42, 'x:Orphan', 'class', 1)")
    conn.close()
    assert fk_violations(db) != []
    db.unlink()  # so that the autouse check of this test passes
