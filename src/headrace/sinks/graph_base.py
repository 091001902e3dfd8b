"""Graph stores: idempotent, batched writes of per-file contributions, and queries.

The graph ingest drives every store the same way, file group by file group:

1. inside ``group()``: ``write_nodes`` then ``write_edges`` in batches (one ``UNWIND`` transaction
   each). Rows carry the contributing file and its generation; writing a row again
   is a no-op (``MERGE``). An edge whose endpoints do not exist is not created
   (``MATCH`` semantics), so a node lost to a poisoned batch never leaves a
   dangling edge.
2. ``finish_file(path, gen, node_keys, edge_keys)`` once the file's rows are acknowledged: drop
   the file's contributions of any other generation (``gen=None``: all of them,
   for a deleted file), delete entities no file contributes any more, and
   recompute the properties of the touched ones (best contribution: defining
   before mentioning, then lowest path). After it returns the store shows exactly
   the new version of the file.
3. only then does the ledger record the file as done.

A crash anywhere in between leaves the file unrecorded, and the next run redoes it
— the writes are idempotent and ``finish_file`` converges.

Errors: ``TransientError`` (busy, connection lost: retried with backoff) or
``StoreError`` (this batch cannot be written: split to isolate the bad rows).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

import orjson

# A contribution's role: the file defines the entity, or only refers to it.
DEFINES = 0
MENTIONS = 1

_NO_PROPS: Mapping[str, Any] = MappingProxyType({})


def props_json(props: Mapping[str, Any] | str) -> str:
    """Properties as the stores keep them: compact JSON text, keys sorted, UTF-8. A
    row's properties may be that text already (the graph ingest's rows): kept as is."""
    if isinstance(props, str):
        return props
    if not props:  # most relations carry no properties
        return "{}"
    # orjson: ~10x json.dumps on these small objects (one per row).
    return orjson.dumps(props, option=orjson.OPT_SORT_KEYS).decode()


class NodeRow(NamedTuple):
    """One file's contribution of one entity (a tuple: hundreds of thousands are made
    per large ingest, and a tuple is several times cheaper than a frozen dataclass).

    ``props`` (here and in ``EdgeRow``): a mapping, or already its ``props_json``
    text (what the graph ingest passes: the parse workers encode it)."""

    file: str
    gen: str
    key: str
    kind: str
    name: str
    role: int
    line: int
    props: Mapping[str, Any] | str = _NO_PROPS


class EdgeRow(NamedTuple):
    """One file's contribution of one relation."""

    file: str
    gen: str
    key: str
    type: str
    src: str
    dst: str
    props: Mapping[str, Any] | str = _NO_PROPS


@dataclass(frozen=True, slots=True)
class GraphNode:
    """An entity as the store shows it: ``files`` define it, ``mentioned_in`` only
    refer to it (a foreign key's target, a view's source)."""

    key: str
    kind: str
    name: str
    props: Mapping[str, Any]
    files: tuple[str, ...] = ()
    mentioned_in: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class GraphEdge:
    key: str
    type: str
    src: str
    dst: str
    props: Mapping[str, Any]


class GraphStore(Protocol):
    """A graph backend. Every write method is idempotent; see the module docstring."""

    identity: str  # "sqlite", "neo4j:bolt://host:7687/db": part of each file's signature

    def write_nodes(self, rows: Sequence[NodeRow]) -> None: ...

    def write_edges(self, rows: Sequence[EdgeRow]) -> None: ...

    def finish_file(
        self, path: str, gen: str | None, node_keys: Sequence[str], edge_keys: Sequence[str]
    ) -> None: ...

    def group(self) -> AbstractContextManager[None]:
        """Scope of one group's writes. A store may commit them together at its end
        (the embedded store: one transaction, each batch a savepoint); a failed batch
        still rolls back alone. Neo4j commits batch by batch (a no-op scope)."""
        ...

    def close(self) -> None: ...


class FileBatch(Protocol):
    """One file's rows as the graph ingest holds them: ``nodes`` ``[key, kind, name,
    role, line, props]`` and ``edges`` ``[key, type, src, dst, props]`` (props as
    ``props_json`` text; a worker's file decodes them at the first read), and
    ``prep``, what the store's ``prepare_rows`` made of them in the parse worker
    (None: it could not)."""

    @property
    def path(self) -> str: ...

    @property
    def gen(self) -> str: ...

    @property
    def nodes(self) -> Sequence[Sequence[Any]]: ...

    @property
    def edges(self) -> Sequence[Sequence[Any]]: ...

    @property
    def prep(self) -> Any: ...


@runtime_checkable
class FileWrites(Protocol):
    """A store that also takes a whole group of files in one call (the embedded
    store). ``prepare_rows(nodes, edges, packed)`` runs in the parse workers and
    touches no store (``packed``: zstd of the JSON of ``[nodes, edges, ...]``, as the
    parse cache holds a fragment); it returns None for rows it cannot prepare, and
    may pass some rows along with its result (what the process has not prepared
    before) so that the writer reads a file's ``nodes`` and ``edges`` only for rows
    it needs and was not given;
    ``write_files(files)`` does what ``write_nodes`` of every file's node rows and
    then ``write_edges`` of every edge row would, in one savepoint, or raises
    ``StoreError`` having written nothing (the ingest then writes the rows in
    batches, which isolate a bad row)."""

    def prepare_rows(
        self, nodes: Sequence[Sequence[Any]], edges: Sequence[Sequence[Any]], packed: bytes
    ) -> Any: ...

    def write_files(self, files: Sequence[FileBatch]) -> None: ...


class GraphReader(Protocol):
    """The questions the CLI asks; both backends answer them the same way."""

    def find(self, name: str, kinds: Sequence[str] = ()) -> list[GraphNode]: ...

    def node(self, key: str) -> GraphNode | None: ...

    def edges(self, key: str) -> list[tuple[GraphEdge, GraphNode]]: ...

    def path(self, src: str, dst: str, types: Sequence[str], max_hops: int) -> list[str] | None: ...

    def counts(self) -> dict[str, dict[str, int]]: ...

    def dump(self) -> Iterator[dict[str, Any]]: ...
