"""The resource governor: what the process really has, and how hard it may use it.

``detect_resources`` reads the CPUs and memory the process can actually use:
CPU affinity (``sched_getaffinity``), a cgroup v2 ``cpu.max`` or v1
``cpu.cfs_quota_us``/``cpu.cfs_period_us`` quota, and a cgroup v2 ``memory.max``
or v1 ``memory.limit_in_bytes`` limit, each walked up the cgroup tree (the
tightest ancestor wins), else the machine's RAM.

``Governor`` is asked before each unit of work:

- **CPU share**: process CPU time over wall time, per usable CPU, is kept under
  ``max_cpu_share`` by a duty cycle: after a batch that used ``c`` CPU-seconds in
  ``w`` seconds, intake waits ``c / (share * cpus) - w``.
- **Memory**: RSS above 70% of the budget halves the batch size (down to one
  file), under 50% lets it grow back; above 85% intake pauses (after a
  ``gc.collect`` and ``malloc_trim``) until RSS falls. If it never falls (the
  budget is below the working set, e.g. the model alone), the governor carries on
  with one file per batch after ``stuck_after_s`` and says so, instead of hanging.
- Concurrency caps (``CappedEmbedder``) bound embedding calls at once; the store
  has one writer by construction (the write stage runs in the watcher's thread).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from headrace.embedding.base import Embedder

if TYPE_CHECKING:
    from tokenizers import Tokenizer

    from headrace.embedding.base import Vectors  # at run time it would import numpy

log = logging.getLogger("headrace.live.governor")

SOFT, HARD, LOW = 0.70, 0.85, 0.50
_UNLIMITED_V1 = 1 << 60  # cgroup v1 reports "no limit" as a huge page-rounded number


@dataclass(frozen=True, slots=True)
class Resources:
    """CPUs and memory available to this process, and where each figure came from."""

    cpus: float
    affinity: int
    cpu_quota: float | None
    memory_bytes: int
    memory_source: str
    cgroup: str  # "v2", "v1" or "none"


def detect_resources(
    cgroup_root: str = "/sys/fs/cgroup", self_cgroup: str = "/proc/self/cgroup"
) -> Resources:
    """Usable CPUs (affinity ∧ quota) and memory (cgroup limit ∧ RAM)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1
    root = Path(cgroup_root)
    version, paths = _cgroup_paths(Path(self_cgroup))
    quota: float | None = None
    limit: int | None = None
    if version == "v2":
        dirs = _ancestors(root, paths.get("", "/"))
        quota = _min_opt(_v2_cpu(d) for d in dirs)
        limit = _min_int(_read_int(d / "memory.max") for d in dirs)
    elif version == "v1":
        quota = _min_opt(_v1_cpu(d) for d in _v1_dirs(root, paths, ("cpu", "cpu,cpuacct")))
        limit = _min_int(
            _read_int(d / "memory.limit_in_bytes") for d in _v1_dirs(root, paths, ("memory",))
        )
        if limit is not None and limit >= _UNLIMITED_V1:
            limit = None
    ram = psutil.virtual_memory().total
    cpus = float(affinity) if quota is None else max(0.01, min(float(affinity), quota))
    memory = ram if limit is None else min(limit, ram)
    source = "cgroup" if limit is not None and limit < ram else "ram"
    return Resources(cpus, affinity, quota, memory, source, version)


def _cgroup_paths(self_cgroup: Path) -> tuple[str, dict[str, str]]:
    try:
        lines = self_cgroup.read_text().splitlines()
    except OSError:
        return "none", {}
    paths: dict[str, str] = {}
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(",") if parts[1] else [""]:
                paths[controller] = parts[2]
            if parts[1] and "," in parts[1]:
                paths[parts[1]] = parts[2]
    if set(paths) == {""}:
        return "v2", paths
    return ("v1", paths) if paths else ("none", {})


