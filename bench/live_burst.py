"""What ``heap_tuning`` costs ``headrace watch``: catch-up and a later burst, on vs off.

    flock /tmp/headrace-bench.lock python bench/live_burst.py [--files 2000]
        [--repeats 2] [--embedder hash]

Each trial is a fresh process (glibc's thresholds are process-wide and, once fixed,
stay fixed), alternating ``heap_tuning`` on and off. A trial starts a watcher on a
tree that already holds ``--files`` real documentation files (the catch-up: the
watcher bounds the heap only after it) and times it until caught up; then copies
another ``--files`` files in at once (a burst while following, which runs with the
bounds when tuning is on) and times until they are all indexed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from corpus import real_text_corpus
from live_support import fresh, watching


def trial(files: int, embedder: str, tuning: bool) -> dict[str, float]:
    source = real_text_corpus(2 * files, name=f"live-burst-{files}")
    parts = sorted(p for p in source.iterdir() if p.is_dir())
    root, index = fresh(f"burst-{'on' if tuning else 'off'}")
    half = len(parts) // 2
    for part in parts[:half]:
        shutil.copytree(part, root / part.name)
    started = time.perf_counter()
    with watching(index, root, embedder, record=False, heap_tuning=tuning) as (watcher, _):
        assert watcher.sync(1800)
        catch_up = time.perf_counter() - started
        n0 = watcher.totals.get("files_done", 0)
        started = time.perf_counter()
        for part in parts[half:]:
            shutil.copytree(part, root / part.name)
        assert watcher.sync(1800)
        burst = time.perf_counter() - started
        n1 = watcher.totals.get("files_done", 0) - n0
    return {"catch_up_s": round(catch_up, 2), "catch_up_files": n0,
            "burst_s": round(burst, 2), "burst_files": n1}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--embedder", default="hash")
    ap.add_argument("--trial", choices=["on", "off"], help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.trial:
        print(json.dumps(trial(args.files, args.embedder, args.trial == "on")))
        return
    real_text_corpus(2 * args.files, name=f"live-burst-{args.files}")  # built once
    runs: dict[str, list[dict[str, float]]] = {"on": [], "off": []}
    for _ in range(args.repeats):
        for variant in ("off", "on"):
            out = subprocess.run(
                [sys.executable, __file__, "--trial", variant, "--files", str(args.files),
                 "--embedder", args.embedder],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            runs[variant].append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(variant, runs[variant][-1], file=sys.stderr)
    summary = {
        v: {k: statistics.median(r[k] for r in rs) for k in ("catch_up_s", "burst_s")}
        for v, rs in runs.items()
    }
    print(json.dumps({"files": args.files, "embedder": args.embedder, "runs": runs,
                      "median": summary}))  # fmt: skip


if __name__ == "__main__":
    main()
