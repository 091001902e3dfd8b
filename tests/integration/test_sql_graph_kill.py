"""SIGKILL in the middle of graph writes: the next run converges on a fresh ingest's graph."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.sql_graph_support import SAKILA, contributions, copy_sql, ingest, snapshot

from headrace.graph.ingest import GraphIndex

# Runs one ingest whose store kills the process at write call N. The WAL is
# checkpointed by the background thread from 4 frames on, so the kill may land in one.
CHILD = """
import sys
from headrace.graph.ingest import GraphIndex
from headrace.ledger import checkpoints
checkpoints.CHECKPOINT_PAGES = 4
from headrace.sinks.graph_sqlite import SqliteGraphStore
from headrace.testing.graph import FaultyGraphStore
graph, root, n, whole = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4] == "1"
factory = lambda conn: FaultyGraphStore(SqliteGraphStore(conn), crash_at=n, whole_files=whole)
with GraphIndex(graph, store_factory=factory, batch_size=50, group_rows=400) as index:
    index.ingest([root])
"""

FILES = ["mysql-sakila-schema.sql", "sqlite-sakila-schema.sql", "sql-server-sakila-schema.sql"]


def _killed_run(graph: Path, root: Path, n: int, *, whole: bool = False) -> None:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(graph), str(root), str(n), str(int(whole))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == -9, proc.stderr[-2000:]


def _expect_converged(tmp_path: Path, graph: Path, root: Path) -> None:
    ingest(graph, root)
    fresh = tmp_path / "fresh.sqlite"
    ingest(fresh, root)
    assert snapshot(graph) == snapshot(fresh)
    assert contributions(graph) == contributions(fresh)  # the store's inner state too
    with GraphIndex(graph) as index:
        states = {f.path: f.state for f in index.ledger.files_under([str(root)]).values()}
    assert states == dict.fromkeys((str(p) for p in sorted(root.glob("*.sql"))), "indexed")
    fresh.unlink()


@pytest.mark.parametrize("n", [1, 4, 9, 15, 22, 31])  # 31 write calls in all
def test_kill_during_first_ingest_converges(tmp_path: Path, n: int) -> None:
    root = copy_sql(SAKILA, tmp_path / "sakila", FILES)
    graph = tmp_path / "g.sqlite"
    _killed_run(graph, root, n)
    _expect_converged(tmp_path, graph, root)


@pytest.mark.parametrize("n", [1, 2, 4, 5])  # 5 write calls in all: write_files, finishes
def test_kill_during_a_first_ingest_by_whole_files_converges(tmp_path: Path, n: int) -> None:
    root = copy_sql(SAKILA, tmp_path / "sakila", FILES)
    graph = tmp_path / "g.sqlite"
    _killed_run(graph, root, n, whole=True)
    _expect_converged(tmp_path, graph, root)


@pytest.mark.parametrize("n", [2, 6, 10])  # the edit run makes 10 write calls
def test_kill_during_an_edit_then_revert_converges(tmp_path: Path, n: int) -> None:
    """The hard case: rows of the new version half written, then the file flips back."""
    root = copy_sql(SAKILA, tmp_path / "sakila", FILES)
    graph = tmp_path / "g.sqlite"
    ingest(graph, root)
    target = root / "mysql-sakila-schema.sql"
    original = tmp_path / "original.sql"
    shutil.copy(target, original)
    target.write_text(target.read_text().replace("CREATE TABLE film_text", "CREATE TABLE ft2"))
    _killed_run(graph, root, n)
    shutil.copy(original, target)  # same content as the ledger's: only "touched"
    _expect_converged(tmp_path, graph, root)
