"""Shared parts of the live-mode benchmarks: real text, a watcher in a thread, a producer."""

from __future__ import annotations

import os
import shutil
import statistics
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus import OUT, real_text_corpus

from headrace import Index, Settings
from headrace.live import Watcher, load_watch_config
from headrace.live.scheduler import Change


def snippets(n: int, size: int = 2048) -> list[str]:
    """``n`` distinct ~``size``-byte pieces of real documentation text."""
    folder = real_text_corpus(400, name="live-source")
    pieces: list[str] = []
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        text = path.read_text(encoding="utf-8", errors="replace")
        for start in range(0, max(1, len(text) - size), size):
            pieces.append(text[start : start + size])
            if len(pieces) >= n:
                return pieces
    while len(pieces) < n:  # a small machine: vary the pieces
        pieces.append(pieces[len(pieces) % max(1, len(pieces))] + f" variant {len(pieces)}")
    return pieces


def fresh(name: str) -> tuple[Path, Path]:
    """An empty folder and a fresh index path under bench/out/live/."""
    base = OUT / "live" / name
    shutil.rmtree(base, ignore_errors=True)
    (base / "tree").mkdir(parents=True)
    return base / "tree", base / "index.sqlite"


class Commits:
    """Commit time of each path, filled by the watcher's ``on_batch`` callback."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.first: float | None = None
        self.lock = threading.Lock()

    def __call__(self, batch: list[Change], at: float) -> None:
        with self.lock:
            if self.first is None:
                self.first = at
            for change in batch:
                self.at[change.path] = at


@contextmanager
def watching(
    index_path: Path, root: Path, embedder: str, *, record: bool = True, **config: Any
) -> Iterator[tuple[Watcher, Commits]]:
    """A watcher in a thread; ``record=False`` keeps no commit times (a soak's RSS
    would otherwise include a dict entry per file ever written)."""
    idx = Index(index_path, settings=Settings(embedder=embedder))
    commits = Commits()
    watcher = Watcher(
        idx, [str(root)], load_watch_config(**config), on_batch=commits if record else None
    )
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        yield watcher, commits
    finally:
        watcher.request_stop()
        thread.join()
        idx.close()


def quantiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)

    def pick(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return {
        "n": len(ordered),
        "p50_s": round(statistics.median(ordered), 3),
        "p99_s": round(pick(0.99), 3),
        "max_s": round(ordered[-1], 3),
    }


def write_at_rate(
    root: Path, texts: list[str], rate: float, written: dict[str, float], *, prefix: str = "f"
) -> None:
    """Write ``texts`` as files under ``root`` at ``rate`` files per second."""
    started = time.perf_counter()
    for n, text in enumerate(texts):
        due = started + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        path = root / f"d{n % 10}" / f"{prefix}{n:06d}.txt"
        path.parent.mkdir(exist_ok=True)
        written[str(path)] = time.time()
        path.write_text(f"{text}\n\nmarker zq{prefix}{n:06d}x\n", encoding="utf-8")
