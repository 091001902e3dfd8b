"""Ontology sync from git: incremental == fresh, renames, rewrites, retries, atomicity."""

from __future__ import annotations

from pathlib import Path

import pytest
from ontology_support import (  # foreign_keys_hold: autouse, checks every database
    Repo,
    dump,
    fk_violations,
    foreign_keys_hold,  # noqa: F401
)

from headrace.errors import RootUnavailableError, TransientError
from headrace.ontology import OntologySync
from headrace.sinks import ontology_query as q
from headrace.sinks import ontology_sqlite
from headrace.sinks.ontology_sqlite import OntologyStore
from headrace.sources.git import GitRepo

BASE = [
    "Lunar Rover.md",
    "Wheel Assembly.md",
    "Base Station.md",
    "Plain Notes.md",
    "pets.owl",
    "people.ttl",
    "agents.nt",
    "bad.ttl",
    "shapes.owx",
]


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    for name in BASE:
        r.copy_fixture(name, f"onto/{name}")
    r.write("README.txt", "not an ontology type: ignored")
    r.commit("initial")
    return r


def _sync(db: Path, location: str, **kwargs: object):  # type: ignore[no-untyped-def]
    store = OntologyStore(db)
    try:
        return OntologySync(store, location, **kwargs).run()  # type: ignore[arg-type]
    finally:
        store.close()


def _assert_equals_fresh(repo: Repo, db: Path, tmp_path: Path, name: str) -> None:
    fresh = tmp_path / f"fresh-{name}.sqlite"
    report = _sync(fresh, str(repo.root))
    assert report.mode == "full"
    assert dump(db) == dump(fresh)
    assert fk_violations(db) == []
    assert fk_violations(fresh) == []


def test_first_sync_stores_every_format_and_dead_letters_the_bad_file(
    repo: Repo, tmp_path: Path
) -> None:
    db = tmp_path / "o.sqlite"
    report = _sync(db, str(repo.root))
    assert (report.mode, report.complete) == ("full", True)
    assert report.stored == 7
    assert report.documents == 1
    assert report.failed == 1
    store = OntologyStore(db)
    failures = q.failures(store.conn)
    assert [(f["path"], f["line"]) for f in failures] == [("onto/bad.ttl", 4)]
    # cross-file: the wikilink [[Wheel Assembly]] resolves to the class of another page
    rover = q.find_terms(store.conn, "mv:LunarRover")[0]
    described = q.describe(store.conn, rover)
    wheels = next(r for r in described["relations"] if r["target"] == "Wheel Assembly")
    assert wheels["resolved"] == {"iri": "mv:WheelAssembly", "path": "onto/Wheel Assembly.md"}
    # the IRI reference from the JSON-LD page resolves to the Logseq class too
    station = q.describe(store.conn, q.find_terms(store.conn, "base station")[0])
    assert station["relations"][0]["resolved"]["iri"] == "mv:LunarRover"
    dangling = {d["target"] for d in q.dangling(store.conn, 1000)}
    assert "Solar Panel" in dangling
    assert "mv:Vehicle" in dangling
    assert "Wheel Assembly" not in dangling
    # Turtle's Person is a subclass of the N-Triples file's Agent: resolved across files
    person = q.describe(store.conn, q.find_terms(store.conn, "http://example.org/pets#Person")[0])
    assert person["superclasses"][0]["resolved"]["path"] == "onto/agents.nt"
    store.close()
    assert fk_violations(db) == []


