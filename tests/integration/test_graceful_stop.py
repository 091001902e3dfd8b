"""SIGTERM and SIGINT stop ``headrace ingest`` promptly with exit 130, and the next run
completes the index exactly as a clean run would.

The corpus is a few hundred small files around one ~2 MB text file, so that a run
takes seconds with the hash test double. The signal is sent as soon as the index
shows a first committed file (polled read-only, with a deadline): the run then
still has most of its work ahead. Later windows grow to thousands of items, so
waiting for more progress could let the run finish before the signal lands.
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
from tests.conftest import WORDS, write_corpus

BEFORE_BIG = 150  # small files whose paths sort before the big file
AFTER_BIG = 150
PROGRESS_DEADLINE_S = 60.0
STOP_DEADLINE_S = 10.0  # "promptly": a stop never waits for the rest of the corpus


def _corpus(root: Path) -> Path:
    rng = random.Random(11)
    files: dict[str, str] = {}
    for i in range(BEFORE_BIG + AFTER_BIG):
        paras = [" ".join(rng.choices(WORDS, k=30)) for _ in range(rng.randint(2, 8))]
        folder = f"a{i % 3}" if i < BEFORE_BIG else f"z{i % 3}"
        files[f"{folder}/f{i}.md"] = f"# file {i}\n\n" + "\n\n".join(paras) + "\n"
    # Unique words keep the big file's chunks distinct, so each costs an embedding.
    files["m/big.txt"] = "\n\n".join(
        " ".join(rng.choices(WORDS, k=60)) + f" marker{n}" for n in range(5_000)
    )
    return write_corpus(root, files)


def _env(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADRACE_")}
    return {**env, "HEADRACE_EMBEDDER": "hash", "HF_HUB_OFFLINE": "1", "XDG_DATA_HOME": str(tmp)}


def _cli(index: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "headrace", "--quiet", *args, "--index", str(index)]


def _run(index: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cli(index, *args), env=env, capture_output=True, text=True, check=False, timeout=300
    )


def _export(index: Path, env: dict[str, str]) -> str:
    done = _run(index, env, "export")
    assert done.returncode == 0, done.stderr
    return done.stdout


def _query(index: Path, sql: str) -> int | None:
    """One integer from the index, read-only; None while it cannot be read yet."""
    try:
        conn = apsw.Connection(str(index), flags=apsw.SQLITE_OPEN_READONLY)
    except apsw.Error:
        return None
    try:
        return int(conn.execute(sql).fetchone()[0])
    except apsw.Error:  # not migrated yet
        return None
    finally:
        conn.close()


def _wait_for_files(index: Path, proc: subprocess.Popen[bytes], at_least: int) -> int:
    deadline = time.monotonic() + PROGRESS_DEADLINE_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, "ingest ended before it could be interrupted"
        done = _query(index, "SELECT count(*) FROM files") or 0
        if done >= at_least:
            return done
        time.sleep(0.02)  # polling interval, not synchronisation: the condition decides
    pytest.fail(f"no progress in {PROGRESS_DEADLINE_S}s")


@pytest.fixture(scope="module")
def clean(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str], str]:
    """The corpus, the environment and the export of one uninterrupted run."""
    tmp = tmp_path_factory.mktemp("graceful")
    corpus = _corpus(tmp / "corpus")
    env = _env(tmp / "xdg")
    index = tmp / "clean.sqlite"
    done = _run(index, env, "ingest", str(corpus))
    assert done.returncode == 0, done.stderr
    return corpus, env, _export(index, env)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_signal_stops_with_130_and_the_next_run_completes(
    tmp_path: Path, clean: tuple[Path, dict[str, str], str], signum: signal.Signals
) -> None:
    corpus, env, expected = clean
    index = tmp_path / "stopped.sqlite"
    proc = subprocess.Popen(
        _cli(index, "ingest", str(corpus), "--json"),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        _wait_for_files(index, proc, 1)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=STOP_DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err.decode()
    stopped = json.loads(out)
    total = BEFORE_BIG + AFTER_BIG + 1
    assert 1 <= stopped["files_done"] < total  # it really stopped early
    committed = _query(index, "SELECT count(*) FROM files")
    assert committed == stopped["files_done"]
    assert _query(index, "SELECT count(*) FROM runs WHERE status = 'stopped'") == 1

    resumed = _run(index, env, "ingest", str(corpus), "--json")
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["unchanged"] == committed  # what the stopped run committed is kept
    assert summary["files_done"] == total - committed
    assert _export(index, env) == expected
    assert _query(index, "SELECT count(*) FROM pending") == 0
    chunks = _query(index, "SELECT count(*) FROM chunks")
    assert _query(index, "SELECT sum(chunk_count) FROM files") == chunks
