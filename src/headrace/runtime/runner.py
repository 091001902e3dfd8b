"""Runs the flow with concurrent stages joined by bounded queues.

::

    producer threads ──Q1──> embed thread ──Q2──> writer (calling thread)
    read/parse/chunk         cache lookup,         stage, publish, ledger
                             model batches          (one transaction a window)

While the model embeds one window, the next files are read, parsed and chunked,
and the previous window is being written. Queues are bounded by items and bytes,
so memory stays flat whatever the corpus. A stop request (SIGINT/SIGTERM) stops
intake; windows already embedded are written, an unfinished file is discarded and
redone on the next run. Any stage's crash stops the others and is re-raised here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence

from headrace.records import Chunk, FileRef
from headrace.runtime.embed import EmbedStage
from headrace.runtime.items import (
    FileDone,
    FileFailed,
    FileSkipped,
    Item,
    SegmentDone,
    Window,
    item_size,
    window_size,
)
from headrace.runtime.memory import trim_heap
from headrace.runtime.produce import FileProcessor
from headrace.runtime.queues import BoundedQueue, Closed
from headrace.runtime.write import WriteStage

WINDOW_ITEMS = 4096
# A producer hands Q1 its chunks in batches of up to this many items (and 1/16 of
# Q1's bytes): one lock round-trip instead of one per chunk (~12% of a keyword-only
# producer's CPU, issue 3). Control items (file start/end, segments) go at once.
PRODUCER_BATCH = 64
# How long a window may wait for more items of a file being read (see _take_window).
LINGER_S = 0.05
# Give free heap pages back at most this often (after a window is committed).
TRIM_INTERVAL_S = 0.5


_NO_LINGER = (FileDone, FileFailed, FileSkipped, SegmentDone)

# Keyword-only runs (no model): the embed stage passes windows straight through, so
# a second window waiting in Q2 is only memory, and windows need not be large for
# model batches. Half-size windows, one in Q2 (and an 8 MB writer page cache, set by
# the caller) took a 210 MB JSONL's peak RSS from 113.9 to 88.5 MB at about the same
# CPU (bench/large_files.py; docs/design.md, "Large and growing files").
KEYWORD_ONLY: dict[str, int] = {"max_window_items": 2048, "q2_windows": 1}


class Runner:
    """One run over a list of files."""

    def __init__(
        self,
        processor: FileProcessor,
        embed: EmbedStage,
        write: WriteStage,
        *,
        workers: int = 1,
        queue_bytes: int = 8 << 20,
        max_window_items: int = WINDOW_ITEMS,
        q2_windows: int = 2,
    ) -> None:
        self.processor = processor
        self.embed = embed
        self.write = write
        self.workers = workers
        self.max_window_items = max_window_items
        # Q1 holds one window ahead of the embed stage: with the real model a window
        # takes a minute to embed and the producers refill Q1 in about a second, so
        # more would only be memory. Q2 counts a window's vectors too; two windows let
        # the writer commit one while the next waits. (Keyword-only runs pass smaller
        # windows and one in Q2: KEYWORD_ONLY below.)
        self.q1: BoundedQueue[tuple[list[Item], int]] = BoundedQueue(max_window_items, queue_bytes)
        self.q2: BoundedQueue[Window] = BoundedQueue(q2_windows, queue_bytes)
        self.trim_seconds = 0.0
        self._trimmed = 0.0
        # Is the model kept fed? Windows embedded, their items, and the time the embed
        # stage waited for Q1 before a window (bench/ingest_cold.py prints them).
        self.windows = 0
        self.window_items = 0
        self.embed_idle_seconds = 0.0
        self.stop = threading.Event()
        self._errors: list[BaseException] = []

    def run(self, files: Sequence[FileRef], hashes: dict[str, str]) -> None:
        todo = iter(files)
        lock = threading.Lock()

        def next_file() -> FileRef | None:
            with lock:
                return None if self.stop.is_set() else next(todo, None)

        producers = [self._thread(self._produce, next_file, hashes) for _ in range(self.workers)]
        embedder = self._thread(self._embed_loop)
        closer = self._thread(self._close_when_done, producers)
        try:
            self._write_loop()
        finally:
            self._shutdown()
            for t in (*producers, closer, embedder):
                t.join()
        if self._errors:
            raise self._errors[0]

    def _thread(self, target: Callable[..., None], *args: object) -> threading.Thread:
        def guarded() -> None:
            try:
                target(*args)
            except Closed:
                pass
            except BaseException as exc:
                self._errors.append(exc)
                self._shutdown()

        thread = threading.Thread(target=guarded, daemon=True, name=target.__name__)
        thread.start()
        return thread

    def _produce(self, next_file: Callable[[], FileRef | None], hashes: dict[str, str]) -> None:
        cap = max(1, self.q1.max_bytes // 16)
        while (ref := next_file()) is not None:
            batch: list[Item] = []
            size = 0
            for item in self.processor.process(ref, hashes.get(ref.path), self.stop.is_set):
                batch.append(item)
                size += item_size(item)
                # A control item is never held back: after a SegmentDone the
                # processor may wait for an earlier segment's commit (durable.py).
                if len(batch) >= PRODUCER_BATCH or size >= cap or type(item) is not Chunk:
                    self.q1.put((batch, size), size, len(batch))
                    batch, size = [], 0
            if batch:
                self.q1.put((batch, size), size, len(batch))

    def _close_when_done(self, producers: list[threading.Thread]) -> None:
        for t in producers:
            t.join()
        self.q1.close()

    def _embed_loop(self) -> None:
        try:
            while not self.stop.is_set():
                items = self._take_window()
                if items and not self.stop.is_set():
                    self.windows += 1
                    self.window_items += len(items)
                    window = self.embed.run(items)
                    self.q2.put(window, window_size(window))
        except Closed:
            pass
        finally:
            # On a stop request, what is still upstream is dropped (its files have no
            # FileDone yet and are redone next run); what is embedded gets written.
            self.q1.close()
            self.q2.close()

    def _take_window(self) -> list[Item]:
        """Up to ``max_window_items`` items and Q1's byte budget (plus the item crossing it):
        producers refill Q1 while a window is taken, so items alone would let a
        window of long chunks outgrow every byte budget."""
        started = time.perf_counter()
        first = self.q1.get(timeout=0.2)
        self.embed_idle_seconds += time.perf_counter() - started
        items: list[Item] = [] if first is None else first[0]
        size = 0 if first is None else first[1]
        deadline = time.perf_counter() + LINGER_S
        while len(items) < self.max_window_items and size < self.q1.max_bytes:
            # Mid-file, more of the file is coming: wait a little for it rather than
            # commit a window of a few chunks (each window is a transaction: 373 of
            # them for a 1 MB append whose producer trickled). At a file's end, go;
            # after a segment too: its producer may be waiting for a commit
            # (durable.py), so lingering would only stall it (50 ms a segment).
            wait = 0.0
            if items and not isinstance(items[-1], _NO_LINGER):
                wait = max(0.0, deadline - time.perf_counter())
            try:
                nxt = self.q1.get(timeout=wait)
            except Closed:
                if items:
                    return items
                raise
            if nxt is None:
                break
            items += nxt[0]
            size += nxt[1]
        return items

    def _write_loop(self) -> None:
        while True:
            try:
                window = self.q2.get(timeout=0.5)
            except Closed:
                return
            if window is not None:
                self.write.apply(window)
                self.embed.committed(window.vectors)
                del window
                self._trim()

    def _trim(self) -> None:
        """Return the freed heap of committed windows to the system (runtime/memory.py)."""
        now = time.perf_counter()
        if now - self._trimmed >= TRIM_INTERVAL_S:
            trim_heap()
            self._trimmed = time.perf_counter()
            self.trim_seconds += self._trimmed - now

    def request_stop(self) -> None:
        """Graceful stop (signal handlers call this): finish what is embedded, exit."""
        self.stop.set()

    def _shutdown(self) -> None:
        self.stop.set()
        self.q1.close()
        self.q2.close()
