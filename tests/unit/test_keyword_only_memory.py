"""Keyword-only runs keep their memory small (issue 3: peak RSS <= 100 MB, flat).

They never load numpy or tokenizers (~16 and ~7 MB of a process's RSS; only runs
with a model need them), checked in a fresh interpreter since this test process has
them loaded; and their runner holds half-size windows with one in Q2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from headrace import Index, RunStats, Settings
from headrace.runtime.runner import KEYWORD_ONLY, WINDOW_ITEMS
from headrace.testing.embedders import HashEmbedder

_SCRIPT = """
import json, sys
from headrace import Index, Settings
root, index = sys.argv[1], sys.argv[2]
with Index(index, settings=Settings(), embedder="none") as idx:
    idx.ingest([root])
    hits = idx.search("ledger commit")
heavy = sorted(m for m in ("numpy", "tokenizers", "onnxruntime") if m in sys.modules)
print(json.dumps({"heavy": heavy, "hits": len(hits)}))
"""


def test_keyword_only_ingest_and_search_load_no_model_libraries(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    lines = [json.dumps({"n": n, "message": f"ledger commit {n}"}) for n in range(50)]
    (root / "app.jsonl").write_text("\n".join(lines) + "\n")
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(root), str(tmp_path / "index.sqlite")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["hits"] > 0  # the run did ingest and search
    assert result["heavy"] == []


_CLI = """
import json, sys
from headrace.cli.main import app
try:
    app(["ingest", sys.argv[1], "--index", sys.argv[2], "--embedder", "none"])
except SystemExit as exc:
    assert not exc.code, exc.code
heavy = sorted(m for m in ("numpy", "tokenizers", "onnxruntime", "sqlglot") if m in sys.modules)
print(json.dumps({"heavy": heavy}))
"""


def test_the_cli_loads_no_model_or_sql_libraries_for_a_keyword_only_ingest(
    tmp_path: Path,
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.jsonl").write_text(json.dumps({"message": "ledger commit"}) + "\n")
    index = tmp_path / "index.sqlite"
    out = subprocess.run(
        [sys.executable, "-c", _CLI, str(root), str(index)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert index.exists()  # the command ran
    assert json.loads(out.stdout.strip().splitlines()[-1])["heavy"] == []


def test_keyword_only_runs_hold_smaller_windows_than_model_runs(tmp_path: Path) -> None:
    with Index(tmp_path / "kw.sqlite", settings=Settings(), embedder="none") as idx:
        lean = idx._make_runner(RunStats())
    with Index(tmp_path / "model.sqlite", settings=Settings(), embedder=HashEmbedder()) as idx:
        full = idx._make_runner(RunStats())
    assert (lean.max_window_items, lean.q2.max_items) == (
        KEYWORD_ONLY["max_window_items"],
        KEYWORD_ONLY["q2_windows"],
    )
    assert lean.q1.max_items == lean.max_window_items
    assert (full.max_window_items, full.q2.max_items) == (WINDOW_ITEMS, 2)
    assert lean.max_window_items * (lean.q2.max_items + 2) < WINDOW_ITEMS * (2 + 2)
