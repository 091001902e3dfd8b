"""Control records that travel between runtime stages alongside ``Chunk`` records."""

from __future__ import annotations

from dataclasses import dataclass, field

from headrace.errors import InputError
from headrace.ledger.cursors import Cursor
from headrace.records import Chunk, FileRef, ParseIssue


@dataclass(frozen=True, slots=True)
class FileStart:
    """A file's processing begins: anything staged for it earlier is stale.

    With ``resume`` it continues from that durable cursor instead: what was staged
    before the cursor stays, what was staged after it is stale.
    """

    ref: FileRef
    resume: Cursor | None = None


@dataclass(frozen=True, slots=True)
class SegmentDone:
    """Every chunk before ``cursor`` has been sent: commit them with the cursor."""

    ref: FileRef
    cursor: Cursor


@dataclass(frozen=True, slots=True)
class FileDone:
    """Every chunk of the file has been sent; ``issues`` are its recoverable defects."""

    ref: FileRef
    content_hash: str
    signature: str
    issues: tuple[ParseIssue, ...] = ()
    issues_dropped: int = 0
    final: Cursor | None = None  # the last seam, kept for appends
    base_ordinal: int = 0  # chunks below it were published before and are kept


@dataclass(frozen=True, slots=True)
class FileFailed:
    """The file could not be processed; its previous version stays in the index."""

    ref: FileRef
    error: InputError
    signature: str


@dataclass(frozen=True, slots=True)
class FileSkipped:
    """The file is deliberately not indexed (binary); any old chunks are removed."""

    ref: FileRef
    reason: str
    content_hash: str | None
    signature: str


Item = Chunk | FileStart | SegmentDone | FileDone | FileFailed | FileSkipped


@dataclass(slots=True)
class Window:
    """A run of items with the vectors the embed stage computed for them."""

    items: list[Item] = field(default_factory=list)
    vectors: dict[str, bytes] = field(default_factory=dict)


def item_size(item: Item) -> int:
    """Approximate bytes an item holds, for the queues' byte budgets."""
    if isinstance(item, Chunk):
        return 200 + 2 * len(item.text)
    return 200


def window_size(window: Window) -> int:
    """Approximate bytes of a window: its items and its vectors (with their keys)."""
    vectors = sum(150 + len(v) for v in window.vectors.values())
    return sum(map(item_size, window.items)) + vectors
