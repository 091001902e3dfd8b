"""``NotificationFeed``: filesystem notifications (watchfiles) as *hints*.

A daemon thread runs ``watchfiles.watch`` over the roots and hands every changed
path to a callback. Notifications are never the truth: inotify drops events when
its queue overflows, network filesystems send none, and nothing is sent while
headrace is not running. The watcher's periodic rescan (the ledger compared with
the tree) catches all of that; the feed only makes the common case fast. If the
feed fails (a root vanished, no inotify watches left) it logs once and stops, and
rescans carry on alone.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence

log = logging.getLogger("headrace.live.watcher")


class NotificationFeed:
    """Calls ``on_paths(paths)`` from its own thread for each batch of raw events."""

    def __init__(
        self,
        roots: Sequence[str],
        on_paths: Callable[[list[str]], None],
        *,
        debounce_ms: int = 20,
        step_ms: int = 50,
        force_polling: bool | None = None,
    ) -> None:
        self.roots = list(roots)
        self.on_paths = on_paths
        self.debounce_ms = debounce_ms
        self.step_ms = step_ms
        self.force_polling = force_polling
        self.failed: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.started = threading.Event()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="headrace-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import watchfiles

        try:
            # The library's own debounce only groups a burst into one yield; the
            # per-file debounce and settle check are the scheduler's.
            changes = watchfiles.watch(
                *self.roots,
                watch_filter=None,
                debounce=self.debounce_ms,
                step=self.step_ms,
                stop_event=self._stop,
                yield_on_timeout=False,
                raise_interrupt=False,
                ignore_permission_denied=True,
                force_polling=self.force_polling,
            )
            self.started.set()
            for batch in changes:
                self.on_paths([path for _change, path in batch])
        except Exception as exc:  # the feed is a hint: any failure leaves rescans alone
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning(
                "filesystem notifications unavailable; relying on rescans",
                extra={"fields": {"error": self.failed}},
            )
        finally:
            self.started.set()


__all__ = ["NotificationFeed"]
