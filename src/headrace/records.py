"""Frozen records passed between stages.

The flow is one way: ``FileRef`` (source) -> ``Line`` (reader) -> ``Section`` /
``ParseIssue`` / ``Seam`` (parser) -> ``Chunk`` (chunker) -> vectors (embedder) -> store.
Records are frozen, slotted dataclasses: cheap to create on the hot path and
impossible to mutate behind another stage's back.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

EMPTY_META: Mapping[str, Any] = {}


@dataclass(frozen=True, slots=True)
class FileRef:
    """A discovered file and the cheap part of its fingerprint.

    ``path`` is absolute and is the file's *source identity*; ``relpath`` is relative
    to the root it was found under (POSIX separators). ``size``, ``mtime_ns`` and
    ``inode`` decide whether the file *may* have changed; only then is it hashed.
    """

    root: str
    relpath: str
    path: str
    size: int
    mtime_ns: int
    inode: int


@dataclass(frozen=True, slots=True)
class Line:
    """One line of a file as the reader delivers it.

    ``number`` is 1-based, ``offset`` is the byte offset of the line's first byte,
    ``length`` its length in bytes including the newline. ``text`` is decoded UTF-8
    without the line terminator; invalid bytes became U+FFFD (``replaced`` counts
    them). ``terminated`` is False only for a last line without its newline (a line
    that may still be being written).
    """

    number: int
    offset: int
    length: int
    text: str
    replaced: int = 0
    terminated: bool = True


@dataclass(frozen=True, slots=True)
class Section:
    """A structural unit of a document produced by a parser.

    A chunk never spans two sections. Positions are 1-based inclusive line numbers
    and a half-open byte range ``[byte_start, byte_end)`` in the source file.
    ``heading`` is the heading path (``"Install > Keys"``) or ``None``.
    ``metadata`` holds format-specific fields (a JSON path, a record's keys ...).
    """

    text: str
    line_start: int
    line_end: int
    byte_start: int
    byte_end: int
    heading: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Seam:
    """A point in a file where a parser holds no state: a resumable boundary.

    Everything the parser derives from bytes before ``offset`` has been yielded, and a
    fresh parser fed the lines from ``offset`` (numbered from ``line``) yields exactly
    the rest of the output. Resumable parsers yield one at every such point; the
    runtime picks some of them as durable segment cursors.
    """

    offset: int
    line: int


@dataclass(frozen=True, slots=True)
class ParseIssue:
    """A recoverable defect inside a file (a malformed JSON line, an over-long line).

    The parser reports it and carries on; the runtime turns it into a dead letter
    while the rest of the file is ingested.
    """

    message: str
    line: int | None
    offset: int | None
    error_type: str = "ParseError"


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of text sized for the embedder, with a deterministic id.

    ``id`` derives from the source identity, the text's hash and how many earlier
    chunks of the same file had the same text, so an edit elsewhere in the file
    leaves it unchanged and replaying a write overwrites instead of duplicating.
    """

    id: str
    source: str
    ordinal: int
    text: str
    text_hash: str
    token_count: int
    line_start: int
    line_end: int
    byte_start: int
    byte_end: int
    heading: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
