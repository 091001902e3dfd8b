"""Peak resident memory of this process, sampled in a background thread."""

from __future__ import annotations

import gc
import threading
from typing import Any

import psutil

from headrace.runtime.memory import trim_heap


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

    def settled(self) -> int:
        """RSS once garbage is collected and free heap pages are given back: a base
        that does not depend on what was allocated and freed before (a corpus listing
        of 10,000 paths leaves a few MB of free heap that the run would reuse)."""
        gc.collect()
        trim_heap()
        return self.now()

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


def keep_runners(idx: Any) -> list[Any]:
    """Every ``Runner`` ``idx`` makes from now on, appended to the returned list (a
    bench reads their counters after the run)."""
    runners: list[Any] = []
    make_runner = idx._make_runner

    def keep_runner(*a: Any) -> Any:
        runners.append(make_runner(*a))
        return runners[-1]

    idx._make_runner = keep_runner
    return runners
