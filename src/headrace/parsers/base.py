"""Parsers: one module per format, each turning lines into sections."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Protocol

from headrace.records import Line, ParseIssue, Seam, Section

ParserOutput = Iterator[Section | ParseIssue | Seam]


class Parser(Protocol):
    """Turns a file's lines into ``Section`` records.

    Contract:
    - consumes the line stream once, in order, and yields sections as soon as they
      are complete: never collects the whole file;
    - a section's text is bounded (``max_section_chars``); longer runs are split at
      line boundaries into consecutive sections with the same heading;
    - a recoverable defect (a malformed JSON line) is yielded as ``ParseIssue`` and
      parsing continues; an unrecoverable one raises ``ParseError`` with the line;
    - passes ``ParseIssue`` items it receives from the reader through unchanged;
    - a *resumable* parser yields a ``Seam`` at each point where it holds no state
      (see ``records.Seam``); the runtime resumes large or growing files there.
      Parsers that yield none are simply re-read from byte 0;
    - never does I/O of its own and never imports runtime, ledger or sinks.
    ``name`` and ``version`` identify the parser (a version bump re-parses files).
    """

    name: str
    version: str

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput: ...
