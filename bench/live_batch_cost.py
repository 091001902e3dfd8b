"""What one unit of live-mode work costs as the watched tree grows.

    flock /tmp/headrace-bench.lock python bench/live_batch_cost.py
        [--sizes 1000,5000,20000] [--calls 40]

A watcher's unit of work is ``Index.ingest_paths(roots, changed_paths)``. For each
tree size (small Markdown files in folders of 100, ingested once with the hash
embedder), this rewrites one file and times ``--calls`` such calls, in two modes
alternating call by call: ``paths`` (discovery descends only the changed paths'
directories: ``FolderSource.discover_paths``) and ``walk`` (the whole tree is walked
and filtered, as before; emulated by making ``discover_paths`` walk). Prints the
median and p90 wall and CPU milliseconds per call and mode (that both modes plan
the same items is tested in tests/unit/sources/test_sources_folder.py).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

from headrace import Index
from headrace.sources.base import DiscoveryItem
from headrace.sources.folder import FolderSource
from headrace.testing.embedders import HashEmbedder

OUT = Path("/tmp/headrace-bench/live-batch-cost")
_TARGETED = FolderSource.discover_paths


def _walking(self: FolderSource, paths: Iterable[str]) -> Iterator[DiscoveryItem]:
    return self.discover()  # ingest_paths' filter keeps the same items from the walk


def build(size: int) -> Path:
    root = OUT / f"tree-{size}"
    shutil.rmtree(root, ignore_errors=True)
    for i in range(size):
        folder = root / f"d{i // 100:04d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"f{i:06d}.md").write_text(f"# file {i}\n\nword{i} alpha beta {i % 7}\n")
    return root


def measure(size: int, calls: int) -> dict[str, object]:
    root = build(size)
    index_path = OUT / f"index-{size}.sqlite"
    for suffix in ("", "-wal", "-shm", ".lock"):
        Path(f"{index_path}{suffix}").unlink(missing_ok=True)
    times: dict[str, list[tuple[float, float]]] = {"paths": [], "walk": []}
    with Index(index_path, embedder=HashEmbedder()) as idx:
        idx.ingest([str(root)])
        target = root / "d0000" / "f000000.md"
        for n in range(2 * calls):
            mode = "paths" if n % 2 == 0 else "walk"
            FolderSource.discover_paths = _TARGETED if mode == "paths" else _walking  # type: ignore[method-assign]
            target.write_text(f"# file 0\n\nrewrite {n} alpha\n")
            wall, cpu = time.perf_counter(), time.process_time()
            stats = idx.ingest_paths([str(root)], [str(target)])
            times[mode].append((time.perf_counter() - wall, time.process_time() - cpu))
            assert stats.files_done == 1, stats
        FolderSource.discover_paths = _TARGETED  # type: ignore[method-assign]
        counts = idx.status()["files"]
    result: dict[str, object] = {"files": size, "index": counts}
    for mode, pairs in times.items():
        walls = sorted(w * 1000 for w, _ in pairs)
        cpus = sorted(c * 1000 for _, c in pairs)
        result[mode] = {
            "wall_ms_p50": round(statistics.median(walls), 2),
            "wall_ms_p90": round(walls[int(0.9 * (len(walls) - 1))], 2),
            "cpu_ms_p50": round(statistics.median(cpus), 2),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", default="1000,5000,20000")
    parser.add_argument("--calls", type=int, default=40)
    args = parser.parse_args()
    for size in (int(s) for s in args.sizes.split(",")):
        print(json.dumps(measure(size, args.calls)), flush=True)


if __name__ == "__main__":
    main()
