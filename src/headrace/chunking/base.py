"""Chunking: token budgets measured with the embedder's own tokenizer."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from headrace.records import Chunk, Section


class Chunker(Protocol):
    """Splits a file's sections into chunks that fit the embedder's input limit.

    Contract:
    - every chunk's token count, with the model's special tokens, is at most the
      model's limit: text is never silently truncated by the embedder;
    - chunks never span sections; together they cover all non-blank text;
    - ids are deterministic (source, text hash, occurrence) and an edit in one part
      of a file leaves the ids of chunks in untouched parts unchanged;
    - streams: holds at most one section and its pending chunks.
    """

    def chunk(self, source: str, sections: Iterable[Section]) -> Iterator[Chunk]: ...
