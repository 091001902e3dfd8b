"""Counters of a run, updated by the stages and read by progress reporting."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field, fields
from typing import Any

_HIDDEN = ("lock", "started")


@dataclass
class RunStats:
    """What a run did. Stages add to it under ``lock``; readers copy it."""

    files_total: int = 0
    bytes_total: int = 0
    files_done: int = 0
    files_failed: int = 0
    files_skipped: int = 0
    vanished: int = 0  # deleted between the plan and the read (left to the next plan)
    bytes_done: int = 0
    bytes_resumed: int = 0  # bytes not read again thanks to a durable cursor
    segments: int = 0  # segment cursors committed inside files
    chunks_written: int = 0
    tokens: int = 0
    embeddings_computed: int = 0
    embeddings_cached: int = 0
    dead_letters: int = 0
    deleted: int = 0
    renamed: int = 0
    touched: int = 0
    unchanged: int = 0
    cache_evicted: int = 0  # embedding-cache entries pruned after the run (sinks/sqlite_gc.py)
    started: float = field(default_factory=time.monotonic)
    embed_seconds: float = 0.0
    write_seconds: float = 0.0  # time inside the write stage's transactions (store timing)
    prune_seconds: float = 0.0  # pruning the embedding cache after the run
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **deltas: float) -> None:
        with self.lock:
            for key, delta in deltas.items():
                setattr(self, key, getattr(self, key) + delta)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            data = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in _HIDDEN}
        data["elapsed_s"] = round(time.monotonic() - self.started, 3)
        return data
