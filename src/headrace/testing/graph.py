"""A fault-injecting wrapper around any graph store, for tests and benchmarks.

``FaultyGraphStore(store, ...)`` forwards every call to ``store`` and can:

- refuse any batch holding a *poisoned* row (``poison(row) -> bool``) with
  ``StoreError``, the way a server refuses a constraint violation;
- fail the first ``transient`` write calls with ``TransientError``;
- kill its own process with SIGKILL at write call number ``crash_at`` (1-based,
  counting ``write_nodes``, ``write_edges`` and ``finish_file``), before the store
  sees that call: a crash in the middle of a graph write.

``calls`` counts write calls, faults included.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from headrace.errors import StoreError, TransientError
from headrace.sinks.graph_base import EdgeRow, GraphStore, NodeRow


class FaultyGraphStore:
    """See the module docstring."""

    def __init__(
        self,
        store: GraphStore,
        *,
        poison: Callable[[NodeRow | EdgeRow], bool] | None = None,
        transient: int = 0,
        crash_at: int | None = None,
    ) -> None:
        self.inner = store
        self.identity = store.identity
        self.poison = poison
        self.transient = transient
        self.crash_at = crash_at
        self.calls = 0

    def _step(self, rows: Sequence[NodeRow | EdgeRow] = ()) -> None:
        self.calls += 1
        if self.crash_at is not None and self.calls >= self.crash_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.transient > 0:
            self.transient -= 1
            raise TransientError("injected: store busy")
        if self.poison is not None:
            bad = [r.key for r in rows if self.poison(r)]
            if bad:
                raise StoreError(f"injected: refused {bad[0]}")

    def write_nodes(self, rows: Sequence[NodeRow]) -> None:
        self._step(rows)
        self.inner.write_nodes(rows)

    def write_edges(self, rows: Sequence[EdgeRow]) -> None:
        self._step(rows)
        self.inner.write_edges(rows)

    def finish_file(
        self, path: str, gen: str | None, node_keys: Sequence[str], edge_keys: Sequence[str]
    ) -> None:
        self._step()
        self.inner.finish_file(path, gen, node_keys, edge_keys)

    def group(self) -> AbstractContextManager[None]:
        return self.inner.group()

    def close(self) -> None:
        self.inner.close()

    def __getattr__(self, name: str) -> Any:
        # Queries (find, edges, path, dump, ...) go straight to the wrapped store.
        return getattr(self.inner, name)
