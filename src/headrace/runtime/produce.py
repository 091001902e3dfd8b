"""The read → parse → chunk part of the flow for one file, as a stream of items.

Everything here is per file and streaming: the reader yields lines, the parser
sections, the chunker chunks; nothing holds the whole file. Failures become a
``FileFailed`` item naming the stage, the file and the line or byte offset.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from headrace.chunking.base import Chunker
from headrace.errors import BinaryFileError, InputError, UnreadableFileError
from headrace.parsers import parser_for
from headrace.parsers.base import Parser
from headrace.parsers.text import TextParser
from headrace.readers.detect import sniff_binary
from headrace.readers.lines import LineReader
from headrace.records import FileRef, Line, ParseIssue, Section
from headrace.runtime.items import FileDone, FileFailed, FileSkipped, FileStart, Item
from headrace.sources.fingerprint import content_hash

MAX_KEPT_ISSUES = 1000


def parser_signature(path: str) -> str:
    """Name and version of the parser a path gets: part of each file's signature."""
    parser = parser_for(path) or TextParser()
    return f"{parser.name}@{parser.version}"


@dataclass(frozen=True, slots=True)
class FileProcessor:
    """Turns one file into items; shared by all producer threads (stateless)."""

    chunker: Chunker
    signature_of: Callable[[FileRef], str]
    max_line_bytes: int
    max_section_chars: int

    # Set when one parser is configured for every file (the ``parser`` setting).
    make_parser: Callable[[], Parser] | None = None

    def parser(self, path: str) -> Parser:
        if self.make_parser is not None:
            return self.make_parser()
        return parser_for(path, max_section_chars=self.max_section_chars) or TextParser(
            max_section_chars=self.max_section_chars
        )

    def process(
        self, ref: FileRef, known_hash: str | None, stop: Callable[[], bool]
    ) -> Iterator[Item]:
        yield FileStart(ref)
        try:
            reason = sniff_binary(ref.path)
            digest = known_hash or content_hash(ref.path)
            if reason is not None:
                yield FileSkipped(ref, reason, digest, self.signature_of(ref))
                return
            issues = _IssueSink()
            lines = LineReader(ref.path, max_line_bytes=self.max_line_bytes)
            sections = issues.filter(self.parser(ref.path).parse(lines, ref.path))
            for chunk in self.chunker.chunk(ref.path, sections):
                if stop():
                    return  # no FileDone: the staged part is discarded on the next run
                yield chunk
            yield FileDone(ref, digest, self.signature_of(ref), tuple(issues.kept), issues.dropped)
        except InputError as exc:
            exc.path = exc.path or ref.path
            yield FileFailed(ref, exc, self.signature_of(ref))
        except OSError as exc:
            err = UnreadableFileError(str(exc), path=ref.path, stage="read")
            yield FileFailed(ref, err, self.signature_of(ref))


class _IssueSink:
    """Separates recoverable issues from sections, keeping a bounded number."""

    def __init__(self) -> None:
        self.kept: list[ParseIssue] = []
        self.dropped = 0

    def filter(self, stream: Iterable[Section | ParseIssue | Line]) -> Iterator[Section]:
        for item in stream:
            if isinstance(item, Section):
                yield item
            elif isinstance(item, ParseIssue):
                if len(self.kept) < MAX_KEPT_ISSUES:
                    self.kept.append(item)
                else:
                    self.dropped += 1


__all__ = ["BinaryFileError", "FileProcessor"]
