"""BoundedQueue: backpressure by items and bytes, the oversized-item rule, close().

Blocking is observed with threads and events: a put that must block is started in
a thread and its "done" event must stay unset until a get frees room. Every wait
has a timeout, so a regression fails the test instead of hanging it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from headrace.runtime.queues import BoundedQueue, Closed

WAIT_S = 5.0  # generous: only reached when something is broken
BLOCKED_S = 0.2  # how long a blocked put must stay blocked to count as blocked


class _Call:
    """Runs ``fn`` in a thread; ``done`` is set when it returns, ``error`` if it raised."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self.done = threading.Event()
        self.error: BaseException | None = None
        self.result: object = None
        self._thread = threading.Thread(target=self._run, args=(fn,), daemon=True)
        self._thread.start()

    def _run(self, fn: Callable[[], object]) -> None:
        try:
            self.result = fn()
        except BaseException as exc:
            self.error = exc
        finally:
            self.done.set()

    def join(self) -> None:
        assert self.done.wait(WAIT_S), "call did not return"
        self._thread.join(WAIT_S)


def test_byte_budget_blocks_producer_until_a_get() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_items=10, max_bytes=100)
    q.put("a", 60)
    second = _Call(lambda: q.put("b", 60))
    assert not second.done.wait(BLOCKED_S), "put over the byte budget did not block"
    assert q.get(timeout=WAIT_S) == "a"
    second.join()
    assert second.error is None
    assert q.get(timeout=WAIT_S) == "b"
    assert q.peak_bytes == 60


def test_item_budget_blocks_producer_until_a_get() -> None:
    q: BoundedQueue[int] = BoundedQueue(max_items=2, max_bytes=1_000)
    q.put(1, 1)
    q.put(2, 1)
    third = _Call(lambda: q.put(3, 1))
    assert not third.done.wait(BLOCKED_S), "put over the item budget did not block"
    assert q.get(timeout=WAIT_S) == 1
    third.join()
    assert [q.get(timeout=WAIT_S), q.get(timeout=WAIT_S)] == [2, 3]


def test_puts_within_budget_do_not_block() -> None:
    q: BoundedQueue[int] = BoundedQueue(max_items=3, max_bytes=30)
    puts = _Call(lambda: [q.put(i, 10) for i in range(3)])
    puts.join()
    assert len(q) == 3
    assert q.peak_bytes == 30


def test_oversized_item_is_admitted_into_an_empty_queue() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_items=10, max_bytes=100)
    big = _Call(lambda: q.put("big", 1_000))
    big.join()  # would block forever if the empty-queue rule broke
    assert big.error is None
    assert q.peak_bytes == 1_000
    small = _Call(lambda: q.put("small", 1))
    assert not small.done.wait(BLOCKED_S), "the queue is over budget: the next put must wait"
    assert q.get(timeout=WAIT_S) == "big"
    small.join()
    assert q.get(timeout=WAIT_S) == "small"


def test_get_times_out_with_none_on_an_empty_queue() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_items=1, max_bytes=1)
    assert q.get(timeout=0) is None
    assert q.get(timeout=0.01) is None


def test_get_wakes_when_an_item_arrives() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_items=1, max_bytes=10)
    getter = _Call(lambda: q.get(timeout=WAIT_S))
    q.put("x", 1)
    getter.join()
    assert getter.result == "x"


def test_close_drains_then_raises_closed() -> None:
    q: BoundedQueue[int] = BoundedQueue(max_items=10, max_bytes=100)
    for i in range(3):
        q.put(i, 1)
    q.close()
    with pytest.raises(Closed):
        q.put(99, 1)
    assert [q.get(timeout=0), q.get(timeout=0), q.get(timeout=0)] == [0, 1, 2]
    with pytest.raises(Closed):
        q.get(timeout=0)
    with pytest.raises(Closed):
        q.get()


def test_close_wakes_a_blocked_producer_with_closed() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_items=1, max_bytes=100)
    q.put("a", 1)
    blocked = _Call(lambda: q.put("b", 1))
    assert not blocked.done.wait(BLOCKED_S)
    q.close()
    blocked.join()
    assert isinstance(blocked.error, Closed)
    assert q.get(timeout=0) == "a"  # what was queued before close is still delivered
    with pytest.raises(Closed):
        q.get(timeout=0)


def test_close_wakes_a_waiting_consumer_with_closed() -> None:
    q: BoundedQueue[str] = BoundedQueue(max_items=1, max_bytes=100)
    waiting = _Call(q.get)  # no timeout: only close() can end this wait
    assert not waiting.done.wait(BLOCKED_S)
    q.close()
    waiting.join()
    assert isinstance(waiting.error, Closed)
