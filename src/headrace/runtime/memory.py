"""Give the C heap's free pages back to the system between windows (glibc only).

CPython, SQLite and numpy allocate through malloc. After a window is written, most
of what it held (chunk texts, vectors, SQLite's statement scratch) is free, but
glibc keeps free memory inside its arenas (one per thread that allocated, each up
to 64 MB) and returns only the top of each heap, above a threshold that grows with
the largest block freed. Measured with ``bench/rss_profile.py`` (hash embedder):
15-33 MB of a cold run's RSS was such free-but-held memory, and how much depended
on how far the run got, so peak RSS grew with the corpus. ``malloc_trim(0)`` walks
every arena and ``madvise``s whole free pages away; it costs well under a
millisecond per call here (see ``trim_heap``'s caller for how often).

Elsewhere (musl, macOS) this is a no-op.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import Any


@functools.cache
def _libc(name: str, *argtypes: type[Any]) -> Callable[..., int] | None:
    """A glibc function returning ``int``; ``None`` where the C library lacks it."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        function = getattr(libc, name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function  # type: ignore[no-any-return]


def trim_heap() -> bool:
    """Release free heap pages to the system; ``False`` where glibc is not used."""
    trim = _libc("malloc_trim", ctypes.c_size_t)
    if trim is None:
        return False
    trim(0)
    return True


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


def bound_heap(*, mmap_threshold: int, trim_threshold: int, arena_max: int = 0) -> bool:
    """Fix glibc's mmap and trim thresholds (and, if given, the arena count) for the
    rest of the process; ``False`` where glibc is not used or it refused.

    For long-running processes only (``headrace watch`` after its catch-up): blocks
    of ``mmap_threshold`` bytes or more get their own mapping, unmapped when freed,
    instead of landing in a heap that can only shrink from the top; fixing the
    thresholds turns off glibc's dynamic threshold, which otherwise climbs to the
    largest block ever freed (up to 32 MB) and keeps every later large block in the
    heap. The price is an ``mmap``/``munmap`` and page faults per large block, which
    made cold ingests 1.8-1.9x slower (docs/design.md), so ``ingest`` never sets it.
    """
    opt = _libc("mallopt", ctypes.c_int, ctypes.c_int)
    if opt is None:
        return False
    ok = opt(_M_MMAP_THRESHOLD, mmap_threshold) == 1
    ok = opt(_M_TRIM_THRESHOLD, trim_threshold) == 1 and ok
    if arena_max:
        ok = opt(_M_ARENA_MAX, arena_max) == 1 and ok
    return ok


def loosen_heap() -> bool:
    """Undo ``bound_heap`` as far as glibc allows (a watcher stopped inside a process
    that goes on, e.g. to ingest): the dynamic threshold stays off, so set the values
    it climbs to, 32 MiB for mmap and twice that for trimming."""
    return bound_heap(mmap_threshold=32 << 20, trim_threshold=64 << 20)
