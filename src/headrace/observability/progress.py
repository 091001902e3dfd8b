"""Live progress: a rich display on a terminal, periodic log lines otherwise."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from headrace.runtime.stats import RunStats

log = logging.getLogger("headrace")


def _line(s: dict[str, float]) -> str:
    elapsed = max(s["elapsed_s"], 1e-9)
    left = s["bytes_total"] - s["bytes_done"]
    # Bytes skipped thanks to a resume cursor count as done but not as speed.
    rate = (s["bytes_done"] - s.get("bytes_resumed", 0)) / elapsed
    eta = f"{left / rate:.0f}s" if rate > 0 and left > 0 else "-"
    return (
        f"files {s['files_done']:.0f}/{s['files_total']:.0f}  chunks {s['chunks_written']:.0f}"
        f"  embedded {s['embeddings_computed']:.0f} ({s['embeddings_computed'] / elapsed:.1f}/s)"
        f"  cached {s['embeddings_cached']:.0f}  failed {s['files_failed']:.0f}"
        f"  {s['bytes_done'] / 1e6:.0f}/{s['bytes_total'] / 1e6:.0f} MB"
        f"  {rate / 1e6:.1f} MB/s  eta {eta}"
    )


@contextmanager
def _every(seconds: float, tick: Callable[[], None]) -> Iterator[None]:
    """Call ``tick`` every ``seconds`` in a daemon thread while the body runs."""
    done = threading.Event()

    def loop() -> None:
        while not done.wait(seconds):
            tick()

    thread = threading.Thread(target=loop, daemon=True, name="progress")
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


@contextmanager
def show_progress(stats: RunStats, *, enabled: bool, interval: float = 5.0) -> Iterator[None]:
    """Report ``stats`` while the body runs: live on a TTY, else every ``interval`` s."""
    if not enabled:
        yield
    elif sys.stderr.isatty():
        from rich.console import Console
        from rich.live import Live

        live = Live(_line(stats.snapshot()), console=Console(stderr=True), transient=True)
        with live, _every(0.25, lambda: live.update(_line(stats.snapshot()))):
            yield
    else:
        with _every(interval, lambda: log.info("progress %s", _line(stats.snapshot()))):
            yield
