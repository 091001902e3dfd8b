"""SQL graph benchmark: ingest of schema variants, warm parse-cache re-ingest, poison isolation.

    flock /tmp/headrace-bench.lock python bench/sql_ingest.py [--files 1000] [--roots 10]
        [--data ../shared/data/sql]

Corpus: ``--files`` variants of the 12 shared SQL files (Sakila in 8 dialects and
Chinook in 3, Chinook with its ~15.6k INSERT rows), spread over ``--roots``
folders (each folder is one database). Variant *k* of a file widens one
``VARCHAR`` column (its first) and appends one table that references nothing, so
each variant has two statements no other file has: schemas that evolve, not
copies.

Phases (each in its own process, so peak RSS is per phase; embedded SQLite store,
no embeddings, no search mirror):
- ``nocache``: fresh graph, no parse cache: every statement goes through sqlglot;
- ``cold``: fresh graph, empty parse cache (statements shared between variants
  are parsed once: the statement-level cache);
- ``warm``: the graph file (ledger included) deleted, the parse cache kept: every
  file is a whole-file cache hit;
- ``noop``: the same again, nothing changed (files are only stat'ed);
- ``poison``: the BatchWriter's store calls to isolate one poisoned row in a batch
  of 100, for every position, against the seed's 100 → 50 → 10 → 1 schedule.

Figures per phase: files/s, MB/s and statements/s (wall time of
``GraphIndex.ingest``), the CPU seconds of the process and of its parse workers
(``--workers``, default headrace's), files per CPU second of both together (robust
to other load on a shared machine), p50 / p95 per-file
latency (from reading the file to its ledger commit, group waits included), p50 of
the per-file read + parse + fragment time, peak RSS of the process and of the
largest worker.
Seed (004): 65 files/s, p50 45 ms, 500 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

OUT = Path(os.environ.get("HEADRACE_BENCH_DIR", "/tmp/headrace-bench")) / "sql"
DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "sql"
_VARCHAR = re.compile(r"(?i)\b(varchar2?|character varying)\s*\((\d+)\)")


def variant(text: str, k: int) -> str:
    widened = _VARCHAR.sub(lambda m: f"{m.group(1)}({int(m.group(2)) + 1 + k})", text, count=1)
    extra = f"\nCREATE TABLE variant_{k:05d} (id INTEGER NOT NULL PRIMARY KEY, label VARCHAR(40));"
    return widened + extra + "\n"


def generate(data: Path, files: int, roots: int) -> list[Path]:
    corpus = OUT / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    bases = sorted(data.glob("*/*.sql"))
    texts = [p.read_text(encoding="utf-8") for p in bases]
    folders = [corpus / f"db{r:02d}" for r in range(roots)]
    for folder in folders:
        folder.mkdir(parents=True)
    for k in range(files):
        i = k % len(bases)
        target = folders[k % roots] / f"v{k:05d}-{bases[i].name}"
        target.write_text(variant(texts[i], k), encoding="utf-8")
    return folders


def run_phase(
    phase: str, roots: list[Path], graph: Path, cache: Path, workers: int | None
) -> dict[str, Any]:
    from headrace.graph.ingest import GraphIndex
    from headrace.parsers.cache import ParseCache

    parse_cache = None if phase == "nocache" else ParseCache(cache)
    size = sum(p.stat().st_size for r in roots for p in r.iterdir())
    started = time.perf_counter()
    cpu_started = time.process_time()
    with GraphIndex(graph, cache=parse_cache, workers=workers) as index:
        stats = index.ingest([str(r) for r in roots])
        used_workers = index.workers
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu_started
    if parse_cache is not None:
        parse_cache.close()
    snap = stats.snapshot()
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)  # the parse workers, joined
    return {
        "phase": phase,
        "files": stats.files_done,
        "unchanged": stats.unchanged,
        "failed": stats.files_failed,
        "dead_letters": stats.dead_letters,
        "statements": stats.statements,
        "parsed": stats.parsed_statements,
        "cached_statements": stats.cached_statements,
        "file_cache_hits": stats.cache_file_hits,
        "node_rows": stats.nodes_written,
        "edge_rows": stats.edges_written,
        "write_calls": stats.write_calls,
        "checkpoints": stats.checkpoints,  # run by the background thread
        "workers": used_workers,
        "seconds": round(wall, 2),
        "files_per_s": round(stats.files_done / wall, 1),
        "mb_per_s": round(size / 1e6 / wall, 1),
        "statements_per_s": round(stats.statements / wall),
        # CPU seconds of this process (user + system): on a shared machine the
        # wall-clock rate falls with the load, files per CPU second does not.
        "cpu_s": round(cpu, 2),
        "workers_cpu_s": round(kids.ru_utime + kids.ru_stime, 2),
        "files_per_cpu_s": round(stats.files_done / (cpu + kids.ru_utime + kids.ru_stime), 1),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "p50_ms": snap.get("p50_ms"),
        "p95_ms": snap.get("p95_ms"),
        "parse_p50_ms": snap.get("parse_p50_ms"),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        # the largest worker's peak (forked: its pages are shared with this process
        # until written, so the two do not simply add up)
        "worker_peak_rss_mb": round(kids.ru_maxrss / 1024, 1),
    }


def seed_schedule_calls(poison: int, n: int = 100) -> int:
    """Store calls of the seed's schedule: retry the failed batch in chunks of 50, 10, 1."""
    calls = 1
    lo, hi = 0, n
    for size in (50, 10, 1):
        for start in range(lo, hi, size):
            calls += 1
            if start <= poison < start + size:
                lo, hi = start, min(start + size, hi)
                break
        else:  # pragma: no cover - the poison is always in some chunk
            break
    return calls


