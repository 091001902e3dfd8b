"""Where a cold run's memory goes: RSS over time, split into its parts.

Runs one cold ingest (hash embedder by default) in this process and samples every
``--interval`` seconds: RSS, glibc's heap (in use / free but held / mmapped, from
``mallinfo2``), SQLite's own allocations (``apsw.memory_used``), the stage queues'
bytes and lengths and, with ``--tracemalloc``, the Python heap. Prints the sample at
peak RSS, the maxima of each part and (``--tracemalloc``) the top allocation sites
at the Python heap's peak.

    python bench/rss_profile.py --files 10000 [--tracemalloc] [--trace out.jsonl]
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import apsw
import psutil
from corpus import OUT, real_text_corpus
from rss import keep_runners

from headrace import Index, Settings
from headrace.embedding.registry import make_embedder
from headrace.runtime.memory import trim_heap


class _Mallinfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
            "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


_libc = ctypes.CDLL("libc.so.6")
_libc.mallinfo2.restype = _Mallinfo2


def heap() -> dict[str, float]:
    """glibc malloc, all arenas: bytes in use, free but held, mmapped (MB)."""
    m = _libc.mallinfo2()
    return {
        "malloc_used_mb": m.uordblks / 2**20,
        "malloc_free_mb": m.fordblks / 2**20,
        "malloc_mmap_mb": m.hblkhd / 2**20,
    }


class Sampler:
    """Samples the process every ``interval`` seconds in a background thread."""

    def __init__(self, idx: Index, base: int, interval: float, py_heap: bool) -> None:
        self.idx, self.base, self.interval, self.py_heap = idx, base, interval, py_heap
        self.proc = psutil.Process()
        self.samples: list[dict[str, Any]] = []
        self.snapshot: tuple[int, Any] = (0, None)
        self._done = threading.Event()
        self._t0 = time.perf_counter()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        last_snap = 0.0
        while not self._done.wait(self.interval):
            s: dict[str, Any] = {
                "t": round(time.perf_counter() - self._t0, 2),
                "rss_beyond_mb": (self.proc.memory_info().rss - self.base) / 2**20,
                "sqlite_mb": apsw.memory_used() / 2**20,
                **heap(),
            }
            runner = self.idx._runner
            if runner is not None:
                s["q1_mb"] = runner.q1._bytes / 2**20
                s["q1_items"] = len(runner.q1)
                s["q2_mb"] = runner.q2._bytes / 2**20
                s["q2_items"] = len(runner.q2)
            if self.py_heap:
                cur, _ = tracemalloc.get_traced_memory()
                s["py_mb"] = cur / 2**20
                if cur > self.snapshot[0] and time.perf_counter() - last_snap > 1.0:
                    self.snapshot = (cur, tracemalloc.take_snapshot())
                    last_snap = time.perf_counter()
            self.samples.append(s)


def _print_snapshot(size: int, snapshot: Any) -> None:
    print(f"python heap peak snapshot: {size / 2**20:.1f} MB")
    for stat in snapshot.statistics("traceback")[:12]:
        frames = stat.traceback.format()
        print(f"{stat.size / 2**20:7.2f} MB {stat.count:8d}  {frames[-1].strip()}")
        for line in frames[-6:-1:2]:
            print("           ", line.strip())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--embedder", default="hash")
    ap.add_argument("--interval", type=float, default=0.05)
    ap.add_argument("--tracemalloc", action="store_true")
    ap.add_argument("--trace", help="write every sample to this JSONL file")
    args = ap.parse_args()
    corpus = real_text_corpus(args.files)
    work = OUT / f"profile-{args.files}.sqlite"
    for p in work.parent.glob(work.name + "*"):
        p.unlink()
    embedder = make_embedder(args.embedder)
    if embedder is not None:
        embedder.embed(["warm up the model"])
    idx = Index(work, settings=Settings(embedder=args.embedder), embedder=embedder)
    gc.collect()
    trim_heap()  # a base without the free heap the corpus listing left (bench/rss.py)
    base = psutil.Process().memory_info().rss
    if args.tracemalloc:
        tracemalloc.start(8)
    runners = keep_runners(idx)
    with Sampler(idx, base, args.interval, args.tracemalloc) as sampler:
        started = time.perf_counter()
        stats = idx.ingest([str(corpus)])
        elapsed = time.perf_counter() - started
    samples = sampler.samples
    peak = max(samples, key=lambda s: s["rss_beyond_mb"])
    keys = {k for s in samples for k in s} - {"t"}
    out: dict[str, Any] = {
        "files": args.files,
        "seconds": round(elapsed, 1),
        "chunks": stats.chunks_written,
        "rss_base_mb": round(base / 2**20, 1),
        "trim_seconds": round(sum(getattr(r, "trim_seconds", 0.0) for r in runners), 3),
        "sqlite_high_water_mb": round(apsw.memory_high_water() / 2**20, 1),
        "at_peak_rss": {k: round(v, 1) if isinstance(v, float) else v for k, v in peak.items()},
        "maxima": {k: round(max(s.get(k, 0.0) for s in samples), 1) for k in sorted(keys)},
    }
    print(json.dumps(out, indent=2))
    if args.trace:
        with open(args.trace, "w") as f:
            for s in samples:
                f.write(json.dumps(s) + "\n")
    if sampler.snapshot[1] is not None:
        _print_snapshot(*sampler.snapshot)
    idx.close()


if __name__ == "__main__":
    main()
