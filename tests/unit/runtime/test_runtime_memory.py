"""Memory bounds of the runner: windows are sized with their vectors; heap trimming."""

from __future__ import annotations

import platform

from headrace.records import Chunk
from headrace.runtime.items import Window, item_size, window_size
from headrace.runtime.memory import trim_heap


def _chunk(i: int) -> Chunk:
    text = f"chunk number {i} " * 20
    return Chunk(f"id{i}", "/r/a.md", i, text, f"h{i}", 40, 1, 1, 0, len(text))


def test_window_size_counts_the_vectors() -> None:
    items = [_chunk(i) for i in range(10)]
    bare = Window(items=list(items))
    embedded = Window(items=list(items), vectors={f"h{i}": bytes(1536) for i in range(10)})
    assert window_size(bare) == sum(map(item_size, items))
    assert window_size(embedded) >= window_size(bare) + 10 * 1536


def test_trim_heap_runs_on_glibc() -> None:
    assert trim_heap() is (platform.libc_ver()[0] == "glibc")
