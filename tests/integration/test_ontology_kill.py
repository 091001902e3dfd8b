"""``headrace ontology sync`` killed with SIGKILL mid-run resumes and converges."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import pytest
from ontology_support import (  # foreign_keys_hold: autouse, checks every database
    Repo,
    dump,
    fk_violations,
    foreign_keys_hold,  # noqa: F401
    write_pages,
)

from headrace.ontology import OntologySync
from headrace.sinks.ontology_sqlite import OntologyStore

FILES = 600


def _rows(db: Path) -> int:
    try:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM ontologies").fetchone()[0])
    except apsw.Error:
        return 0
    finally:
        conn.close()


def _kill_after(repo: Repo, db: Path, rows: int) -> int:
    """Start a sync, SIGKILL it once ``rows`` files are stored; return the count then."""
    cmd = [
        sys.executable,
        "-c",
        "from headrace.cli.main import main; main()",
        "ontology",
        "sync",
        str(repo.root),
        "--db",
        str(db),
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _rows(db) < rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the sync finished before it could be killed"
    return _rows(db)


def _resume(repo: Repo, db: Path):  # type: ignore[no-untyped-def]
    store = OntologyStore(db)
    try:
        started = time.perf_counter()
        report = OntologySync(store, str(repo.root)).run()
        return report, time.perf_counter() - started
    finally:
        store.close()


def _fresh(repo: Repo, tmp_path: Path, name: str) -> Path:
    fresh = tmp_path / f"fresh-{name}.sqlite"
    store = OntologyStore(fresh)
    OntologySync(store, str(repo.root)).run()
    store.close()
    return fresh


@pytest.mark.parametrize("kill_at", [5, 250])
def test_kill_during_first_sync_resumes(tmp_path: Path, kill_at: int) -> None:
    repo = Repo(tmp_path / "repo")
    write_pages(repo, FILES)
    repo.commit("pages")
    db = tmp_path / "o.sqlite"
    done = _kill_after(repo, db, kill_at)
    assert kill_at <= done < FILES
    assert fk_violations(db) == []
    store = OntologyStore(db)
    assert store.cursor(str(repo.root.resolve())) is None  # never moved before the end
    store.close()
    report, _ = _resume(repo, db)
    assert report.complete
    assert report.stored == FILES - done
    assert dump(db) == dump(_fresh(repo, tmp_path, "first"))
    assert fk_violations(db) == []


def test_kill_during_incremental_sync_resumes(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    write_pages(repo, FILES)
    repo.commit("v1")
    db = tmp_path / "o.sqlite"
    _resume(repo, db)
    write_pages(repo, FILES, tag="v2")  # every page changes
    repo.commit("v2")
    # rows stay at FILES during an update: wait on the commit stamp instead
    conn_db = db
    cmd = [
        sys.executable,
        "-c",
        "from headrace.cli.main import main; main()",
        "ontology",
        "sync",
        str(repo.root),
        "--db",
        str(conn_db),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    head = repo.git("rev-parse", "HEAD").strip()
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline and _stamped(db, head) < 100:
        time.sleep(0.002)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    done = _stamped(db, head)
    assert 100 <= done < FILES
    report, elapsed = _resume(repo, db)
    assert report.mode == "incremental"
    assert report.complete
    assert report.skipped == done
    assert report.stored == FILES - done
    assert dump(db) == dump(_fresh(repo, tmp_path, "incremental"))
    assert fk_violations(db) == []
    assert elapsed < 5  # the bench measures it properly; here only a sanity bound


def _stamped(db: Path, commit: str) -> int:
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return int(
            conn.execute(
                "SELECT count(*) FROM ontologies WHERE commit_sha = ?", (commit,)
            ).fetchone()[0]
        )
    finally:
        conn.close()


def test_sigterm_stops_after_the_current_file_and_exits_130(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    write_pages(repo, FILES)
    repo.commit("pages")
    db = tmp_path / "o.sqlite"
    cmd = [
        sys.executable,
        "-c",
        "from headrace.cli.main import main; main()",
        "ontology",
        "sync",
        str(repo.root),
        "--db",
        str(db),
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while _rows(db) < 50 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 130, "the sync finished before it could be stopped"
    done = _rows(db)
    assert 50 <= done < FILES
    store = OntologyStore(db)
    assert store.cursor(str(repo.root.resolve())) is None
    store.close()
    report, _ = _resume(repo, db)
    assert (report.complete, report.stored) == (True, FILES - done)
    assert dump(db) == dump(_fresh(repo, tmp_path, "stopped"))
