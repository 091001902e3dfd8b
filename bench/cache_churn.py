"""The embedding cache under churn, with and without its bound (issue 4: weeks of watch).

    python bench/cache_churn.py [--files 200] [--rounds 100] [--churn 0.5] [--bound-mb 4]
    python bench/cache_churn.py --insert-cost [--vectors 50000]
    python bench/cache_churn.py --step-cost [--bound-mb 4]   (after a churn run)
    python bench/cache_churn.py --watch [--rounds 50] [--files 200] [--bound-mb 4]
    python bench/cache_churn.py --cold 2000

Churn: a folder of ``--files`` ~2 KB files; each round rewrites ``--churn`` of them with
new text and runs ``ingest`` (hash embedder, 384 dimensions like the real model) into
two indexes over identical trees: bounded (``embed_cache_max_mb = --bound-mb``) and
unbounded (a bound no run reaches), in alternating order each round (a paired A/B).
Prints every tenth round: cache entries and MB, chunks, the index file (after a
checkpoint) and its WAL, the free pages inside the file; at the end the time of the
ingest calls (the checkpoints are outside) and of the pruning inside them.

``--insert-cost``: the write path's cache inserts before (schema v6: WITHOUT ROWID, no
size triggers, no age index) and now (v8: rowid table, triggers, age index):
``--vectors`` inserts in windows of 4,096 (one transaction each, as the write stage
does), alternating, 3 runs each, medians; and the file size per entry.

``--watch``: the same churn followed by two ``Watcher``s in this process (one per
index, identical trees); each round waits until both are idle. Prints the cache and
file (after a checkpoint) every tenth round and each watcher's change latencies.

``--cold FILES``: a cold ingest of real text (``bench/corpus.py``, hash embedder) into
schema v6 (the cache as it was, no pruning) and the current one, three fresh
processes each in the order 6, new, new, 6, 6, new: wall time, write-stage time, file.

``--step-cost``: one bounded pass over a copy of the unbounded churn's index, timed
step by step (what a watcher's idle step costs a change that arrives meanwhile).
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import apsw
from corpus import OUT

from headrace import Index, Settings
from headrace.ledger.db import connect
from headrace.ledger.migrations import LATEST, migrate, scalar
from headrace.sinks.sqlite_gc import CachePruner, cache_size
from headrace.testing.embedders import HashEmbedder

VOCAB = [f"w{n:04d}" for n in range(3000)] + ["the", "index", "cache", "vector", "file"]


def _fresh(path: Path) -> Path:
    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    return path


def _text(i: int, rng: random.Random) -> str:
    paras = [" ".join(rng.choices(VOCAB, k=rng.randint(40, 90))) for _ in range(5)]
    return f"# file {i}\n\n" + "\n\n".join(paras) + "\n"


def _sizes(idx: Index) -> dict[str, float]:
    # Fold the WAL in first, so "file MB" is the database's size, not the last
    # checkpoint's (both runs alike; WAL MB is then what is left).
    idx.compact()
    st = idx.status()
    wal = Path(f"{idx.path}-wal")
    return {
        "cache": st["embedding_cache"],
        "cache_mb": st["embedding_cache_bytes"] / 1e6,
        "chunks": st["files"]["chunks"],
        "file_mb": idx.path.stat().st_size / 1e6,
        "wal_mb": (wal.stat().st_size if wal.exists() else 0) / 1e6,
        "free_mb": st["free_bytes"] / 1e6,
    }


def churn(args: argparse.Namespace) -> None:
    """Both indexes over identical trees, ingested in alternating order each round (a
    paired A/B: the machine's load hits both alike)."""
    configs = {"bounded": args.bound_mb, "unbounded": 10**6}
    rng = random.Random(2026)
    roots, indexes = {}, {}
    for label, bound in configs.items():
        roots[label] = root = OUT / f"cache-churn-{label}"
        root.mkdir(parents=True, exist_ok=True)
        for old in root.iterdir():
            old.unlink()
        settings = Settings(embed_cache_max_mb=bound)
        path = _fresh(OUT / f"cache-churn-{label}.sqlite")
        indexes[label] = Index(path, settings=settings, embedder=HashEmbedder())
    spent = dict.fromkeys(configs, 0.0)
    pruning = dict.fromkeys(configs, 0.0)
    rows: dict[str, list[str]] = {label: [] for label in configs}
    for r in range(args.rounds + 1):
        files = (
            range(args.files)
            if r == 0
            else rng.sample(range(args.files), int(args.files * args.churn))
        )
        for i in files:
            text = _text(i, rng)
            for root in roots.values():
                (root / f"f{i:04d}.md").write_text(text)
        order = list(configs) if r % 2 == 0 else list(reversed(configs))
        for label in order:
            started = time.perf_counter()
            stats = indexes[label].ingest([str(roots[label])])
            spent[label] += time.perf_counter() - started
            pruning[label] += stats.prune_seconds
        if r % 10 == 0 or r == args.rounds:
            for label in configs:
                s = _sizes(indexes[label])
                rows[label].append(
                    f"{r:5d}  {s['cache']:5.0f}  {s['cache_mb']:8.2f}  {s['chunks']:6.0f}"
                    f"  {s['file_mb']:7.2f}  {s['wal_mb']:6.2f}  {s['free_mb']:7.2f}"
                )
    for label, bound in configs.items():
        print(f"\n{label} (embed_cache_max_mb={bound})")
        print("round  cache  cache MB  chunks  file MB  WAL MB  free MB")
        print("\n".join(rows[label]))
    print("\nall rounds     ingest s  of which pruning s")
    for label in configs:
        print(f"{label:14s} {spent[label]:9.1f}  {pruning[label]:9.2f}")
        indexes[label].close()


def _start_watchers(args: argparse.Namespace, configs: dict[str, int]) -> dict[str, Any]:
    from headrace.live import Watcher, load_watch_config

    out: dict[str, Any] = {}
    for label, bound in configs.items():
        root = OUT / f"cache-watch-{label}"
        root.mkdir(parents=True, exist_ok=True)
        for old in root.iterdir():
            old.unlink()
        for i in range(args.files):
            (root / f"f{i:04d}.md").write_text(_text(i, random.Random(i)))
        path = _fresh(OUT / f"cache-watch-{label}.sqlite")
        idx = Index(path, settings=Settings(embed_cache_max_mb=bound), embedder=HashEmbedder())
        watcher = Watcher(idx, [str(root)], load_watch_config())
        thread = threading.Thread(target=watcher.run, daemon=True)
        thread.start()
        out[label] = (root, watcher, thread)
    return out


def _watch_row(r: int, path: Path) -> str:
    """Sizes read on a connection of our own (the watcher's belongs to its thread),
    after a checkpoint, as the churn runs print them."""
    conn = connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        size = cache_size(conn)
        free = int(scalar(conn, "PRAGMA freelist_count")) * 4096
    finally:
        conn.close()
    return (
        f"{r:5d}  {size.entries:6d}  {size.bytes / 1e6:8.2f}"
        f"  {path.stat().st_size / 1e6:7.2f}  {free / 1e6:7.2f}"
    )


def watch_churn(args: argparse.Namespace) -> None:
    """The churn through ``headrace watch``: two watchers in this process, one per
    index, over identical trees; each round writes both trees and waits until both
    watchers are idle again (pruning runs in their idle turns)."""
    configs = {"bounded": args.bound_mb, "unbounded": 10**6}
    running = _start_watchers(args, configs)
    rng = random.Random(2026)
    rows: dict[str, list[str]] = {label: [] for label in configs}
    for r in range(args.rounds + 1):
        picked = rng.sample(range(args.files), int(args.files * args.churn)) if r else []
        for i in picked:
            text = _text(i, rng)
            for root, _, _ in running.values():
                (root / f"f{i:04d}.md").write_text(text)
        if not all(w.sync(600) for _, w, _ in running.values()):
            sys.exit("a watcher did not drain")
        if r % 10 == 0 or r == args.rounds:
            time.sleep(1.0)  # a pass may still be stepping through its idle turns
            for label, (_, w, _) in running.items():
                rows[label].append(_watch_row(r, w.index.path))
    for _, w, thread in running.values():
        w.request_stop()
        thread.join(60)
    for label, (_, w, _) in running.items():
        lat = sorted(w.latencies)
        print(f"\nwatch, {label} (embed_cache_max_mb={configs[label]})")
        print("round   cache  cache MB  file MB  free MB")
        print("\n".join(rows[label]))
        print(
            f"batches {w.totals.get('batches', 0):.0f}, evicted"
            f" {w.totals.get('cache_evicted', 0):.0f}; latency of the last {len(lat)} changes:"
            f" p50 {statistics.median(lat):.3f} s, p99 {lat[int(0.99 * (len(lat) - 1))]:.3f} s"
        )
        w.index.close()


def insert_cost(vectors: int) -> None:
    blob = os.urandom(1536)
    rng = random.Random(1)  # text hashes are random keys: B-tree inserts land anywhere
    hashes = [f"{rng.getrandbits(128):032x}" for _ in range(vectors)]
    times: dict[int, list[float]] = {6: [], LATEST: []}
    sizes: dict[int, int] = {}
    for run in range(3):
        for version in (6, LATEST) if run % 2 == 0 else (LATEST, 6):
            path = _fresh(OUT / f"cache-insert-v{version}.sqlite")
            conn = apsw.Connection(str(path))
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            migrate(conn, target=version)
            started = time.perf_counter()
            for start in range(0, vectors, 4096):
                now = time.time()
                conn.execute("BEGIN IMMEDIATE")
                conn.executemany(
                    "INSERT OR IGNORE INTO embed_cache VALUES ('m', ?, ?, ?)",
                    [(h, blob, now) for h in hashes[start : start + 4096]],
                )
                conn.execute("COMMIT")
            times[version].append(time.perf_counter() - started)
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            sizes[version] = path.stat().st_size
            conn.close()
    for version, spent in times.items():
        rate = vectors / statistics.median(spent)
        runs = ", ".join(f"{t:.3f}" for t in spent)
        per = sizes[version] / vectors
        print(
            f"schema v{version}: {runs} s for {vectors} inserts (median {rate:,.0f}/s),"
            f" file {sizes[version] / 1e6:.1f} MB = {per:,.0f} B per entry"
        )
    ratio = statistics.median(times[LATEST]) / statistics.median(times[6])
    print(f"v{LATEST} / v6 median time: {ratio:.3f}")


def step_cost(bound_mb: int) -> None:
    """One pass over a copy of the unbounded churn's index, step by step: how long one
    step (one transaction, ``STEP_ROWS`` entries looked at) holds the writer."""
    source = OUT / "cache-churn-unbounded.sqlite"
    if not source.exists():
        sys.exit("run the churn first: it leaves bench/out/cache-churn-unbounded.sqlite")
    copy = _fresh(OUT / "cache-churn-steps.sqlite")
    with Index(source, embedder=HashEmbedder()) as idx:
        idx.compact()
    shutil.copyfile(source, copy)
    idx = Index(copy, settings=Settings(embed_cache_max_mb=bound_mb), embedder=HashEmbedder())
    before = idx.status()
    pruner = CachePruner(idx.conn, bound_mb << 20)
    pruner.start()
    times = []
    while True:
        started = time.perf_counter()
        more = pruner.step()
        times.append(time.perf_counter() - started)
        if not more:
            break
    after = idx.status()
    idx.close()
    ms = sorted(t * 1000 for t in times)
    mb = before["embedding_cache_bytes"] / 1e6, after["embedding_cache_bytes"] / 1e6
    print(
        f"cache {before['embedding_cache']} -> {after['embedding_cache']} entries"
        f" ({mb[0]:.1f} -> {mb[1]:.1f} MB), bound {bound_mb} MB: {len(ms)} steps of"
        f" <= {pruner.step_rows} entries, step p50 {statistics.median(ms):.1f} ms,"
        f" max {ms[-1]:.1f} ms, total {sum(ms) / 1000:.2f} s"
    )


def cold_one(version: int, files: int) -> None:
    """One cold ingest of ``files`` real-text files into schema ``version`` (6: the
    cache as it was, no bound; else the current schema), in this process."""
    from corpus import real_text_corpus

    from headrace.ledger import db, migrations
    from headrace.sinks.sqlite_gc import PruneReport

    root = real_text_corpus(files, name=f"real-{files}")
    if version == 6:
        migrate_v6 = migrations.migrate
        db.migrate = lambda conn, target=6: migrate_v6(conn, target=6)  # type: ignore[attr-defined]
        Index._prune_cache = lambda self, **kw: PruneReport()  # type: ignore[method-assign]
    path = _fresh(OUT / f"cache-cold-v{version}.sqlite")
    idx = Index(path, settings=Settings(), embedder=HashEmbedder())
    started = time.perf_counter()
    stats = idx.ingest([str(root)])
    wall = time.perf_counter() - started
    got = scalar(idx.conn, "SELECT max(version) FROM schema_migrations")
    idx.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    print(
        f"schema v{got}: {wall:.2f} s wall, write stage {stats.write_seconds:.2f} s,"
        f" {stats.chunks_written} chunks, {stats.embeddings_computed} embedded,"
        f" file {path.stat().st_size / 1e6:.1f} MB, load {os.getloadavg()[0]:.2f}"
    )
    idx.close()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=200)
    ap.add_argument("--rounds", type=int, default=100)
    ap.add_argument("--churn", type=float, default=0.5, help="share of files rewritten a round")
    ap.add_argument("--bound-mb", type=int, default=4)
    ap.add_argument("--insert-cost", action="store_true")
    ap.add_argument("--vectors", type=int, default=50_000)
    ap.add_argument("--step-cost", action="store_true", help="time one pass's steps")
    ap.add_argument("--watch", action="store_true", help="churn through two watchers")
    ap.add_argument("--cold", type=int, metavar="FILES", help="cold ingest A/B, v6 vs now")
    ap.add_argument("--cold-one", type=int, nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    print(f"load average at start: {os.getloadavg()}")
    if args.insert_cost:
        insert_cost(args.vectors)
        return
    if args.step_cost:
        step_cost(args.bound_mb)
        return
    if args.cold_one:
        cold_one(*args.cold_one)
        return
    if args.cold:
        for version in (6, LATEST, LATEST, 6, 6, LATEST):  # a fresh process each
            cmd = [sys.executable, __file__, "--cold-one", str(version), str(args.cold)]
            subprocess.run(cmd, check=True)
        return
    if args.watch:
        watch_churn(args)
        print(f"load average at end: {os.getloadavg()}")
        return
    churn(args)
    print(f"load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