def poison_costs() -> dict[str, Any]:
    from collections.abc import Sequence

    from headrace.errors import StoreError
    from headrace.graph.writer import BatchWriter

    ours, seeds = [], []
    for poison in range(100):
        calls = [0]

        def write(rows: Sequence[int], bad: int = poison, calls: list[int] = calls) -> None:
            calls[0] += 1
            if bad in rows:
                raise StoreError("refused")

        BatchWriter(batch_size=100, sleep=lambda _s: None).write(write, list(range(100)))
        ours.append(calls[0])
        seeds.append(seed_schedule_calls(poison))
    return {
        "phase": "poison",
        "bisect_calls_max": max(ours),
        "bisect_calls_mean": round(sum(ours) / len(ours), 1),
        "seed_schedule_calls_max": max(seeds),
        "seed_schedule_calls_mean": round(sum(seeds) / len(seeds), 1),
    }


def child(args: argparse.Namespace) -> None:
    roots = sorted(p for p in (OUT / "corpus").iterdir() if p.is_dir())
    result = (
        poison_costs()
        if args.phase == "poison"
        else run_phase(
            args.phase, roots, OUT / "graph.sqlite", OUT / "parse-cache.sqlite", args.workers
        )
    )
    print(json.dumps(result))


def phase(name: str, workers: int | None) -> dict[str, Any]:
    extra = [] if workers is None else ["--workers", str(workers)]
    proc = subprocess.run(
        [sys.executable, __file__, "--phase", name, *extra],
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    print(json.dumps(result), flush=True)
    return result


def remove_graph() -> None:
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{OUT / 'graph.sqlite'}{suffix}").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--roots", type=int, default=10)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--phase", choices=["nocache", "cold", "warm", "noop", "poison"])
    parser.add_argument(
        "--workers", type=int, default=None, help="parse workers (default: headrace's; 0: none)"
    )
    args = parser.parse_args()
    if args.phase:
        child(args)
        return
    OUT.mkdir(parents=True, exist_ok=True)
    folders = generate(args.data, args.files, args.roots)
    size = sum(p.stat().st_size for f in folders for p in f.iterdir())
    print(f"corpus: {args.files} files, {size / 1e6:.1f} MB in {len(folders)} roots", flush=True)
    remove_graph()
    nocache = phase("nocache", args.workers)
    remove_graph()
    Path(OUT / "parse-cache.sqlite").unlink(missing_ok=True)
    cold = phase("cold", args.workers)
    remove_graph()  # ledger and graph gone, parse cache kept
    warm = phase("warm", args.workers)
    noop = phase("noop", args.workers)  # same graph again: nothing changed
    print(f"no-op re-run: {noop['seconds']} s for {noop['unchanged']} unchanged files", flush=True)
    phase("poison", None)
    rate = float(warm["files_per_s"])
    print(
        f"warm re-ingest speed-up: {rate / float(cold['files_per_s']):.1f}x vs the cold cache,"
        f" {rate / float(nocache['files_per_s']):.1f}x vs no cache"
    )


if __name__ == "__main__":
    main()
