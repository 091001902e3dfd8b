"""The schema graph: entities, relations, their deterministic keys, and fragments.

Entities (``Node.kind``): ``database``, ``schema``, ``table``, ``view``, ``column``,
``index``, ``routine`` (``routine_type``: procedure, function, trigger, package).
Relations (``Edge.type``): ``CONTAINS`` (database → schema → table/view/routine),
``HAS_COLUMN``, ``REFERENCES`` (table → table and column → column, one per foreign
key), ``READS_FROM`` (view/routine → table/view), ``WRITES_TO`` (routine → table),
``ATTACHED_TO`` (trigger → table), ``INDEXES`` (index → table and index → column),
and ``DEFINED_IN`` (entity → file), which is how stores keep provenance.

Keys are the lower-cased qualified name with a kind prefix
(``relation:sakila.public.film``, ``column:sakila.public.film.title``), so the same
entity seen in two files, or twice in one run, is one node: writes are ``MERGE``s.
An edge's key also carries a digest of its properties, so an edge's properties
never depend on which file wrote it last.

Each file contributes a ``Fragment``: nodes it *defines* (role 0) or only
*mentions* (role 1: a foreign key's target, a view's source) and edges. A store
keeps contributions per file; a node exists while any file contributes it and shows
the properties of its best contribution (defining before mentioning, then the
lowest path), which makes the graph independent of the order files arrive in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, NamedTuple

import orjson
from blake3 import blake3

from headrace.records import ParseIssue
from headrace.sinks.graph_base import DEFINES

NODE_KINDS = ("database", "schema", "table", "view", "column", "index", "routine")
EDGE_TYPES = (
    "CONTAINS",
    "HAS_COLUMN",
    "REFERENCES",
    "READS_FROM",
    "WRITES_TO",
    "ATTACHED_TO",
    "INDEXES",
)

Props = Mapping[str, Any]
_NO_PROPS: Props = MappingProxyType({})


class Node(NamedTuple):
    """An entity as one file sees it. ``props`` hold only JSON scalars and lists,
    and are never changed: the builder shares them (and whole nodes) between
    fragments built from the same facts.

    A tuple, like the store rows it becomes: a large ingest makes ~100 per file."""

    key: str
    kind: str
    name: str
    role: int = DEFINES
    line: int = 0
    props: Props = _NO_PROPS


class Edge(NamedTuple):
    """A relation as one file states it; ``key`` determines ``props`` (never
    changed, shared like ``Node.props``)."""

    key: str
    type: str
    src: str
    dst: str
    props: Props = _NO_PROPS


def edge_key(src: str, type_: str, dst: str, props: Props) -> str:
    """``src|TYPE|dst`` plus a short digest of the properties when there are any."""
    base = f"{src}|{type_}|{dst}"
    if not props:
        return base
    digest = blake3(orjson.dumps(props, option=orjson.OPT_SORT_KEYS)).hexdigest(length=6)
    return f"{base}|{digest}"


def make_edge(src: str, type_: str, dst: str, props: Props | None = None) -> Edge:
    if not props:  # most relations (CONTAINS, HAS_COLUMN, READS_FROM ...)
        return Edge(f"{src}|{type_}|{dst}", type_, src, dst, _NO_PROPS)
    clean = {k: v for k, v in props.items() if v is not None}
    return Edge(edge_key(src, type_, dst, clean), type_, src, dst, clean)


@dataclass(slots=True)
class Fragment:
    """Everything one file contributes to the graph, plus what could not be read.

    ``gen`` identifies the version of the file (its content hash and the builder's
    version): a store drops the file's contributions of any other generation once
    this one is written, so a changed file replaces exactly its own part.
    """

    path: str
    gen: str
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: dict[str, Edge] = field(default_factory=dict)
    issues: list[ParseIssue] = field(default_factory=list)
    stats: dict[str, int] = field(default_factory=dict)

    def add_node(self, node: Node) -> None:
        """Add ``node``; a definition replaces a mention, a mention never a definition."""
        old = self.nodes.get(node.key)
        if old is None or node.role <= old.role:
            self.nodes[node.key] = node

    def add_edge(self, edge: Edge) -> None:
        self.edges[edge.key] = edge

    def drop(self, key: str) -> None:
        """Forget an entity (with a relation: its columns and indexes) and its edges."""
        below = key.split(":", 1)[1] + "."
        gone = {
            k
            for k in self.nodes
            if k == key
            or (k.startswith(("column:", "index:")) and k.split(":", 1)[1].startswith(below))
        }
        for k in gone:
            del self.nodes[k]
        for k in [k for k, e in self.edges.items() if e.src in gone or e.dst in gone]:
            del self.edges[k]
