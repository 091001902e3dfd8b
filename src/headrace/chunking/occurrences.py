"""Occurrence counts: how many earlier chunks of a file had the same text.

A chunk id is ``chunk_id(source, text_hash, occurrence)``, so a chunker needs, for
each text, how often it appeared earlier in the same file. A file resumed at a seam
(after a crash, or after an append) asks the index how many chunks before the seam
had that text, once per distinct text, through ``before``.

``BoundedOccurrences`` keeps memory flat for files of any size: exact counts only
for texts seen in the last ``horizon`` chunks (two generations of dicts), a
fixed-size Bloom filter of every text seen, and, for a text that may have been
seen longer ago, one query to the index. That query is exact because the index
holds every chunk older than ``horizon`` (the runtime never has more chunks in
flight than that: its queues are bounded in items).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable
from typing import Protocol


class Occurrences(Protocol):
    """Counts texts in file order.

    ``next(text_hash)`` returns how many earlier chunks of the file had this text
    (0 the first time) and counts this one.
    """

    def next(self, text_hash: str) -> int: ...


class OccurrenceCounter:
    """Exact counts in a dict; ``before`` gives the counts of chunks before a seam."""

    __slots__ = ("_before", "_seen")

    def __init__(self, before: Callable[[str], int] | None = None) -> None:
        self._seen: dict[str, int] = {}
        self._before = before

    def next(self, text_hash: str) -> int:
        seen = self._seen.get(text_hash)
        if seen is None:
            seen = self._before(text_hash) if self._before is not None else 0
        self._seen[text_hash] = seen + 1
        return seen


# Three probes from one 128-bit hex digest, its first three 32-bit words:
# independent bits of a uniform hash (stored filters depend on this layout).
_WORD = 0xFFFFFFFF


class BoundedOccurrences:
    """Exact counts in bounded memory (see the module docstring).

    ``lookup(text_hash, below)`` counts the file's stored chunks with that text and
    an ordinal below ``below``. ``ordinal`` is the ordinal of the next chunk, and
    ``floor`` the first ordinal of this run (0, or a resume cursor's): stored chunks
    below it are not in the Bloom filter unless ``preload`` feeds their hashes.
    ``lookup_floor=True`` instead asks the index, once per text new to this run,
    how many chunks below the floor had it: O(chunks of this run) lookups rather
    than O(chunks before the cursor) to preload (an append to a 1 GB log, a
    resume at the middle of a large file start at once).
    """

    __slots__ = (
        "_below_floor", "_bits", "_bloom", "_complete", "_cur", "_floor", "_horizon", "_lookup",
        "_n", "_old",
    )  # fmt: skip

    def __init__(
        self,
        lookup: Callable[[str, int], int],
        *,
        horizon: int,
        ordinal: int = 0,
        bloom_bytes: int = 8 << 20,
        lookup_floor: bool = False,
    ) -> None:
        self._lookup, self._horizon = lookup, horizon
        self._below_floor = lookup_floor and ordinal > 0
        self._complete = ordinal == 0  # the filter holds every text of the file so far
        self._cur: dict[str, int] = {}
        self._old: dict[str, int] = {}
        self._bloom = bytearray(bloom_bytes)
        self._bits = bloom_bytes * 8
        self._n = self._floor = ordinal

    def preload(self, hashes: Iterable[str]) -> None:
        """Add the hashes of the chunks stored below ``ordinal`` (a resumed file)."""
        for text_hash in hashes:
            self._add(text_hash)
        self._complete = True

    @property
    def complete(self) -> bool:
        """Whether the filter has every text of the file from ordinal 0 on."""
        return self._complete

    def filter_bytes(self) -> bytes:
        """The filter, compressed: kept in a final cursor when ``complete``."""
        return zlib.compress(self._bloom, 1)

    def load_filter(self, blob: bytes) -> bool:
        """Take a stored filter of the chunks below ``ordinal`` instead of preloading
        or looking them up; False (nothing changed) if it does not fit."""
        try:
            bits = zlib.decompress(blob)
        except zlib.error:
            return False
        if len(bits) != len(self._bloom):
            return False
        self._bloom[:] = bits
        self._below_floor = False
        self._complete = True
        return True

    def next(self, text_hash: str) -> int:
        seen = self._cur.get(text_hash)
        if seen is None:
            seen = self._old.get(text_hash)
            if seen is None:
                seen = self._recall(text_hash)
        if len(self._cur) >= self._horizon:
            self._old, self._cur = self._cur, {}
        self._cur[text_hash] = seen + 1
        self._n += 1
        return seen

    def _recall(self, text_hash: str) -> int:
        """Count of a text not seen in the last ``horizon`` chunks: 0 unless stored."""
        if not self._add(text_hash):
            # Never seen in this run: only chunks below the floor may have it.
            return self._lookup(text_hash, self._floor) if self._below_floor else 0
        # Every earlier chunk with this text is at least ``horizon`` chunks back,
        # so it is stored; nothing of this run beyond that bound is counted.
        return self._lookup(text_hash, max(self._floor, self._n - self._horizon + 1))

    def _add(self, text_hash: str) -> bool:
        """Set the filter's bits for ``text_hash``; True if all were already set."""
        # One int() of 96 bits, not three of 32 (13% of a keyword-only producer).
        value, bits, bloom = int(text_hash[:24], 16), self._bits, self._bloom
        present = True
        for word in (value >> 64, (value >> 32) & _WORD, value & _WORD):
            bit = word % bits
            byte, mask = bit >> 3, 1 << (bit & 7)
            if not bloom[byte] & mask:
                present = False
                bloom[byte] |= mask
        return present


__all__ = ["BoundedOccurrences", "OccurrenceCounter", "Occurrences"]
