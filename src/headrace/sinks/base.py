"""Sinks: idempotent upsert and delete of chunks in a store.

The runtime drives a sink with the same discipline for every store:

1. ``stage`` a file's chunks (with vectors) as they are produced — bounded memory;
2. ``publish`` the file once every chunk is staged: the store now serves exactly the
   new version of the file;
3. only then does the ledger record the file as done.

Ids are deterministic (source identity + content), so a replay after a crash
overwrites instead of duplicating. The embedded SQLite store performs 2 and 3 in
one transaction; a server store (Qdrant, PostgreSQL, a graph) acknowledges 2 and
the ledger commits 3 afterwards, and ``reconcile`` repairs any difference on start.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from headrace.records import Chunk


@dataclass(frozen=True, slots=True)
class Hit:
    """One search result."""

    chunk_id: str
    path: str
    text: str
    score: float
    line_start: int
    line_end: int
    byte_start: int
    byte_end: int
    heading: str | None
    metadata: Mapping[str, object]
    vector_rank: int | None = None
    keyword_rank: int | None = None


class Sink(Protocol):
    """A store of chunks. Every method is idempotent.

    - ``stage`` must make the chunks durable enough to survive the process (or be
      cheap to recompute): it never makes them visible to search;
    - ``publish`` atomically replaces the file's previous chunks with the staged ones;
    - ``remove`` deletes every chunk of a file; removing an unknown file is a no-op;
    - nothing here records progress: that is the ledger's job, after these return.
    """

    def stage(self, path: str, chunks: Sequence[Chunk], vectors: Mapping[str, bytes]) -> None: ...

    def publish(self, path: str, file_id: int) -> int: ...

    def remove(self, file_id: int) -> None: ...


@dataclass(frozen=True, slots=True)
class StoredChunk:
    """A published chunk as a replica receives it: position, metadata, float32 vector."""

    id: str
    path: str
    text: str
    ordinal: int
    line_start: int
    line_end: int
    byte_start: int
    byte_end: int
    heading: str | None
    metadata: Mapping[str, object]
    vector: bytes


class Replica(Protocol):
    """A second store that follows the embedded index (Qdrant, …). Idempotent.

    The embedded index stays the ledger: the write stage calls the replica *inside*
    the window's transaction, after a file's chunks are published there and before
    the ledger commits, so progress is recorded only after the replica acknowledged.
    A crash between the acknowledgement and the commit replays the same ids
    (overwrite); reconciliation on start repairs any other difference.

    - ``upsert`` returns only once the store acknowledged every chunk (retrying
      transient failures itself); it raises ``StoreError`` otherwise;
    - ``delete`` removes chunks by id; unknown ids are a no-op;
    - ``ids`` lists the chunk ids the store holds for this index (for reconcile).
    """

    def upsert(self, chunks: Sequence[StoredChunk]) -> None: ...

    def delete(self, chunk_ids: Sequence[str]) -> None: ...

    def ids(self) -> Iterator[str]: ...
