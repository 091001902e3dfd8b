"""kill -9 at random moments never leaves duplicates, losses or a ledger/store mismatch.

Each trial starts ``headrace ingest`` in a subprocess, kills it with SIGKILL after a
random delay, re-runs it to completion and compares ``headrace export`` with a clean
run's. The hash test double stands in for the model so that runs are quick and
vectors bit-exact; the commit path under test is the production one.
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

import pytest
from tests.conftest import WORDS, write_corpus

# More trials or a fixed seed: HEADRACE_CRASH_TRIALS=60 HEADRACE_CRASH_SEED=101 (the
# seed and the failing trial are in the failure message). Run it on a tree that is not
# being edited: a module caught half-written fails the recovery run with a traceback.
TRIALS = int(os.environ.get("HEADRACE_CRASH_TRIALS", "20"))


def _corpus(root: Path) -> Path:
    rng = random.Random(7)
    words = WORDS
    files = {}
    for i in range(200):
        paras = [
            "\n".join(" ".join(rng.choices(words, k=14)) for _ in range(rng.randint(1, 6)))
            for _ in range(rng.randint(2, 12))
        ]
        files[f"d{i % 7}/f{i}.md"] = f"# file {i}\n\n" + "\n\n".join(paras) + "\n"
    files["big.txt"] = "\n\n".join(" ".join(rng.choices(words, k=60)) for _ in range(3000))
    files["bad.jsonl"] = '{"ok": "yes"}\nnot json\n{"ok": "again"}\n'
    return write_corpus(root, files)


def _cli(index: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "headrace", "--quiet", *args, "--index", str(index)]


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "HEADRACE_EMBEDDER": "hash", "XDG_DATA_HOME": str(tmp / "xdg")}


def _export(index: Path, env: dict[str, str]) -> list[dict[str, object]]:
    proc = subprocess.run(
        _cli(index, "export"), env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    return [json.loads(line) for line in out.splitlines()]


def _failures(index: Path, env: dict[str, str]) -> list[tuple[object, ...]]:
    out = subprocess.run(
        _cli(index, "failed", "--json"), env=env, capture_output=True, check=True, text=True
    ).stdout
    return [(d["path"], d["line"], d["offset"], d["message"]) for d in json.loads(out)]


def _ingest(index: Path, corpus: Path, env: dict[str, str], label: str = "clean run") -> int:
    proc = subprocess.run(
        _cli(index, "ingest", str(corpus), "--json"),
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    # Exit 1 is expected for the malformed line, and only then: an error of the run
    # itself (busy index, bad schema, a traceback) prints to stderr and no summary.
    assert proc.stderr == "", f"{label}: exit {proc.returncode}: {proc.stderr[-3000:]}"
    summary = json.loads(proc.stdout)
    if proc.returncode == 1:
        assert summary["dead_letters"] or summary["files_failed"], summary
    return proc.returncode


def _check_consistent(index: Path) -> None:
    import apsw
    import sqlite_vec

    conn = apsw.Connection(str(index))
    conn.enable_load_extension(True)
    conn.load_extension(sqlite_vec.loadable_path())
    n = conn.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert conn.execute("SELECT coalesce(sum(chunk_count), 0) FROM files").fetchone()[0] == n
    assert conn.execute("SELECT count(*) FROM chunks_vec").fetchone()[0] == n
    conn.close()


@pytest.mark.slow
# 20 trials of three subprocesses each take ~4 minutes on an idle 2-core machine, close
# to the suite's 300 s per-test limit; a loaded machine needs more (not a speed test).
@pytest.mark.timeout(60 * TRIALS)
def test_sigkill_at_random_moments_converges(tmp_path: Path) -> None:
    corpus = _corpus(tmp_path / "corpus")
    env = _env(tmp_path)
    clean = tmp_path / "clean.sqlite"
    assert _ingest(clean, corpus, env) == 1  # 1: the corpus has a malformed JSON line
    expected = _export(clean, env)
    expected_failures = _failures(clean, env)
    assert len(expected_failures) == 1
    assert len(expected) > 200
    seed = int(os.environ.get("HEADRACE_CRASH_SEED", "0")) or random.randrange(1, 2**31)
    rng = random.Random(seed)
    killed = 0
    for trial in range(TRIALS):
        index = tmp_path / f"t{trial}.sqlite"
        for _ in range(rng.randint(1, 3)):  # sometimes crash the recovery run too
            proc = subprocess.Popen(
                _cli(index, "ingest", str(corpus)),
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(rng.uniform(0.4, 2.4))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                killed += 1
            proc.wait()
        label = f"trial {trial} (HEADRACE_CRASH_SEED={seed})"
        assert _ingest(index, corpus, env, label) in (0, 1)  # 0: the bad file was done before
        assert _export(index, env) == expected, f"{label} diverged"
        assert _failures(index, env) == expected_failures
        _check_consistent(index)
    assert killed >= TRIALS // 2, "too few kills landed mid-run to test anything"
