"""Helpers of the ontology sync tests: throwaway git repositories and a canonical dump."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import apsw
import pytest

FIXTURES = Path(__file__).parents[1] / "fixtures" / "ontology"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "GIT_CONFIG_GLOBAL": os.devnull,
}


class Repo:
    """A git repository in a temporary folder, driven by the ``git`` command."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str) -> str:
        out = subprocess.run(
            ["git", *args],
            cwd=self.root,
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            check=True,
        )
        return out.stdout.decode()

    def write(self, rel: str, data: str | bytes) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(data, str):
            path.write_text(data, encoding="utf-8")
        else:
            path.write_bytes(data)

    def copy_fixture(self, name: str, rel: str | None = None) -> None:
        target = self.root / (rel or name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(FIXTURES / name, target)

    def mv(self, old: str, new: str) -> None:
        (self.root / new).parent.mkdir(parents=True, exist_ok=True)
        self.git("mv", old, new)

    def commit(self, message: str = "change") -> str:
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", message)
        return self.git("rev-parse", "HEAD").strip()


_DUMP = {
    "ontologies": "SELECT source, path, iri, format, blob_sha, content_hash, parser_version"
    " FROM ontologies",
    "terms": "SELECT o.path, t.iri, t.kind, t.line FROM terms t JOIN ontologies o"
    " ON o.id = t.ontology_id",
    "classes": "SELECT o.path, x.iri FROM classes x JOIN ontologies o ON o.id = x.ontology_id",
    "properties": "SELECT o.path, x.iri, x.kind FROM properties x JOIN ontologies o"
    " ON o.id = x.ontology_id",
    "individuals": "SELECT o.path, x.iri FROM individuals x JOIN ontologies o"
    " ON o.id = x.ontology_id",
    "axioms": "SELECT o.path, subject_iri, kind, property_iri, target_iri, expression, line"
    " FROM axioms x JOIN ontologies o ON o.id = x.ontology_id",
    "annotations": "SELECT o.path, subject_iri, property, role, value, lang, datatype, line"
    " FROM annotations x JOIN ontologies o ON o.id = x.ontology_id",
    "relationships": "SELECT o.path, subject_iri, predicate, target, target_kind, target_key,"
    " line FROM relationships x JOIN ontologies o ON o.id = x.ontology_id",
    "imports": "SELECT o.path, x.iri FROM imports x JOIN ontologies o ON o.id = x.ontology_id",
    "names": "SELECT o.path, name_key, x.iri FROM names x JOIN ontologies o"
    " ON o.id = x.ontology_id",
    "dead_letters": "SELECT path, blob_sha, stage, error_type, message, line FROM dead_letters",
    "dangling": "SELECT o.path, d.subject_iri, d.via, d.target FROM dangling_references d"
    " JOIN ontologies o ON o.id = d.ontology_id",
}


def dump(db: Path) -> dict[str, list[Any]]:
    """Every row of the model, keyed by path instead of ids, sorted: equal states compare equal.

    Commits are left out on purpose: a file synced at an older commit and not
    changed since carries that commit, a fresh sync stamps the newest one.
    """
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return {
            table: sorted(conn.execute(sql).fetchall(), key=repr) for table, sql in _DUMP.items()
        }
    finally:
        conn.close()


def fk_violations(db: Path) -> list[Any]:
    conn = apsw.Connection(str(db))
    try:
        return list(conn.execute("PRAGMA foreign_key_check")) + [
            r for r in conn.execute("PRAGMA integrity_check") if r[0] != "ok"
        ]
    finally:
        conn.close()


def ontology_dbs(root: Path) -> list[Path]:
    """Every SQLite file under ``root`` that holds an ontology model."""
    found = []
    for path in sorted(root.rglob("*.sqlite")):
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        try:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
        finally:
            conn.close()
        if "ontologies" in tables:
            found.append(path)
    return found


@pytest.fixture(autouse=True)
def foreign_keys_hold(tmp_path: Path) -> Iterator[None]:
    """After every test of a module that imports it: every ontology database under
    ``tmp_path`` passes ``PRAGMA foreign_key_check`` and ``integrity_check``."""
    yield
    for db in ontology_dbs(tmp_path):
        assert fk_violations(db) == [], db


PAGE = """- ### OntologyBlock
\t- term-id:: {n}
\t- preferred-term:: Generated Term {n}
\t- definition:: Generated class number {n} ({tag}) for the kill and resume tests.
\t- owl:class:: gen:Term{n}
\t- #### Relationships
\t\t- related-to:: [[Generated Term {m}]]
\t- #### OWL Axioms
\t\t- ```clojure
\t\t  Declaration(Class(gen:Term{n}))
\t\t  SubClassOf(gen:Term{n} gen:Term{m})
\t\t  SubClassOf(gen:Term{n} ObjectSomeValuesFrom(gen:hasPart gen:Term{m}))
\t\t  ```
"""


def write_pages(repo: Repo, count: int, tag: str = "v1", start: int = 0) -> None:
    """``count`` generated Logseq pages whose classes refer to one another."""
    for n in range(start, start + count):
        repo.write(f"pages/Generated Term {n}.md", PAGE.format(n=n, m=(n + 1) % count, tag=tag))
