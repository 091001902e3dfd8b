"""Chunking: token budgets measured with the embedder's own tokenizer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from headrace.chunking.occurrences import OccurrenceCounter, Occurrences
from headrace.records import Chunk, Seam, Section


class Chunker(Protocol):
    """Splits a file's sections into chunks that fit the embedder's input limit.

    Contract:
    - every chunk's token count, with the model's special tokens, is at most the
      model's limit: text is never silently truncated by the embedder;
    - chunks never span sections; together they cover all non-blank text;
    - ids are deterministic (source, text hash, occurrence) and an edit in one part
      of a file leaves the ids of chunks in untouched parts unchanged;
    - streams: holds at most one section and its pending chunks;
    - ``stream`` passes ``Seam`` items through in order and, started at ``ordinal``
      with the ``occurrences`` of the chunks before a seam, yields exactly what an
      uninterrupted run yields after it (resumable files depend on this).
    """

    def chunk(self, source: str, sections: Iterable[Section]) -> Iterator[Chunk]: ...

    def stream(
        self,
        source: str,
        items: Iterable[Section | Seam],
        *,
        ordinal: int = 0,
        occurrences: Occurrences | None = None,
    ) -> Iterator[Chunk | Seam]: ...


class SectionChunker:
    """The part every built-in chunker shares: seams pass through, ordinals and
    occurrences run on across sections; a subclass chunks one section."""

    def chunk(self, source: str, sections: Iterable[Section]) -> Iterator[Chunk]:
        """Yield the chunks of one file's sections in order; see the ``Chunker`` contract."""
        for item in self.stream(source, sections):
            if isinstance(item, Chunk):
                yield item

    def stream(
        self,
        source: str,
        items: Iterable[Section | Seam],
        *,
        ordinal: int = 0,
        occurrences: Occurrences | None = None,
    ) -> Iterator[Chunk | Seam]:
        """Chunks of ``items``' sections with seams passed through, from ``ordinal`` on."""
        seen = occurrences if occurrences is not None else OccurrenceCounter()
        for item in items:
            if isinstance(item, Seam):
                yield item
                continue
            for chunk in self._chunks_of(source, item, seen, ordinal):
                ordinal += 1
                yield chunk

    def _chunks_of(
        self, source: str, section: Section, seen: Occurrences, ordinal: int
    ) -> Iterator[Chunk]:
        raise NotImplementedError
