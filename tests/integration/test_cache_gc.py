"""The embedding cache stays bounded while a folder churns, and pruning never costs a
vector that is still needed (``sinks/sqlite_gc.py``; issue 4, weeks of ``watch``).

Checked: ingest rounds over churning files keep the cache within ``embed_cache_max_mb``
(and without the bound the same churn grows it past that); every current chunk's
vector survives (a copy of the tree embeds nothing); a watcher prunes when idle and
ends identical to a one-shot ingest; after ``kill -9`` mid-file, ``headrace gc``
removes nothing a replay needs, and the replay embeds exactly what the cache lacks;
``headrace gc`` prints what it removed and the file size, ``status`` the cache.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import WORDS
from tests.integration.watch_support import wait_for, watching

from headrace import Index, Settings
from headrace.ledger.db import connect
from headrace.sinks import sqlite_gc
from headrace.testing.embedders import HashEmbedder

DIM = 2048  # 8 KiB vectors: a 1 MB bound is ~128 of them, so a small churn exceeds it
FILES = 20
DEADLINE_S = 60.0


def _churn(root: Path, rng: random.Random, round_: int) -> None:
    """Every file gets new text: each round's texts are new to the cache."""
    root.mkdir(parents=True, exist_ok=True)
    for i in range(FILES):
        words = " ".join(rng.choices(WORDS, k=30))
        (root / f"f{i}.md").write_text(f"# file {i} round {round_}\n\n{words}\n", "utf-8")


def _vectors_missing(idx: Index) -> int:
    """Chunks whose text has no vector of the bound model in the cache."""
    row = idx.conn.execute(
        "SELECT count(*) FROM chunks AS c WHERE NOT EXISTS (SELECT 1 FROM embed_cache AS e"
        " WHERE e.model = ? AND e.text_hash = c.text_hash)",
        (idx.sink.model_id,),
    ).fetchone()
    return int(row[0])


def _churned_index(path: Path, root: Path, max_mb: int, rounds: int) -> tuple[Index, list[int]]:
    idx = Index(path, settings=Settings(embed_cache_max_mb=max_mb), embedder=HashEmbedder(DIM))
    rng = random.Random(3)
    sizes = []
    computed = evicted = 0
    for r in range(rounds):
        _churn(root, rng, r)
        stats = idx.ingest([str(root)])
        computed += stats.embeddings_computed
        evicted += stats.cache_evicted
        sizes.append(idx.status()["embedding_cache_bytes"])
        assert _vectors_missing(idx) == 0, f"round {r}: a current chunk lost its vector"
    assert idx.status()["embedding_cache"] == computed - evicted  # the counts add up
    return idx, sizes


def test_churn_stays_within_the_bound_and_keeps_every_vector_in_use(tmp_path: Path) -> None:
    root = tmp_path / "root"
    bounded, sizes = _churned_index(tmp_path / "bounded.sqlite", root, 1, 15)
    assert max(sizes) <= 1 << 20, sizes
    shutil.rmtree(root)
    unbounded, grown = _churned_index(tmp_path / "unbounded.sqlite", root, 10**6, 15)
    assert grown[-1] > 2 << 20, grown  # the churn does exceed the bound without pruning
    assert grown[-1] == 15 * FILES * DIM * 4
    unbounded.close()
    # The same texts under new paths: all from the cache, nothing embedded.
    copy = tmp_path / "copy"
    shutil.copytree(root, copy)
    embedder = bounded.embedder
    assert isinstance(embedder, HashEmbedder)
    embedder.reset_counts()
    stats = bounded.ingest([str(copy)])
    assert stats.files_done == FILES
    assert (embedder.texts_embedded, stats.embeddings_computed) == (0, 0)
    bounded.close()


