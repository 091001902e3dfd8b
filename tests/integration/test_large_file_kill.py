"""SIGKILL in the middle of a large file, at random byte offsets, repeatedly.

Each kill lands once the durable cursor has passed a random offset; the next run
must resume from the last committed segment (not from byte 0) and, after the last
run, the index must equal a clean run's: same chunk ids, texts, positions,
vectors and dead letters.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import apsw
import pytest
from tests.conftest import WORDS


def _corpus(root: Path) -> Path:
    rng = random.Random(11)
    lines = []
    for i in range(3000):
        if i == 1500:
            lines.append("{broken json")
        elif i % 23 == 0:
            lines.append(json.dumps({"msg": "same text again"}))
        else:
            lines.append(json.dumps({"n": i, "msg": " ".join(rng.choices(WORDS, k=40))}))
    root.mkdir(parents=True)
    (root / "big.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


def _env(tmp: Path, embedder: str = "hash") -> dict[str, str]:
    return {
        **os.environ,
        "HEADRACE_EMBEDDER": embedder,
        "HEADRACE_SEGMENT_BYTES": str(16 << 10),
        "HEADRACE_QUEUE_BYTES": str(64 << 10),
        "XDG_DATA_HOME": str(tmp / "xdg"),
    }


def _cli(index: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "headrace", "--quiet", *args, "--index", str(index)]


def _run(index: Path, env: dict[str, str], *args: str) -> str:
    cmd = _cli(index, *args)
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    return proc.stdout


def _cursor(index: Path) -> int:
    try:
        conn = apsw.Connection(str(index), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return -1
    try:
        row = conn.execute("SELECT max(offset) FROM cursors WHERE mode = 'partial'").fetchone()
    except apsw.Error:  # not created yet, or busy
        return -1
    finally:
        conn.close()
    return -1 if row is None or row[0] is None else int(row[0])


def _failures(index: Path, env: dict[str, str]) -> list[tuple[object, ...]]:
    rows = json.loads(_run(index, env, "failed", "--json"))
    return [(d["path"], d["line"], d["offset"], d["message"]) for d in rows]


def _last_run(index: Path) -> dict[str, object]:
    conn = apsw.Connection(str(index), flags=apsw.SQLITE_OPEN_READONLY)
    row = conn.execute("SELECT summary FROM runs ORDER BY id DESC LIMIT 1").fetchone()
    conn.close()
    result: dict[str, object] = json.loads(row[0])
    return result


def _kill_past(index: Path, env: dict[str, str], corpus: Path, offset: int) -> bool:
    """Start an ingest and SIGKILL it once its cursor passed ``offset``."""
    proc = subprocess.Popen(
        _cli(index, "ingest", str(corpus)),
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and time.monotonic() < deadline:
        if _cursor(index) >= offset:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return True
        time.sleep(0.005)  # polling another process's progress, not synchronising threads
    proc.wait()
    return False


# "none": a keyword-only index stages the fresh file in place (sinks/sqlite.py).
@pytest.mark.parametrize("embedder", ["hash", "none"])
def test_sigkill_at_random_offsets_resumes_and_equals_clean(tmp_path: Path, embedder: str) -> None:
    corpus = _corpus(tmp_path / "corpus")
    size = (corpus / "big.jsonl").stat().st_size
    env = _env(tmp_path, embedder)
    clean = tmp_path / "clean.sqlite"
    _run(clean, env, "ingest", str(corpus))
    expected = _run(clean, env, "export")
    expected_failed = _failures(clean, env)
    assert len(expected.splitlines()) > 2500
    assert len(expected_failed) == 1
    rng = random.Random(int(os.environ.get("HEADRACE_CRASH_SEED", "0")) or None)
    index = tmp_path / "killed.sqlite"
    targets = sorted(rng.sample(range(size // 10, size * 9 // 10), 3))
    kills = sum(_kill_past(index, env, corpus, target) for target in targets)
    assert kills >= 2, "too few kills landed mid-file to test anything"
    resumed_from = _cursor(index)
    _run(index, env, "ingest", str(corpus))
    summary = _last_run(index)
    assert summary["bytes_resumed"] == resumed_from > 0  # resumed, not restarted
    assert _run(index, env, "export") == expected
    assert _failures(index, env) == expected_failed
