"""Durable offsets: how far each large file is committed, shared by producer and writer.

The write stage marks a file's cursor offset once the window holding its
``SegmentDone`` has committed; a producer that has sent one segment more waits
for it before reading on. So a file never has more than one segment between the
reader and its durable cursor: after a crash at most that much is read again,
and the bytes a large file has in flight are bounded whatever the queues allow.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


class DurableOffsets:
    """Per-path committed offsets with a blocking wait; thread-safe."""

    def __init__(self) -> None:
        self._done: dict[str, int] = {}
        self._cond = threading.Condition()

    def mark(self, path: str, offset: int) -> None:
        with self._cond:
            self._done[path] = max(offset, self._done.get(path, 0))
            self._cond.notify_all()

    def forget(self, path: str) -> None:
        with self._cond:
            self._done.pop(path, None)

    def wait(self, path: str, offset: int, stop: Callable[[], bool]) -> None:
        """Block until ``path`` is committed up to ``offset`` or ``stop()`` is true."""
        with self._cond:
            while self._done.get(path, -1) < offset and not stop():
                self._cond.wait(0.1)
