"""Readers: bounded-memory byte and line streams with resumable offsets."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Protocol

from headrace.records import Line, ParseIssue


class LineSource(Protocol):
    """A stream of a file's lines, never holding more than one line in memory.

    Contract:
    - yields ``Line`` records in file order, each with its byte ``offset``;
    - a line longer than the cap is never read into memory: it is skipped and a
      ``ParseIssue`` with ``error_type="LineTooLongError"`` and its offset is yielded;
    - invalid UTF-8 never aborts the stream: bytes are replaced with U+FFFD and
      ``Line.replaced`` counts them;
    - ``start`` lets a caller resume at a byte offset that begins a line.
    """

    path: str

    def __iter__(self) -> Iterator[Line | ParseIssue]: ...
