"""``Watcher``: ``headrace watch``'s long-running loop over one ``Index``.

::

    notifications ─┐                     ┌─ governor: CPU duty cycle, RSS budget, batch size
    (hints)        ├─> Scheduler ──take──┤
    rescan (truth)─┘   debounce, settle, └─> Index.ingest_paths(batch) ─> metrics, state file
                       oldest first,         (plan + runtime of the foundation)
                       bounded, deferral

Start: a rescan (the catch-up: everything that changed while headrace was stopped,
deletions included) feeds the scheduler like any later rescan. Then the loop takes
settled changes in batches whose size the governor sets and processes each batch
through the ordinary ingest path, so a batch is exactly what ``ingest`` would do
for those files: same plan, same crash safety. When nothing is pending the loop
sleeps on an event until a notification, the next settle deadline or the next
rescan: idle CPU is near zero.

Stop (``request_stop``, SIGTERM/SIGINT): intake ends, the batch in flight stops as
``ingest`` does (embedded windows are written, the rest is redone at the next start),
the state file says ``stopped``. Nothing is half-committed; a restart resumes with
its catch-up rescan.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from headrace.api import Index
from headrace.errors import HeadraceError, RootUnavailableError, StoreError, TransientError
from headrace.live.config import WatchConfig
from headrace.live.governor import CappedEmbedder, Governor, Resources, detect_resources
from headrace.live.metrics import LiveMetrics
from headrace.live.scheduler import Change, Scheduler
from headrace.live.state import state_path, write_state
from headrace.live.watcher import NotificationFeed
from headrace.runtime.memory import bound_heap, loosen_heap, trim_heap
from headrace.runtime.stats import RunStats
from headrace.sinks.sqlite_gc import cache_size

log = logging.getLogger("headrace.live")

_ALERT_EVERY_S = 60.0
_IDLE_STATE_EVERY_S = 30.0
_RECENT = 2000
_STEP_RETRY_S = 1.0  # back-off after an unexpected error in a step
# Heap bounds once caught up (heap_tuning): blocks of 128 KiB and more get their own
# mapping; the heap's free top is returned above 128 KiB. Measured: docs/design.md.
_MMAP_THRESHOLD = 128 << 10
_TRIM_THRESHOLD = 128 << 10
_TRIM_EVERY_S = 1.0  # malloc_trim when work goes idle, at most this often
_PRUNE_EVERY_S = 1.0  # is the embedding cache over its bound? (O(1)) at most this often


class Watcher:
    """Keeps ``index`` current with ``roots`` until ``request_stop`` (see module doc).

    ``rss`` and ``resources`` replace the real probes (tests); ``on_batch`` is called
    after each batch with the changes it covered and their commit time.
    """

    def __init__(
        self,
        index: Index,
        roots: Sequence[str],
        config: WatchConfig,
        *,
        resources: Resources | None = None,
        rss: Callable[[], int] | None = None,
        on_batch: Callable[[list[Change], float], None] | None = None,
    ) -> None:
        self.index = index
        self.roots = [os.path.abspath(r) for r in roots]
        self.config = config
        self.resources = resources or detect_resources()
        limit = (
            config.memory_limit_mb << 20
            if config.memory_limit_mb
            else int(0.8 * self.resources.memory_bytes)
        )
        self.scheduler = Scheduler(
            max_pending=config.max_pending,
            debounce_s=config.debounce_s,
            max_wait_s=config.max_wait_s,
            priority=config.priority,
        )
        self.governor = Governor(
            self.resources,
            max_cpu_share=config.max_cpu_share,
            memory_limit=limit,
            max_batch_files=config.batch_files,
            rss=rss,
        )
        self.metrics = LiveMetrics()
        self.metrics.cpus.set(self.resources.cpus)
        self.metrics.memory_limit.set(limit)
        self.on_batch = on_batch
        self.phase = "starting"
        self.metrics_port: int | None = None
        self.totals: dict[str, float] = {}
        self.latencies: deque[float] = deque(maxlen=_RECENT)
        self.last_batch: dict[str, Any] = {}
        self._cap_embedder(config.max_concurrent_embeddings)
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._inbox: list[str] = []
        self._inbox_lock = threading.Lock()
        self._rescan_at = 0.0  # the catch-up runs first
        self._ramp = 1
        self._rescans = 0
        self._sync_wanted = 0
        self._idle = threading.Condition()
        self._state_file = state_path(index.path)
        self._state_at = 0.0
        self._dirty = True  # the state file lags what it shows: write it soon
        self._alert_at = 0.0
        self._deferred_seen = 0
        self._feed: NotificationFeed | None = None
        self._own = (str(index.path), str(self._state_file.parent / f".{self._state_file.name}"))
        self._started = time.time()
        self._trimmed = 0.0
        self._busy_since_trim = False
        self._heap_bound = False
        self._prune_at = 0.0
        self._pruning = False  # a cache pass is under way: one step per idle turn
        self._busy_since_prune = True

    # -- control ----------------------------------------------------------------

    def request_stop(self) -> None:
        """Stop gracefully (safe from a signal handler)."""
        self._stop.set()
        self._wake.set()
        self.index.request_stop()

    def notify(self, paths: list[str]) -> None:
        """Hint that ``paths`` changed (the notification thread calls this)."""
        with self._inbox_lock:
            self._inbox.extend(p for p in paths if not p.startswith(self._own))
        self._wake.set()

    def sync(self, timeout: float = 60.0) -> bool:
        """Rescan now and wait until every change found is processed; False on timeout."""
        with self._idle:
            self._sync_wanted = self._rescans + 1
            self._rescan_at = 0.0
            self._wake.set()
            return self._idle.wait_for(
                lambda: (self._rescans >= self._sync_wanted and self._is_idle()) or self._stopped(),
                timeout,
            )

    # -- the loop -----------------------------------------------------------------

    def run(self) -> None:
        """Catch up, then follow changes until ``request_stop``."""
        if self.config.metrics_port is not None:
            self.metrics_port = self.metrics.serve(
                self.config.metrics_port, self.config.metrics_host
            )
        if self.config.notifications:
            self._feed = NotificationFeed(self.roots, self.notify)
            self._feed.start()
        fields = {
            "roots": ",".join(self.roots),
            "index": str(self.index.path),
            "cpus": self.resources.cpus,
            "memory_limit": self.governor.memory_limit,
            "metrics_port": self.metrics_port,
        }
        log.info("watching", extra={"fields": fields})
        self._warm_up()
        self.phase = "catching-up"
        try:
            while not self._stop.is_set():
                try:
                    self._step()
                except Exception as exc:  # a service that runs for weeks must not die
                    # Seen once in a one-hour soak: apsw.ThreadingViolationError from a
                    # rescan (another thread inside a call on the connection). Whatever
                    # it is, the watcher must not die with it: log, count, back off,
                    # and go on; a rescan that failed is simply due again.
                    log.exception("watch step failed unexpectedly; retrying in 1 s")
                    self._error("watch", exc)
                    self._stop.wait(_STEP_RETRY_S)
        finally:
            self.phase = "stopped"
            if self._heap_bound:
                loosen_heap()
            if self._feed is not None:
                self._feed.stop()
            self._write_state()
            self.metrics.close()
            with self._idle:
                self._idle.notify_all()
            log.info("stopped", extra={"fields": self._totals_fields()})

    def _step(self) -> None:
        self._wake.clear()
        self._drain_inbox()
        now = time.monotonic()
        room = len(self.scheduler) < self.config.max_pending // 2
        if now >= self._rescan_at or (self.scheduler.overflowed and room):
            self._rescan()
        self.governor.wait_for_room(self._stop)
        if self._stop.is_set():
            return
        # Slow start: after a quiet spell the first batch is one file, then batches
        # double while work remains, so the first result of a burst is not held back
        # by the rest of the burst (time to first result), and a backlog still
        # reaches full batches within a few steps.
        limit = min(self.governor.batch_limit(), self._ramp)
        batch = self.scheduler.take(limit, self.config.batch_bytes)
        if batch:
            self._process(batch)
            self._busy_since_trim = self._busy_since_prune = True
            self._ramp = min(self.config.batch_files, self._ramp * 2)
            self._refresh(busy=True)
            return
        if not self.scheduler:
            self._ramp = 1
        if self.phase == "catching-up" and not self.scheduler:
            self.phase = "following"
            log.info("caught up", extra={"fields": self._totals_fields()})
            self._settle_memory()
        self._trim_when_idle()
        self._prune_when_idle()
        self._refresh(busy=False)
        with self._idle:
            self._idle.notify_all()
        self._wake.wait(self._sleep_for())

    def _settle_memory(self) -> None:
        """Caught up: from now on a trickle of small batches for weeks, so bound the
        heap and the page cache (the catch-up ran with ingest's settings, for speed)."""
        if self.config.follow_cache_mib:
            kib = self.config.follow_cache_mib << 10
            self.index.conn.execute(f"PRAGMA cache_size=-{kib}")
        if self.config.heap_tuning:
            self._heap_bound = bound_heap(
                mmap_threshold=_MMAP_THRESHOLD, trim_threshold=_TRIM_THRESHOLD
            )

    def _trim_when_idle(self) -> None:
        """Work went idle: hand the heap a batch freed back to the system."""
        if not (self.config.heap_tuning and self._busy_since_trim):
            return
        now = time.monotonic()
        if now - self._trimmed >= _TRIM_EVERY_S:
            trim_heap()
            self._trimmed = now
            self._busy_since_trim = False

    def _prune_when_idle(self) -> None:
        """Work went idle: keep the embedding cache within its bound (``Index.prune_cache``),
        one short step (one transaction) per idle turn, so a change that arrives waits
        for at most one step. Never during a batch: the loop runs one at a time."""
        now = time.monotonic()
        if not self._pruning and not (self._busy_since_prune and now >= self._prune_at):
            return
        self._prune_at = now + _PRUNE_EVERY_S
        self._busy_since_prune = False
        try:
            report = self.index.prune_cache(max_steps=1)
        except (StoreError, TransientError):  # another writer: due again later
            self._pruning = False
            self._busy_since_prune = True
            return
        self._pruning = not report.done
        self.metrics.cache_bytes.set(cache_size(self.index.conn).bytes)
        if report.done and report.steps:
            self.metrics.cache_evicted.inc(report.entries)
            self.totals["cache_evicted"] = self.totals.get("cache_evicted", 0) + report.entries
            fields = {"entries": report.entries, "bytes": report.bytes, "walked": report.walked}
            log.info("embedding cache pruned", extra={"fields": fields})

    def _sleep_for(self) -> float:
        if self._pruning:
            return 0.0  # the next step of a cache pass (changes still come first)
        until_rescan = max(0.0, self._rescan_at - time.monotonic())
        due = self.scheduler.next_due()
        timeout = min(until_rescan, _IDLE_STATE_EVERY_S)
        if due is not None:
            timeout = min(timeout, due + 0.001)
        if self.scheduler.overflowed:
            timeout = min(timeout, 1.0)
        if self._dirty:
            next_state = self._state_at + self.config.state_interval_s - time.monotonic()
            timeout = min(timeout, max(0.0, next_state))
        return timeout

    def _is_idle(self) -> bool:
        with self._inbox_lock:
            inbox = bool(self._inbox)
        return not inbox and not self.scheduler

    def _stopped(self) -> bool:
        return self._stop.is_set()

    # -- intake -------------------------------------------------------------------

    def _drain_inbox(self) -> None:
        with self._inbox_lock:
            paths, self._inbox = self._inbox, []
        for path in dict.fromkeys(paths):
            if os.path.isdir(path):
                # A directory created or moved in: its files come with a rescan soon.
                self._rescan_at = min(self._rescan_at, time.monotonic() + self.config.debounce_s)
                continue
            if not os.path.exists(path) and self.index.ledger.get(path) is None:
                # Perhaps a deleted or moved-out directory: its stored files are gone.
                noted = False
                for stored in self.index.ledger.files_under([path]):
                    self._note(stored, "notify")
                    noted = True
                if noted:
                    continue
            self._note(path, "notify")

    def _note(self, path: str, origin: str, since: float | None = None) -> None:
        if self.scheduler.note(path, since=since):
            self.metrics.changes.labels(origin).inc()
        else:
            self.metrics.deferred.inc()

    def _rescan(self) -> None:
        started = time.perf_counter()
        self.scheduler.overflowed = False
        try:
            plan = self.index.plan(self.roots)
        except HeadraceError as exc:
            self._error("plan", exc)
            plan = None
        if plan is not None:
            for ref in (*plan.to_process, *plan.touched):
                self._note(ref.path, "rescan", ref.mtime_ns / 1e9)
            for old, ref in plan.renamed:
                self._note(old, "rescan")
                self._note(ref.path, "rescan", ref.mtime_ns / 1e9)
            for path in plan.deleted:
                self._note(path, "rescan")
            if plan.protected:
                problems = ";".join(f"{p.root}: {p.reason}" for p in plan.root_problems)
                fields = {"protected": len(plan.protected), "roots": problems}
                log.warning("roots unavailable: indexed files kept", extra={"fields": fields})
        seconds = time.perf_counter() - started
        self.metrics.rescans.inc()
        self.metrics.stage.labels("rescan").observe(seconds)
        self._rescan_at = time.monotonic() + self.config.rescan_interval_s
        self._busy_since_trim = True
        with self._idle:
            self._rescans += 1

    # -- work ---------------------------------------------------------------------

    def _process(self, batch: list[Change]) -> None:
        paths = [c.path for c in batch]
        self.metrics.bytes_in_flight.set(sum(c.size for c in batch))
        self.governor.begin()
        stats = RunStats()
        started = time.time()
        try:
            self.index.ingest_paths(self.roots, paths, stats=stats)
        except StoreError as exc:  # another writer holds the index: try again later
            self.scheduler.restore(batch)
            self._error("write", exc)
            self._stop.wait(1.0)
            return
        except RootUnavailableError as exc:
            self._error("plan", exc)  # a rescan finds these again once the root is back
        except HeadraceError as exc:
            self._error("batch", exc)
        except Exception as exc:  # a bug must not end a service that runs for weeks
            log.exception("batch failed unexpectedly; its files come back with a rescan")
            self._error("batch", exc)
        finally:
            self.metrics.bytes_in_flight.set(0)
        done = time.time()
        snap = stats.snapshot()
        self.metrics.record_batch(snap)
        self._count_dead_letters(paths, started)
        for change in batch:
            self.latencies.append(done - change.since)
            self.metrics.latency.observe(done - change.since)
        for key in (
            "files_done",
            "files_failed",
            "files_skipped",
            "deleted",
            "renamed",
            "touched",
            "chunks_written",
            "embeddings_computed",
            "embeddings_cached",
        ):
            self.totals[key] = self.totals.get(key, 0) + snap.get(key, 0)  # fmt: skip
        self.totals["batches"] = self.totals.get("batches", 0) + 1
        self.last_batch = {"files": len(batch), "at": done, **{k: snap[k] for k in (
            "files_done", "deleted", "chunks_written", "elapsed_s", "embed_seconds",
            "write_seconds")}}  # fmt: skip
        log.info("batch", extra={"fields": {**self.last_batch, "queue": len(self.scheduler)}})
        if self.on_batch is not None:
            self.on_batch(batch, done)

    def _count_dead_letters(self, paths: list[str], since: float) -> None:
        marks = ",".join("?" * len(paths))
        rows = self.index.conn.execute(
            f"SELECT stage, error_type, count(*) FROM dead_letters"
            f" WHERE last_seen >= ? AND path IN ({marks}) GROUP BY stage, error_type",
            (since, *paths),
        ).fetchall()
        for stage, error_type, count in rows:
            self.metrics.errors.labels(str(stage), str(error_type)).inc(int(count or 0))

    def _error(self, stage: str, exc: BaseException) -> None:
        self.metrics.errors.labels(stage, type(exc).__name__).inc()
        log.error(f"{stage} failed", extra={"fields": {"error": f"{type(exc).__name__}: {exc}"}})

    def _warm_up(self) -> None:
        """Load the model now, so the first change after a quiet start is not the one
        that pays for it (seed 001's time to first result)."""
        if self.index.embedder is None:
            return
        started = time.perf_counter()
        try:
            self.index.embedder.embed(["warm-up"])
        except HeadraceError as exc:
            self._error("embed", exc)
            return
        self.metrics.stage.labels("warm-up").observe(time.perf_counter() - started)

    def _cap_embedder(self, limit: int) -> None:
        embedder = self.index.embedder
        if embedder is None:
            return
        threads = getattr(embedder, "threads", None)
        if isinstance(threads, int):
            # ONNX Runtime would otherwise size its pool by the host, not the quota.
            embedder.threads = max(1, min(threads, int(self.resources.cpus)))  # type: ignore[attr-defined]
        self.index.embedder = CappedEmbedder(embedder, limit)

    # -- observability ---------------------------------------------------------------

    def _refresh(self, *, busy: bool) -> None:
        state = self.governor.sample()
        m = self.metrics
        m.queue_depth.set(len(self.scheduler))
        age = self.scheduler.oldest_age()
        m.backlog_age.set(age)
        alert = age > self.config.backlog_alert_s
        m.backlog_alert.set(1 if alert else 0)
        m.rss.set(state.rss_bytes)
        m.cpu_share.set(state.cpu_share)
        m.batch_limit.set(state.batch_files)
        for reason in ("cpu", "memory"):
            m.paused.labels(reason).set(1 if state.paused == reason else 0)
        now = time.monotonic()
        if alert and now - self._alert_at > _ALERT_EVERY_S:
            self._alert_at = now
            log.warning("BACKLOG ALERT: oldest pending change is old",
                        extra={"fields": {"age_s": age, "queue": len(self.scheduler)}})  # fmt: skip
        deferred = self.scheduler.deferred_total
        if deferred > self._deferred_seen:
            log.warning("queue full: changes deferred to a rescan",
                        extra={"fields": {"deferred": deferred - self._deferred_seen}})  # fmt: skip
            self._deferred_seen = deferred
        self._dirty = self._dirty or busy or bool(self.scheduler)
        every = self.config.state_interval_s if self._dirty else _IDLE_STATE_EVERY_S
        if now - self._state_at >= every:
            self._write_state()

    def snapshot(self) -> dict[str, Any]:
        """What ``headrace status`` shows for this watcher."""
        g = self.governor.state
        recent = sorted(self.latencies)
        return {
            "pid": os.getpid(),
            "phase": self.phase,
            "started": self._started,
            "index": str(self.index.path),
            "roots": self.roots,
            "metrics_port": self.metrics_port,
            "notifications": (
                "off"
                if self._feed is None
                else ("failed: " + self._feed.failed)
                if self._feed.failed
                else "on"
            ),
            "queue_depth": len(self.scheduler),
            "deferred_total": self.scheduler.deferred_total,
            "backlog_age_s": round(self.scheduler.oldest_age(), 3),
            "backlog_alert": self.scheduler.oldest_age() > self.config.backlog_alert_s,
            "rescans": self._rescans,
            "totals": dict(self.totals),
            "last_batch": self.last_batch,
            "latency_p50_s": _quantile(recent, 0.5),
            "latency_p99_s": _quantile(recent, 0.99),
            "governor": {
                "usable_cpus": self.resources.cpus,
                "memory_limit_bytes": self.governor.memory_limit,
                "rss_bytes": g.rss_bytes,
                "cpu_share": round(g.cpu_share, 4),
                "batch_files": g.batch_files,
                "paused": g.paused,
                "throttled_s": round(g.throttled_s, 3),
                "memory_pauses": g.paused_total,
            },
        }

    def _write_state(self) -> None:
        self._state_at = time.monotonic()
        self._dirty = False
        try:
            write_state(self._state_file, self.snapshot())
        except OSError as exc:
            log.warning("cannot write the state file", extra={"fields": {"error": str(exc)}})

    def _totals_fields(self) -> dict[str, Any]:
        return {k: int(v) for k, v in self.totals.items()}


def _quantile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    return round(values[min(len(values) - 1, int(q * len(values)))], 4)


__all__ = ["Watcher"]