def _ancestors(base: Path, rel: str) -> list[Path]:
    """``base/rel`` and each parent up to ``base``; ``base`` itself as a fallback."""
    parts = [p for p in rel.split("/") if p]
    dirs = [base.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [d for d in dirs if d.is_dir()] or [base]


def _v1_dirs(root: Path, paths: dict[str, str], names: Sequence[str]) -> list[Path]:
    for name in names:
        mount = root / name
        if mount.is_dir():
            controller = name.split(",")[0]
            return _ancestors(mount, paths.get(name, paths.get(controller, "/")))
    return []


def _v2_cpu(directory: Path) -> float | None:
    try:
        quota, period = (directory / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _v1_cpu(directory: Path) -> float | None:
    quota = _read_int(directory / "cpu.cfs_quota_us")
    period = _read_int(directory / "cpu.cfs_period_us")
    if quota is None or period is None or quota <= 0 or period <= 0:
        return None
    return quota / period


def _read_int(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _min_opt(values: Iterable[float | None]) -> float | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def _min_int(values: Iterable[int | None]) -> int | None:
    found = [v for v in values if v is not None]
    return min(found) if found else None


def trim_memory() -> None:
    """Collect garbage and hand freed heap pages back to the OS (glibc only)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)


@dataclass(slots=True)
class GovernorState:
    """The governor's view after the last look (exported as metrics and state)."""

    rss_bytes: int = 0
    cpu_share: float = 0.0
    batch_files: int = 0
    paused: str = ""  # "", "cpu" or "memory"
    throttled_s: float = 0.0
    paused_total: int = 0


class Governor:
    """Decides batch sizes and when intake waits (see the module docstring)."""

    def __init__(
        self,
        resources: Resources,
        *,
        max_cpu_share: float,
        memory_limit: int,
        max_batch_files: int,
        rss: Callable[[], int] | None = None,
        cpu_time: Callable[[], float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        stuck_after_s: float = 30.0,
    ) -> None:
        self.resources = resources
        self.max_cpu_share = max_cpu_share
        self.memory_limit = memory_limit
        self.max_batch_files = max_batch_files
        process = psutil.Process()
        self._rss = rss or (lambda: int(process.memory_info().rss))
        self._cpu = cpu_time or (lambda: sum(process.cpu_times()[:2]))
        self._clock = clock
        self.stuck_after_s = stuck_after_s
        self.state = GovernorState(batch_files=max_batch_files)
        self._mark = (clock(), self._cpu())

    def batch_limit(self) -> int:
        """Files in the next batch: shrunk under memory pressure, grown back below it."""
        rss = self._rss()
        self.state.rss_bytes = rss
        files = self.state.batch_files
        if rss > SOFT * self.memory_limit:
            files = max(1, files // 2)
        elif rss < LOW * self.memory_limit:
            files = min(self.max_batch_files, files * 2)
        self.state.batch_files = files
        return files

    def wait_for_room(self, stop: threading.Event) -> None:
        """Block while the CPU share or the memory budget says intake must wait."""
        self._wait_cpu(stop)
        self._wait_memory(stop)

    def begin(self) -> None:
        """Mark the start of a unit of work (the CPU duty cycle is measured from here)."""
        self._mark = (self._clock(), self._cpu())

    def sample(self) -> GovernorState:
        """Refresh RSS and the CPU share since the last ``begin``."""
        self.state.rss_bytes = self._rss()
        start, cpu0 = self._mark
        wall = self._clock() - start
        if wall > 0:
            self.state.cpu_share = (self._cpu() - cpu0) / wall / self.resources.cpus
        return self.state

    def _wait_cpu(self, stop: threading.Event) -> None:
        start, cpu0 = self._mark
        used = self._cpu() - cpu0
        wall = self._clock() - start
        allowed = self.max_cpu_share * self.resources.cpus
        delay = used / allowed - wall
        if wall > 0:
            self.state.cpu_share = used / wall / self.resources.cpus
        if delay > 0.005:
            self.state.paused = "cpu"
            self.state.throttled_s += delay
            stop.wait(delay)
            self.state.paused = ""

    def _wait_memory(self, stop: threading.Event) -> None:
        if self._rss() <= HARD * self.memory_limit:
            return
        trim_memory()
        started = self._clock()
        self.state.paused_total += 1
        while not stop.is_set():
            rss = self._rss()
            self.state.rss_bytes = rss
            if rss <= HARD * self.memory_limit:
                break
            self.state.paused = "memory"
            self.state.batch_files = 1
            if self._clock() - started > self.stuck_after_s:
                log.error(
                    "memory budget below the working set: going on one file at a time",
                    extra={"fields": {"rss_bytes": rss, "limit_bytes": self.memory_limit}},
                )
                break
            stop.wait(0.25)
            trim_memory()
        self.state.paused = ""


class CappedEmbedder:
    """An embedder whose calls run at most ``limit`` at a time, and are timed."""

    def __init__(self, inner: Embedder, limit: int) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.dim = inner.dim
        self.max_tokens = inner.max_tokens
        self._slots = threading.BoundedSemaphore(limit)
        self.seconds = 0.0
        self.calls = 0

    def tokenizer(self) -> Tokenizer:
        return self.inner.tokenizer()

    def embed(self, texts: Sequence[str]) -> Vectors:
        with self._slots:
            started = time.perf_counter()
            try:
                return self.inner.embed(texts)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1


__all__ = ["CappedEmbedder", "Governor", "GovernorState", "Resources", "detect_resources"]
