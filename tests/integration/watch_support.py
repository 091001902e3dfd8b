"""Helpers of the watcher tests: a Watcher running on its own thread, and polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from headrace import Index
from headrace.live import Watcher, load_watch_config

DEADLINE_S = 60.0


@contextmanager
def watching(
    idx: Index, root: Path, *, rss: Callable[[], int] | None = None, **config: Any
) -> Iterator[Watcher]:
    """A watcher of ``root`` (fast debounce, rare rescans unless ``config`` says
    otherwise) on its own thread; stopped, and checked to have stopped, on exit."""
    options = {"debounce_s": 0.05, "rescan_interval_s": 30.0, **config}
    watcher = Watcher(idx, [str(root)], load_watch_config(**options), rss=rss)
    thread = threading.Thread(target=watcher.run, daemon=True)
    thread.start()
    try:
        yield watcher
    finally:
        watcher.request_stop()
        thread.join(timeout=30)
        assert not thread.is_alive(), "watcher did not stop"


def wait_for(condition: Callable[[], Any], what: str) -> None:
    """Poll ``condition`` until it is true; fail the test after ``DEADLINE_S``."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)  # polling interval; the condition decides
    pytest.fail(f"timed out waiting for {what}")
