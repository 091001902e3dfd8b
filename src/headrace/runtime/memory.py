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


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


def trim_heap() -> bool:
    """Release free heap pages to the system; ``False`` where glibc is not used."""
    trim = _malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_M_ARENA_MAX = -8


@functools.cache
def _mallopt() -> Callable[[int, int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        opt = libc.mallopt
    except (OSError, AttributeError):
        return None
    opt.argtypes = [ctypes.c_int, ctypes.c_int]
    opt.restype = ctypes.c_int
    return opt


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
    opt = _mallopt()
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