def test_incremental_changes_converge_to_a_fresh_sync(repo: Repo, tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite"
    _sync(db, str(repo.root))
    first = repo.git("rev-parse", "HEAD").strip()

    # modify, rename (unchanged content), delete, fix the broken file, add one
    rover = (repo.root / "onto/Lunar Rover.md").read_text()
    repo.write("onto/Lunar Rover.md", rover.replace("drives on", "rolls across"))
    repo.mv("onto/people.ttl", "vocab/people.ttl")
    repo.git("rm", "-q", "onto/agents.nt")
    repo.write("onto/bad.ttl", "@prefix : <http://example.org/x#> .\n:a :b :c .\n")
    repo.copy_fixture("Broken Page.md", "onto/Broken Page.md")
    repo.commit("second")
    report = _sync(db, str(repo.root))
    assert report.mode == "incremental"
    assert report.previous == first
    assert (report.stored, report.renamed, report.deleted, report.failed) == (2, 1, 1, 1)
    _assert_equals_fresh(repo, db, tmp_path, "second")

    # a page loses its block: its rows go; a rename with an edit is delete + add
    repo.write("onto/Wheel Assembly.md", "# just notes now\n")
    repo.mv("onto/pets.owl", "onto/animals.owl")
    pets = (repo.root / "onto/animals.owl").read_text()
    repo.write("onto/animals.owl", pets.replace("A domesticated canine.", "A dog."))
    repo.commit("third")
    report = _sync(db, str(repo.root))
    assert report.documents == 1
    _assert_equals_fresh(repo, db, tmp_path, "third")
    assert _sync(db, str(repo.root)).mode == "up-to-date"


def test_history_rewrite_reconciles(repo: Repo, tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite"
    base = repo.git("rev-parse", "HEAD").strip()
    repo.git("rm", "-q", "onto/shapes.owx")
    repo.commit("drop shapes")
    _sync(db, str(repo.root))
    # rewrite: go back and take another path; the synced commit is no longer an ancestor
    repo.git("reset", "-q", "--hard", base)
    repo.mv("onto/pets.owl", "pets-renamed.owl")
    repo.commit("rewritten")
    repo.git("reflog", "expire", "--expire=now", "--all")
    repo.git("gc", "-q", "--prune=now")
    report = _sync(db, str(repo.root))
    assert report.mode == "reconcile"
    assert report.renamed == 1  # found by blob id, no re-parse
    _assert_equals_fresh(repo, db, tmp_path, "rewrite")


def test_path_filters(repo: Repo, tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite"
    report = _sync(db, str(repo.root), include=["*.md"], exclude=["Plain*"])
    assert report.stored == 3
    assert report.documents == 0
    assert report.failed == 0
    repo.mv("onto/Base Station.md", "onto/Base Station.txt")
    repo.commit("rename out of the filter")
    report = _sync(db, str(repo.root), include=["*.md"], exclude=["Plain*"])
    assert report.deleted == 1
    assert fk_violations(db) == []


def test_changed_filters_reconcile(repo: Repo, tmp_path: Path) -> None:
    db = tmp_path / "o.sqlite"
    _sync(db, str(repo.root), include=["*.md"])
    report = _sync(db, str(repo.root), include=["*.ttl", "*.nt"])
    assert report.mode == "reconcile"
    fresh = tmp_path / "fresh.sqlite"
    _sync(fresh, str(repo.root), include=["*.ttl", "*.nt"])
    assert dump(db) == dump(fresh)


def test_remote_url_is_mirrored_and_fetched(repo: Repo, tmp_path: Path) -> None:
    url = f"file://{repo.root}"
    db = tmp_path / "o.sqlite"
    cache = tmp_path / "cache"
    assert _sync(db, url, cache_dir=cache).stored == 7
    repo.git("rm", "-q", "onto/agents.nt")
    repo.commit("remote change")
    report = _sync(db, url, cache_dir=cache)
    assert report.mode == "incremental"
    assert report.deleted == 1
    # a clone killed half-way left its temporary folder: the next clone removes it
    other = f"file://{repo.root}/"  # another URL: another mirror, a new clone
    mirror = GitRepo(other, cache_dir=cache).git_dir
    abandoned = mirror.with_name(mirror.name + ".tmp999999999")
    abandoned.mkdir(parents=True)
    _sync(tmp_path / "other.sqlite", other, cache_dir=cache)
    assert not abandoned.exists()
    assert (mirror / "HEAD").exists()
    with pytest.raises(RootUnavailableError, match="unreachable"):
        _sync(db, f"file://{tmp_path}/nowhere", cache_dir=cache, backoff_s=0.001)


def test_transient_store_failures_are_retried(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ontology_sqlite.OntologyStore.replace
    calls = {"n": 0}

    def flaky(self: OntologyStore, *args: object, **kwargs: object) -> int:
        calls["n"] += 1
        if calls["n"] <= 2:
            raise TransientError("database is busy")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ontology_sqlite.OntologyStore, "replace", flaky)
    report = _sync(tmp_path / "o.sqlite", str(repo.root), backoff_s=0.001)
    assert report.retries == 2
    assert report.stored == 7
    assert report.complete


def test_lasting_transient_failure_keeps_the_cursor(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ontology_sqlite.OntologyStore.replace

    def down_for_pets(self: OntologyStore, source: str, path: str, *a: object, **k: object) -> int:
        if path.endswith("pets.owl"):
            raise TransientError("disk I/O error")
        return real(self, source, path, *a, **k)  # type: ignore[arg-type]

    db = tmp_path / "o.sqlite"
    monkeypatch.setattr(ontology_sqlite.OntologyStore, "replace", down_for_pets)
    report = _sync(db, str(repo.root), backoff_s=0.001, attempts=2)
    assert not report.complete
    assert len(report.transient_failures) == 1
    store = OntologyStore(db)
    assert store.cursor(str(repo.root.resolve())) is None
    store.close()
    monkeypatch.setattr(ontology_sqlite.OntologyStore, "replace", real)
    report = _sync(db, str(repo.root))
    # only pets.owl is stored now: the six others were committed by the first run
    assert report.complete
    assert report.stored == 1
    assert report.failed == 0
    _assert_equals_fresh(repo, db, tmp_path, "after-transient")


def test_a_failed_replace_leaves_the_old_version(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "o.sqlite"
    _sync(db, str(repo.root))
    before = dump(db)
    rover = (repo.root / "onto/Lunar Rover.md").read_text()
    repo.write("onto/Lunar Rover.md", rover.replace("Lunar Rover", "Moon Buggy"))
    repo.commit("edit")

    def half_then_crash(c: object, oid: int, doc: object) -> None:
        c.execute(  # type: ignore[attr-defined]
            "INSERT INTO terms(ontology_id, iri, kind) VALUES (?, 'x:half', 'class')", (oid,)
        )
        raise RuntimeError("crash in the middle of a file's insert")

    monkeypatch.setattr(ontology_sqlite, "_insert_doc", half_then_crash)
    with pytest.raises(RuntimeError):
        _sync(db, str(repo.root))
    assert dump(db) == before
    assert fk_violations(db) == []


def test_oversized_and_crashing_files_are_dead_letters(
    repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.ontology import sync as sync_module

    repo.write("onto/huge.ttl", "# " + "x" * 5000 + "\n")
    repo.commit("huge")
    real = sync_module.parse_ontology

    def buggy(path: str, data: bytes):  # type: ignore[no-untyped-def]
        if path.endswith("shapes.owx"):
            raise KeyError("a parser bug")
        return real(path, data)

    monkeypatch.setattr(sync_module, "parse_ontology", buggy)
    db = tmp_path / "o.sqlite"
    store = OntologyStore(db)
    report = OntologySync(store, str(repo.root), max_bytes=4096).run()
    failures = {f["path"]: f for f in q.failures(store.conn)}
    store.close()
    assert report.complete
    assert failures["onto/huge.ttl"]["stage"] == "read"
    assert failures["onto/shapes.owx"]["error_type"] == "KeyError"
    assert report.stored == 6  # everything else synced; the blob reader kept working
