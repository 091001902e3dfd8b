"""Occurrence counts: how many earlier chunks of a file had the same text.

A chunk id is ``chunk_id(source, text_hash, occurrence)``, so a chunker needs, for
each text, how often it appeared earlier in the same file. A file resumed at a seam
(after a crash, or after an append) asks the index how many chunks before the seam
had that text, once per distinct text, through ``before``.
"""

from __future__ import annotations

from collections.abc import Callable
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


__all__ = ["OccurrenceCounter", "Occurrences"]
