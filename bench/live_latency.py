"""Write -> searchable latency of ``headrace watch`` at 1, 10 and 100 files/s of ~2 KB.

    flock /tmp/headrace-bench.lock python bench/live_latency.py [--embedder minilm]
        [--rates 1,10,100] [--seconds 30,30,10]

A producer writes real-text files of ~2 KB into a watched folder at a fixed rate;
latency is from just before a file is opened for writing to the commit of the batch
that indexed it (a committed transaction is what a search sees: WAL readers). The
default debounce (0.1 s) is part of it. After the run, every file's marker word is
looked up by keyword search to check that it really is searchable.
Target (issue 4): p50 <= 1 s at 10 files/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_support import fresh, quantiles, snippets, watching, write_at_rate


def run(rate: float, seconds: float, embedder: str) -> dict[str, object]:
    root, index = fresh(f"latency-{rate:g}")
    texts = snippets(int(rate * seconds))
    written: dict[str, float] = {}
    with watching(index, root, embedder) as (watcher, commits):
        assert watcher.sync(120)
        producer = threading.Thread(target=write_at_rate, args=(root, texts, rate, written))
        started = time.perf_counter()
        producer.start()
        peak_queue = 0
        while producer.is_alive():
            peak_queue = max(peak_queue, len(watcher.scheduler))
            time.sleep(0.05)
        produced_s = time.perf_counter() - started
        assert watcher.sync(900)
        drained_s = time.perf_counter() - started
        missing = [p for p in written if p not in commits.at]
        latencies = [commits.at[p] - t for p, t in written.items() if p in commits.at]
        found = sum(
            1
            for n in range(0, len(texts), max(1, len(texts) // 25))
            if watcher.index.search(f"zqf{n:06d}x", 3, mode="keyword")
        )
        checked = len(range(0, len(texts), max(1, len(texts) // 25)))
        snap = watcher.snapshot()
    return {
        "rate_files_s": rate,
        "files": len(texts),
        "bytes_each": len(texts[0].encode()),
        "latency": quantiles(latencies),
        "uncommitted": len(missing),
        "peak_queue": peak_queue,
        "produce_s": round(produced_s, 2),
        "all_searchable_after_s": round(drained_s, 2),
        "batches": int(snap["totals"].get("batches", 0)),
        "searchable_checked": f"{found}/{checked}",
        "rss_mb": round(snap["governor"]["rss_bytes"] / 2**20, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--rates", default="1,10,100")
    ap.add_argument("--seconds", default="30,30,10")
    args = ap.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    seconds = [float(s) for s in args.seconds.split(",")]
    for rate, secs in zip(rates, seconds, strict=True):
        print(json.dumps(run(rate, secs, args.embedder)), flush=True)


if __name__ == "__main__":
    main()
