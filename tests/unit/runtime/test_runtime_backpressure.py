"""Memory bounded in bytes across the runner's stages (issue 3).

Stages are stand-ins: a producer yielding ~2 KB chunks without end, an embed stage
adding a 1.5 KB vector per chunk, a writer that can be held. While the writer is
held, every upstream stage must stop at its byte budget: the bytes produced stay
within a few budgets although the file would yield 40 MB, far fewer than the item
budgets allow (Q1 alone admits 4,096 items, ~9 MB). Windows taken from Q1 are cut
by bytes too, not only by WINDOW_ITEMS.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest

import headrace.runtime.runner as runner_module
from headrace.ids import text_hash
from headrace.records import Chunk, FileRef
from headrace.runtime.items import (
    FileDone,
    FileStart,
    Item,
    SegmentDone,
    Window,
    item_size,
    window_size,
)
from headrace.runtime.runner import PRODUCER_BATCH, WINDOW_ITEMS, Runner

BUDGET = 64 << 10
TEXT = "x" * 1000  # item_size 2,200 bytes
COUNT = 20_000  # ~44 MB if nothing pushed back


class _Producer:
    def __init__(self) -> None:
        self.made = 0

    def process(self, ref: FileRef, known: str | None, stop: Callable[[], bool]) -> Iterator[Item]:
        yield FileStart(ref)
        for n in range(COUNT):
            if stop():
                return
            h = text_hash(f"{n}")
            self.made += 1
            yield Chunk(h, ref.path, n, TEXT, h, 250, n, n, 0, 1000)
        yield FileDone(ref, "digest", "sig")


class _Embed:
    def run(self, items: list[Item]) -> Window:
        vectors = {c.text_hash: bytes(1536) for c in items if isinstance(c, Chunk)}
        return Window(items=items, vectors=vectors)

    def committed(self, hashes: object) -> None:
        pass


class _Writer:
    def __init__(self) -> None:
        self.open = threading.Event()
        self.windows: list[Window] = []

    def apply(self, window: Window) -> None:
        assert self.open.wait(10), "writer never released"
        self.windows.append(window)


def _settled(producer: _Producer) -> int:
    """Wait until the producer stops making items (it is blocked); return its count."""
    last = -1
    for _ in range(100):
        time.sleep(0.05)
        if producer.made == last:
            return last
        last = producer.made
    raise AssertionError("producer never blocked")


def test_every_stage_waits_at_its_byte_budget() -> None:
    producer, embed, writer = _Producer(), _Embed(), _Writer()
    runner = Runner(
        cast(Any, producer), cast(Any, embed), cast(Any, writer), workers=1, queue_bytes=BUDGET
    )
    ref = FileRef("/r", "big.log", "/r/big.log", 1 << 30, 0, 1)
    done = threading.Thread(target=runner.run, args=([ref], {}), daemon=True)
    done.start()
    try:
        made = _settled(producer)
        chunk = item_size(Chunk("i", "s", 0, TEXT, "h", 1, 0, 0, 0, 1))
        # In flight: Q1, one window in embed, Q2, one window at the writer, and the
        # item the producer is trying to put; each bounded by BUDGET plus one item.
        assert made * chunk <= 4 * (BUDGET + 2 * chunk) + chunk
        assert made < WINDOW_ITEMS  # the item budgets alone would admit far more
        assert runner.q1.peak_bytes <= BUDGET
        time.sleep(0.2)
        assert producer.made == made  # still waiting: backpressure, not slowness
    finally:
        writer.open.set()
        done.join(30)
    assert not done.is_alive()
    assert sum(isinstance(i, Chunk) for w in writer.windows for i in w.items) == COUNT
    # Every window was cut by bytes, well before WINDOW_ITEMS; Q2 (which counts the
    # vectors too) held more than its budget only as a single window.
    assert max(sum(map(item_size, w.items)) for w in writer.windows) <= BUDGET + chunk
    assert max(len(w.items) for w in writer.windows) < WINDOW_ITEMS // 10
    assert runner.q2.peak_bytes <= max(BUDGET, *map(window_size, writer.windows))


class _NeverEmpty:
    """Q1 as producers refilling it faster than a window is taken."""

    max_bytes = BUDGET

    def get(self, timeout: float | None = None) -> tuple[list[Item], int]:
        chunk = Chunk("i", "s", 0, TEXT, "h", 250, 0, 0, 0, 1000)
        return [chunk], item_size(chunk)


def test_a_window_is_cut_by_bytes_while_q1_is_refilled() -> None:
    runner = Runner(cast(Any, None), cast(Any, None), cast(Any, None), queue_bytes=BUDGET)
    runner.q1 = cast(Any, _NeverEmpty())
    window = runner._take_window()
    size = sum(map(item_size, window))
    chunk = item_size(window[0])
    assert BUDGET <= size <= BUDGET + chunk  # not WINDOW_ITEMS (4,096) items: ~9 MB


def test_a_window_ends_at_a_segment_without_lingering(monkeypatch: pytest.MonkeyPatch) -> None:
    # The producer of a large file may wait for an earlier segment's commit right
    # after sending a SegmentDone; a window that lingered for more would stall it.
    monkeypatch.setattr(runner_module, "LINGER_S", 30.0)
    ref = FileRef("/r", "big.log", "/r/big.log", 1 << 30, 0, 1)
    chunk = Chunk("i", ref.path, 0, TEXT, "h", 250, 0, 0, 0, 1000)
    runner = Runner(cast(Any, None), cast(Any, None), cast(Any, None), queue_bytes=BUDGET)
    runner.q1.put(([chunk], item_size(chunk)), item_size(chunk))
    cursor = cast(Any, object())
    runner.q1.put(([SegmentDone(ref, cursor)], 200), 200)
    started = time.perf_counter()
    window = runner._take_window()
    assert time.perf_counter() - started < 5  # not LINGER_S
    assert [type(i) for i in window] == [Chunk, SegmentDone]


def test_producer_batches_chunks_and_sends_control_items_at_once() -> None:
    producer, embed, writer = _Producer(), _Embed(), _Writer()
    writer.open.set()
    runner = Runner(cast(Any, producer), cast(Any, embed), cast(Any, writer), workers=1)
    puts: list[list[type]] = []
    put = runner.q1.put

    def spy(entry: tuple[list[Item], int], size: int = 0, count: int = 1) -> None:
        assert count == len(entry[0])
        assert size == sum(map(item_size, entry[0]))
        puts.append([type(i) for i in entry[0]])
        put(entry, size, count)

    runner.q1.put = spy  # type: ignore[method-assign]
    runner.run([FileRef("/r", "big.log", "/r/big.log", 1 << 30, 0, 1)], {})
    assert puts[0] == [FileStart]  # a control item is never held back
    assert puts[-1][-1] is FileDone
    assert max(map(len, puts)) == PRODUCER_BATCH  # chunks travel in batches
    assert sum(map(len, puts)) == COUNT + 2
    assert sum(isinstance(i, Chunk) for w in writer.windows for i in w.items) == COUNT
