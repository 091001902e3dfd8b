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