def test_a_zero_bound_keeps_exactly_the_texts_in_use(tmp_path: Path) -> None:
    root = tmp_path / "root"
    idx, _ = _churned_index(tmp_path / "zero.sqlite", root, 0, 4)
    used = idx.conn.execute("SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0]
    # The regrow rule lets the cache reach 10% over what the last pass left.
    assert used <= idx.status()["embedding_cache"] <= int(used * sqlite_gc.REGROW)
    report = idx.prune_cache(full=True)
    assert idx.status()["embedding_cache"] == used
    assert report.done
    idx.close()


def test_a_watcher_prunes_in_short_steps_when_idle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from headrace.live import service

    monkeypatch.setattr(service, "_PRUNE_EVERY_S", 0.05)
    monkeypatch.setattr(sqlite_gc, "STEP_ROWS", 7)  # a pass takes many idle turns
    root = tmp_path / "root"
    rng = random.Random(5)
    _churn(root, rng, 0)
    path = tmp_path / "watched.sqlite"
    idx = Index(path, settings=Settings(embed_cache_max_mb=0), embedder=HashEmbedder())
    reader = connect(path, readonly=True)

    def cache_and_used() -> tuple[int, int]:
        row = reader.execute(
            "SELECT (SELECT sum(entries) FROM embed_cache_size),"
            " (SELECT count(DISTINCT text_hash) FROM chunks)"
        ).fetchone()
        return int(row[0] or 0), int(row[1] or 0)

    with watching(idx, root, heap_tuning=False) as watcher:
        assert watcher.sync(DEADLINE_S)
        for r in range(1, 6):
            _churn(root, rng, r)
            assert watcher.sync(DEADLINE_S)
        wait_for(lambda: cache_and_used()[0] <= cache_and_used()[1] * sqlite_gc.REGROW, "a pass")
        assert watcher.totals.get("cache_evicted", 0) >= 4 * FILES
        registry = watcher.metrics.registry
        evicted = registry.get_sample_value("headrace_cache_evicted_total")
        assert evicted == watcher.totals["cache_evicted"]

        def gauge_bounded() -> bool:  # set right after the step that the reader saw
            cached = registry.get_sample_value("headrace_embedding_cache_bytes") or 0
            return 0 < cached <= cache_and_used()[1] * 384 * 4 * sqlite_gc.REGROW

        wait_for(gauge_bounded, "the cache gauge")
    reader.close()
    assert _vectors_missing(idx) == 0
    ours = list(idx.export())
    idx.close()
    with Index(tmp_path / "oneshot.sqlite", embedder=HashEmbedder()) as fresh:
        fresh.ingest([str(root)])
        assert ours == list(fresh.export())


# -- through the command, as users run it -----------------------------------------


def _cli(index: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "headrace", "--quiet", *args, "--index", str(index)]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "HEADRACE_EMBEDDER": "hash",
        "HF_HUB_OFFLINE": "1",
        "XDG_DATA_HOME": str(tmp / "xdg"),
        **extra,
    }


def _out(index: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        _cli(index, *args), env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def _json(index: Path, env: dict[str, str], *args: str) -> Any:
    return json.loads(_out(index, env, *args, "--json"))


def _pending(index: Path) -> int:
    try:
        conn = connect(index, readonly=True)
    except Exception:  # not created or not migrated yet
        return 0
    try:
        return int(conn.execute("SELECT count(*) FROM pending").fetchone()[0])
    except Exception:
        return 0
    finally:
        conn.close()


def _crash_corpus(root: Path) -> None:
    rng = random.Random(11)
    root.mkdir()
    for i in range(30):
        (root / f"n{i}.md").write_text(f"# note {i}\n\n" + " ".join(rng.choices(WORDS, k=40)))
    paras = (" ".join(rng.choices(WORDS, k=50)) + f" p{n}" for n in range(4000))
    (root / "big.txt").write_text("\n\n".join(paras) + "\n")


@pytest.mark.timeout(240)
def test_gc_after_a_kill_mid_file_keeps_what_the_replay_needs(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    _crash_corpus(corpus)
    # Bound 0: every ingest prunes all it may. Small queues: a big file spans windows,
    # so its staged rows and their vectors are committed before the file is.
    env = _env(tmp_path, HEADRACE_EMBED_CACHE_MAX_MB="0", HEADRACE_QUEUE_BYTES="65536")
    clean = tmp_path / "clean.sqlite"
    distinct = _json(clean, env, "ingest", str(corpus))["embeddings_computed"]
    expected = _out(clean, env, "export")
    for attempt in range(5):
        index = tmp_path / f"killed{attempt}.sqlite"
        proc = subprocess.Popen(
            _cli(index, "ingest", str(corpus)),
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline and _pending(index) == 0:
            time.sleep(0.005)  # polling the index for staged rows; the count decides
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        if _pending(index):
            break
    else:
        pytest.fail("no kill landed while a file had committed staged rows")
    cached = _json(index, env, "status")["embedding_cache"]
    assert 0 < cached < distinct
    gc = _json(index, env, "gc")
    assert gc["removed"]["entries"] == 0  # every vector belongs to a chunk or a staged row
    assert gc["after"]["embedding_cache"] == cached
    replay = _json(index, env, "ingest", str(corpus))
    assert replay["embeddings_computed"] == distinct - cached  # nothing embedded twice
    assert _out(index, env, "export") == expected


def test_gc_command_prints_what_it_removed_and_the_file_size(tmp_path: Path) -> None:
    root = tmp_path / "root"
    idx, _ = _churned_index(tmp_path / "churned.sqlite", root, 10**6, 6)
    used = idx.conn.execute("SELECT count(DISTINCT text_hash) FROM chunks").fetchone()[0]
    before = idx.status()["embedding_cache"]
    idx.close()
    env = _env(tmp_path)
    index = tmp_path / "churned.sqlite"
    printed = _out(index, env, "gc")
    removed = re.search(
        r"removed (\d+) cache entries \(([\d.]+) MB of vectors\); kept (\d+) ", printed
    )
    assert removed, printed
    assert int(removed[1]) == before - used == 5 * FILES
    assert float(removed[2]) == pytest.approx((before - used) * DIM * 4 / 1e6, abs=0.05)
    assert int(removed[3]) == used
    assert re.search(r"index file [\d.]+ MB -> [\d.]+ MB, [\d.]+ MB free inside it", printed)
    assert f"cache      {used} vectors" in _out(index, env, "status")
    again = _json(index, env, "gc", "--vacuum")
    assert again["removed"]["entries"] == 0
    assert again["after"]["free_bytes"] == 0
    assert again["after"]["size_bytes"] < again["before"]["size_bytes"]
