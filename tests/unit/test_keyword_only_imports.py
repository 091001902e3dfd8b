"""A keyword-only index never loads numpy or tokenizers (issue 3: peak RSS <= 100 MB).

numpy is ~16 MB and tokenizers ~7 MB of a process's RSS; only runs with a model
need them. Checked in a fresh interpreter: this test process has them loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
