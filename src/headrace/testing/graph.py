"""A fault-injecting wrapper around any graph store, for tests and benchmarks.

``FaultyGraphStore(store, ...)`` forwards every call to ``store`` and can:

- refuse any batch holding a *poisoned* row (``poison(row) -> bool``) with
  ``StoreError``, the way a server refuses a constraint violation;
- fail the first ``transient`` write calls with ``TransientError``;
- kill its own process with SIGKILL at write call number ``crash_at`` (1-based,
  counting ``write_nodes``, ``write_edges``, ``write_files`` and ``finish_file``),
  before the store sees that call: a crash in the middle of a graph write.

``calls`` counts write calls, faults included. With ``whole_files`` the wrapper
offers the wrapped store's ``FileWrites`` (``write_files`` with the same faults, a
poisoned row refusing the whole call), else only the row writes: an ingest then
writes rows, as it does through a store without whole-file writes.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from headrace.errors import StoreError, TransientError
from headrace.sinks.graph_base import EdgeRow, FileBatch, FileWrites, GraphStore, NodeRow


class FaultyGraphStore:
    """See the module docstring."""

    def __init__(
        self,
        store: GraphStore,
        *,
        poison: Callable[[NodeRow | EdgeRow], bool] | None = None,
        transient: int = 0,
        crash_at: int | None = None,
        whole_files: bool = False,
    ) -> None:
        self.inner = store
        self.whole_files = whole_files
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

    def _write_files(self, files: Sequence[FileBatch]) -> None:
        rows: list[NodeRow | EdgeRow] = [NodeRow(f.path, f.gen, *n) for f in files for n in f.nodes]
        rows += [EdgeRow(f.path, f.gen, *e) for f in files for e in f.edges]
        self._step(rows)
        inner: Any = self.inner
        inner.write_files(files)

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
        # Queries (find, edges, path, dump, ...) go straight to the wrapped store;
        # whole-file writes only when asked for (see the module docstring).
        if name in ("write_files", "prepare_rows"):
            if not self.whole_files or not isinstance(self.inner, FileWrites):
                raise AttributeError(name)
            if name == "write_files":
                return self._write_files
        return getattr(self.inner, name)
