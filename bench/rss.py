"""Peak resident memory of this process, sampled in a background thread."""

from __future__ import annotations

import threading

import psutil


class PeakRss:
    """Samples RSS every ``interval`` seconds between ``start()`` and ``stop()``."""

    def __init__(self, interval: float = 0.05) -> None:
        self.proc = psutil.Process()
        self.interval = interval
        self.peak = 0
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def now(self) -> int:
        return int(self.proc.memory_info().rss)

    def start(self) -> PeakRss:
        self.peak = self.now()
        self._thread.start()
        return self

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return max(self.peak, self.now())

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self.peak = max(self.peak, self.now())
