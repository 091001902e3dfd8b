"""``headrace ontology …`` end to end: exit codes, show, failed, search through the index."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from ontology_support import (  # foreign_keys_hold: autouse, checks every database
    Repo,
    foreign_keys_hold,  # noqa: F401
)

BASE = [
    "Lunar Rover.md",
    "Wheel Assembly.md",
    "Base Station.md",
    "Plain Notes.md",
    "pets.owl",
    "people.ttl",
    "agents.nt",
    "shapes.owx",
]


def _cli(*args: str, rc: int = 0) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", "from headrace.cli.main import main; main()", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == rc, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    r = Repo(tmp_path / "repo")
    for name in BASE:
        r.copy_fixture(name, f"onto/{name}")
    r.commit("initial")
    return r


def test_sync_show_status_and_exit_codes(repo: Repo, tmp_path: Path) -> None:
    db = str(tmp_path / "o.sqlite")
    report = json.loads(_cli("ontology", "sync", str(repo.root), "--db", db, "--json"))
    assert report["stored"] == 7
    assert report["complete"] is True
    shown = json.loads(_cli("ontology", "show", "mv:LunarRover", "--db", db, "--json"))[0]
    assert shown["path"] == "onto/Lunar Rover.md"
    assert shown["commit"] == report["commit"]
    assert [s["target"] for s in shown["superclasses"]] == ["mv:Vehicle"]
    assert {r["property"] for r in shown["restrictions"]} == {"mv:hasPart"}
    text = _cli("ontology", "show", "lunar rover", "--db", db)
    assert "has-part → Wheel Assembly = mv:WheelAssembly [onto/Wheel Assembly.md]" in text
    assert "mv:Vehicle (dangling)" in text
    status = json.loads(_cli("ontology", "status", "--db", db, "--json"))
    assert status["counts"]["ontologies"] == 7
    assert status["counts"]["dead_letters"] == 0
    _cli("ontology", "show", "no-such-term", "--db", db, rc=1)
    _cli("ontology", "dangling", "--db", db, "--limit", "0", rc=2)
    _cli("ontology", "sync", str(tmp_path / "missing"), "--db", db, rc=3)
    _cli("ontology", "sync", str(repo.root), "--db", db, "--ref", "no-such-branch", rc=3)
    _cli("ontology", "sync", "--db", db, rc=2)  # missing argument
    _cli("ontology", "sync", str(repo.root), "--db", db, "--docs", rc=2)  # --docs needs --index


def test_failed_lists_file_and_line_and_exit_1(repo: Repo, tmp_path: Path) -> None:
    repo.copy_fixture("Broken Page.md", "onto/Broken Page.md")
    repo.copy_fixture("bad.ttl", "onto/bad.ttl")
    repo.commit("broken")
    db = str(tmp_path / "o.sqlite")
    out = _cli("ontology", "sync", str(repo.root), "--db", db, rc=1)
    assert "2 failed" in out
    failed = _cli("ontology", "failed", "--db", db)
    assert "onto/Broken Page.md:6  [parse] ParseError" in failed
    assert "onto/bad.ttl:4  [parse] ParseError" in failed
    # the rest synced; fixing the files clears their dead letters
    repo.git("rm", "-q", "onto/Broken Page.md", "onto/bad.ttl")
    repo.commit("fixed")
    _cli("ontology", "sync", str(repo.root), "--db", db)
    assert "no failures" in _cli("ontology", "failed", "--db", db)


def test_terms_and_docs_enter_the_search_index(repo: Repo, tmp_path: Path) -> None:
    db = str(tmp_path / "o.sqlite")
    index = str(tmp_path / "search.sqlite")
    args = ("--db", db, "--index", index, "--embedder", "hash", "--docs", "--json")
    out = json.loads(_cli("ontology", "sync", str(repo.root), *args))
    # 7 rendered term pages + the 4 Markdown files of the repository, copied as documents
    assert out["search"]["pages_rendered"] == 7
    assert out["search"]["docs_written"] == 4
    assert out["search"]["files_done"] == 11
    query = ("search", "vehicle that drives on the moon", "--index", index, "--mode", "keyword")
    hits = json.loads(_cli(*query, "--json"))
    paths = [h["path"] for h in hits]
    assert any(p.endswith("/terms/onto/Lunar Rover.md.md") for p in paths[:2])
    assert any(p.endswith("/docs/onto/Lunar Rover.md") for p in paths[:2])
    # a deleted file leaves the index (page and document); the rest is not re-embedded
    repo.git("rm", "-q", "onto/Lunar Rover.md")
    repo.commit("drop rover")
    out = json.loads(_cli("ontology", "sync", str(repo.root), *args))
    assert out["search"]["deleted"] == 2
    assert out["search"]["embeddings_computed"] == 0
    hits = json.loads(_cli(*query, "--json"))
    assert all("Lunar Rover" not in h["path"] for h in hits)
    # without --docs the copied documents leave the index again
    out = json.loads(_cli("ontology", "sync", str(repo.root), *args[:-2], "--json"))
    assert out["search"]["docs_deleted"] == 3
    assert out["search"]["deleted"] == 3


REAL = Path(__file__).parents[1] / "fixtures" / "ontology" / "real"


def test_real_model_finds_the_physical_classes(tmp_path: Path) -> None:
    """The seed's question, on real VisionFlow pages: two of them are physical
    entities (Haptics, Human Interface Device), three are virtual ones."""
    repo = Repo(tmp_path / "repo")
    for path in REAL.glob("*.md"):
        repo.copy_fixture(f"real/{path.name}", f"pages/{path.name}")
    repo.commit("real pages")
    db, index = str(tmp_path / "o.sqlite"), str(tmp_path / "search.sqlite")
    _cli("ontology", "sync", str(repo.root), "--db", db, "--index", index, "--embedder", "minilm")
    query = ("search", "physical object in the metaverse", "--index", index, "--mode", "vector")
    hits = json.loads(_cli(*query, "-k", "10", "--json"))
    pages = list(dict.fromkeys(Path(h["path"]).name for h in hits))
    assert set(pages[:2]) == {"Haptics.md.md", "Human Interface Device.md.md"}, pages
