"""SIGTERM during ``headrace graph ingest``: intake stops, the group being written is
finished and recorded, the exit code is 130, and the next run resumes to the graph of
a fresh ingest."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.integration.sql_graph_support import SAKILA, contributions, copy_sql, ingest, snapshot

from headrace.graph.ingest import PENDING_KEY, GraphIndex

FILES = [
    "mysql-sakila-schema.sql",
    "sqlite-sakila-schema.sql",
    "sql-server-sakila-schema.sql",
    "db2-sakila-schema.sql",
]

# The CLI in a child process; its store sends the process SIGTERM during the first
# group's write (a signal arriving in the middle of a transaction).
CHILD = """
import os, signal, sys
from headrace.sinks import graph_sqlite

class Signalling(graph_sqlite.SqliteGraphStore):
    calls = 0
    def write_files(self, files):
        Signalling.calls += 1
        if Signalling.calls == 1:
            os.kill(os.getpid(), signal.SIGTERM)
        super().write_files(files)

graph_sqlite.SqliteGraphStore = Signalling
sys.argv = ["headrace", "graph", "ingest", sys.argv[1], "--graph", sys.argv[2], "--no-cache",
            "--batch-size", "50"]
from headrace.cli.main import main
main()
"""


def _ledger(graph: Path, root: Path) -> dict[str, str]:
    with GraphIndex(graph) as index:
        assert index.ledger.meta(PENDING_KEY) in (None, "[]")  # nothing left half-written
        return {f.path: f.state for f in index.ledger.files_under([str(root)]).values()}


def test_sigterm_finishes_the_current_group_exits_130_and_the_next_run_resumes(
    tmp_path: Path,
) -> None:
    root = tmp_path / "sakila"
    for copy in range(8):  # 32 files, ~13,000 rows: more than one write group (10,000)
        copy_sql(SAKILA, root / f"copy{copy}", FILES)
    graph = tmp_path / "g.sqlite"
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), str(graph)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 130, proc.stdout[-2000:] + proc.stderr[-2000:]
    done = _ledger(graph, root)
    # The group in flight when the signal came was written to the end and recorded;
    # no file after it was read.
    assert 0 < len(done) < 32
    assert set(done.values()) == {"indexed"}
    with GraphIndex(graph) as index:
        store_files = {r[2] for r in index.store.contributions()}  # type: ignore[attr-defined]
    assert store_files == set(done)  # the graph holds exactly the recorded files

    again = ingest(graph, root)
    assert again.files_done == 32 - len(done)
    assert not again.stopped
    fresh = tmp_path / "fresh.sqlite"
    ingest(fresh, root)
    assert snapshot(graph) == snapshot(fresh)
    assert contributions(graph) == contributions(fresh)


def test_request_stop_before_a_file_is_read_writes_nothing(tmp_path: Path) -> None:
    root = copy_sql(SAKILA, tmp_path / "sakila", FILES[:2])
    graph = tmp_path / "g.sqlite"
    with GraphIndex(graph) as index:
        index.request_stop()
        stats = index.ingest([str(root)])
    assert stats.stopped
    assert stats.files_done == 0
    assert _ledger(graph, root) == {}
    assert ingest(graph, root).files_done == 2
