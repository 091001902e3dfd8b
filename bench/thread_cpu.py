"""CPU seconds per thread group of this process, sampled from ``/proc/self/task``.

Threads that end before ``stop()`` keep their last sample (taken every
``interval`` seconds). Python threads are grouped by name (``_produce``,
``_embed_loop``, ``MainThread`` = the writer); threads Python does not know
(ONNX Runtime's intra-op pool, the tokenizers' pool) are ``native``. Linux only.
"""

from __future__ import annotations

import os
import threading
from collections import defaultdict

_TICK = os.sysconf("SC_CLK_TCK")
_GROUPS = {"_produce": "producers", "_embed_loop": "embed_thread", "MainThread": "writer_main"}


def _cpu(tid: str) -> float | None:
    try:
        with open(f"/proc/self/task/{tid}/stat", encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime + stime


class ThreadCpu:
    """Per-thread CPU seconds from ``start()`` to ``stop()``, grouped by role."""

    def __init__(self, interval: float = 0.5) -> None:
        self.interval = interval
        self._base: dict[str, float] = {}
        self._last: dict[str, float] = {}
        self._names: dict[str, str] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="thread_cpu")

    def start(self) -> ThreadCpu:
        self._sample()
        self._base = dict(self._last)
        self._thread.start()
        return self

    def stop(self) -> dict[str, float]:
        self._done.set()
        self._thread.join()
        self._sample()
        groups: dict[str, float] = defaultdict(float)
        for tid, seconds in self._last.items():
            name = self._names.get(tid, "native")
            if name == "thread_cpu":
                continue
            groups[_GROUPS.get(name, name if name == "native" else "other_python")] += (
                seconds - self._base.get(tid, 0.0)
            )
        groups["total"] = sum(groups.values())
        return dict(groups)

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        for t in threading.enumerate():
            if t.native_id is not None:
                self._names[str(t.native_id)] = t.name
        for tid in os.listdir("/proc/self/task"):
            seconds = _cpu(tid)
            if seconds is not None:
                self._last[tid] = seconds
