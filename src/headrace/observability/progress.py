"""Live progress: a rich display on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from headrace.runtime.stats import RunStats

log = logging.getLogger("headrace")


def _line(s: dict[str, float]) -> str:
    elapsed = max(s["elapsed_s"], 1e-9)
    left = s["bytes_total"] - s["bytes_done"]
    rate = s["bytes_done"] / elapsed
    eta = f"{left / rate:.0f}s" if rate > 0 and left > 0 else "-"
    return (
        f"files {s['files_done']:.0f}/{s['files_total']:.0f}  chunks {s['chunks_written']:.0f}"
        f"  embedded {s['embeddings_computed']:.0f} ({s['embeddings_computed'] / elapsed:.1f}/s)"
        f"  cached {s['embeddings_cached']:.0f}  failed {s['files_failed']:.0f}"
        f"  {rate / 1e6:.1f} MB/s  eta {eta}"
    )


@contextmanager
def show_progress(stats: RunStats, *, enabled: bool, interval: float = 5.0) -> Iterator[None]:
    """Report ``stats`` while the body runs: live on a TTY, else every ``interval`` s."""
    if not enabled:
        yield
        return
    if sys.stderr.isatty():
        from rich.live import Live

        with Live(_line(stats.snapshot()), refresh_per_second=4, transient=True) as live:
            done = threading.Event()
            thread = threading.Thread(target=_refresh_live, args=(live, stats, done), daemon=True)
            thread.start()
            try:
                yield
            finally:
                done.set()
                thread.join()
        return
    done = threading.Event()
    thread = threading.Thread(target=_log_lines, args=(stats, done, interval), daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


def _refresh_live(live: object, stats: RunStats, done: threading.Event) -> None:
    while not done.wait(0.25):
        live.update(_line(stats.snapshot()))  # type: ignore[attr-defined]


def _log_lines(stats: RunStats, done: threading.Event, interval: float) -> None:
    while not done.wait(interval):
        log.info("progress %s", _line(stats.snapshot()))
