"""A queue bounded by items *and* bytes: the runtime's backpressure.

``put`` blocks while either budget is exhausted, so a fast upstream stage waits for
a slow downstream one instead of growing memory. One item is always admitted into
an empty queue, whatever its size, so a single large item cannot deadlock. An
entry may stand for several items (``count``: a producer's batch), so the item
budget counts items, not lock round-trips.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Closed(Exception):
    """Raised by ``put`` on a closed queue and by ``get`` on a closed, empty one."""


class BoundedQueue(Generic[T]):
    """FIFO with ``max_items`` and ``max_bytes`` budgets; thread-safe."""

    def __init__(self, max_items: int, max_bytes: int) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._items: deque[tuple[T, int, int]] = deque()
        self._bytes = 0
        self._count = 0
        self._closed = False
        self._cond = threading.Condition()
        self.peak_bytes = 0

    def put(self, item: T, size: int = 0, count: int = 1) -> None:
        with self._cond:
            while (
                self._items
                and not self._closed
                and (self._count + count > self.max_items or self._bytes + size > self.max_bytes)
            ):
                self._cond.wait()
            if self._closed:
                raise Closed
            self._items.append((item, size, count))
            self._bytes += size
            self._count += count
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """The next item; ``None`` when ``timeout`` passed with nothing to take."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout)
            if not self._items:
                if self._closed:
                    raise Closed
                return None
            item, size, count = self._items.popleft()
            self._bytes -= size
            self._count -= count
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more puts; gets drain what is left, then raise ``Closed``."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        """Items held (an entry counts as its ``count``)."""
        with self._cond:
            return self._count
