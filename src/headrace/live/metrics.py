"""``LiveMetrics``: the watcher's Prometheus metrics, on their own registry.

Names (all prefixed ``headrace_``):

| metric | type | labels |
|---|---|---|
| ``files_processed_total`` | counter | ``outcome``: indexed, skipped, failed, deleted, … |
| ``chunks_processed_total`` | counter | |
| ``embeddings_total`` | counter | ``kind``: computed, cached |
| ``errors_total`` | counter | ``stage`` (read, parse, embed, write, plan …), ``error_class`` |
| ``changes_total`` | counter | ``origin``: notify, rescan |
| ``deferred_total`` | counter | changes held back by the bounded queue (found again by a rescan) |
| ``batches_total``, ``rescans_total`` | counter | |
| ``queue_depth`` | gauge | pending changes |
| ``backlog_age_seconds`` | gauge | age of the oldest pending change |
| ``backlog_alert`` | gauge | 1 while the backlog age exceeds the threshold |
| ``bytes_in_flight`` | gauge | bytes of the batch being processed |
| ``rss_bytes``, ``cpu_share`` | gauge | process RSS; CPU used per usable CPU (0 to 1) |
| ``batch_limit_files``, ``intake_paused`` | gauge | governor state (``reason``: cpu, memory) |
| ``usable_cpus``, ``memory_limit_bytes`` | gauge | what the governor detected / was given |
| ``embedding_cache_bytes`` | gauge | vector bytes in the index's embedding cache (bounded) |
| ``cache_evicted_total`` | counter | embedding-cache entries pruned (``sinks/sqlite_gc.py``) |
| ``stage_seconds`` | histogram | ``stage``: batch, embed (model), write (store), rescan, warm-up |
| ``latency_seconds`` | histogram | change first seen → committed (searchable) |

Process CPU seconds and memory also come from ``prometheus_client``'s process
collector (``process_cpu_seconds_total``, ``process_resident_memory_bytes``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    ProcessCollector,
    start_http_server,
)

_LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
_STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0)
_OUTCOMES = {
    "files_done": "indexed",
    "files_skipped": "skipped",
    "files_failed": "failed",
    "deleted": "deleted",
    "renamed": "renamed",
    "touched": "touched",
}


class LiveMetrics:
    """All live-mode metrics on one ``CollectorRegistry`` (``registry``)."""

    def __init__(self) -> None:
        reg = self.registry = CollectorRegistry()
        ProcessCollector(registry=reg)
        p = "headrace_"
        self.files = Counter(p + "files_processed", "files processed", ["outcome"], registry=reg)
        self.chunks = Counter(p + "chunks_processed", "chunks written", registry=reg)
        self.embeddings = Counter(p + "embeddings", "texts embedded", ["kind"], registry=reg)
        self.errors = Counter(
            p + "errors", "errors by stage and class", ["stage", "error_class"], registry=reg
        )
        self.changes = Counter(p + "changes", "changes noted", ["origin"], registry=reg)
        self.deferred = Counter(p + "deferred", "changes deferred (queue full)", registry=reg)
        self.batches = Counter(p + "batches", "units of work done", registry=reg)
        self.rescans = Counter(p + "rescans", "full rescans", registry=reg)
        self.queue_depth = Gauge(p + "queue_depth", "pending changes", registry=reg)
        self.backlog_age = Gauge(p + "backlog_age_seconds", "oldest pending change", registry=reg)
        self.backlog_alert = Gauge(p + "backlog_alert", "1: backlog over threshold", registry=reg)
        self.bytes_in_flight = Gauge(p + "bytes_in_flight", "bytes being processed", registry=reg)
        self.rss = Gauge(p + "rss_bytes", "resident set size", registry=reg)
        self.cpu_share = Gauge(p + "cpu_share", "CPU used per usable CPU", registry=reg)
        self.batch_limit = Gauge(p + "batch_limit_files", "governor's batch size", registry=reg)
        self.paused = Gauge(p + "intake_paused", "1: intake paused", ["reason"], registry=reg)
        self.cpus = Gauge(p + "usable_cpus", "CPUs detected (affinity, quota)", registry=reg)
        self.memory_limit = Gauge(p + "memory_limit_bytes", "RSS budget", registry=reg)
        self.cache_bytes = Gauge(p + "embedding_cache_bytes", "cached vector bytes", registry=reg)
        self.cache_evicted = Counter(p + "cache_evicted", "cache entries pruned", registry=reg)
        self.stage = Histogram(
            p + "stage_seconds", "time per stage and batch", ["stage"], registry=reg,
            buckets=_STAGE_BUCKETS,
        )  # fmt: skip
        self.latency = Histogram(
            p + "latency_seconds", "change → searchable", registry=reg, buckets=_LATENCY_BUCKETS
        )
        for outcome in _OUTCOMES.values():
            self.files.labels(outcome)  # export zeros from the start
        for kind in ("computed", "cached"):
            self.embeddings.labels(kind)
        for reason in ("cpu", "memory"):
            self.paused.labels(reason)

    def record_batch(self, snapshot: Mapping[str, Any]) -> None:
        """Add one batch's ``RunStats.snapshot()`` to the counters."""
        for key, outcome in _OUTCOMES.items():
            if snapshot.get(key):
                self.files.labels(outcome).inc(snapshot[key])
        self.chunks.inc(snapshot.get("chunks_written", 0))
        self.embeddings.labels("computed").inc(snapshot.get("embeddings_computed", 0))
        self.embeddings.labels("cached").inc(snapshot.get("embeddings_cached", 0))
        self.batches.inc()
        self.stage.labels("batch").observe(snapshot.get("elapsed_s", 0.0))
        self.stage.labels("embed").observe(snapshot.get("embed_seconds", 0.0))
        self.stage.labels("write").observe(snapshot.get("write_seconds", 0.0))

    def serve(self, port: int, host: str = "127.0.0.1") -> int:
        """Start the ``/metrics`` HTTP endpoint in a daemon thread; return its port."""
        server, _thread = start_http_server(port, addr=host, registry=self.registry)
        self._server = server
        return int(server.server_port)

    def close(self) -> None:
        server = getattr(self, "_server", None)
        if server is not None:
            server.shutdown()
            server.server_close()


__all__ = ["LiveMetrics"]
