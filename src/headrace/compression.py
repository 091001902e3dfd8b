"""zstd contexts shared by the graph's parse side and its embedded store.

A fragment's rows travel and rest as zstd-compressed JSON: in the parse cache
(``graph/parse.py``) and as a file's record in the embedded graph store
(``sinks/graph_sqlite.py``), which keeps the very bytes the cache holds.

zstd level 1 over the 1,000-file benchmark's fragments (54.0 MB of rows): 6.25 MB in
0.059 CPU s, decompressed in 0.056 s; zlib level 1: 6.76 MB in 0.139 s, 0.103 s; lz4:
9.9 MB in 0.028 s. The single writer stores an eighth of the bytes, and lookups walk
a smaller file.
"""

from __future__ import annotations

import os

import zstandard

ZSTD_LEVEL = 1
_CODECS: dict[int, tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]] = {}


def zstd_codec() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    """This process's zstd contexts (reused: half the cost of one per call; keyed by
    pid, since a forked worker must not share its parent's)."""
    pid = os.getpid()
    codec = _CODECS.get(pid)
    if codec is None:
        codec = _CODECS[pid] = (
            zstandard.ZstdCompressor(level=ZSTD_LEVEL),
            zstandard.ZstdDecompressor(),
        )
    return codec
