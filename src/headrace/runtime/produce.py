"""The read → parse → chunk part of the flow for one file, as a stream of items.

Everything here is per file and streaming: the reader yields lines, the parser
sections, the chunker chunks; nothing holds the whole file. Failures become a
``FileFailed`` item naming the stage, the file and the line or byte offset.

Segments (issue 3): a resumable parser marks seams; once ``segment_bytes`` have
passed since the last durable cursor, the next seam becomes a ``SegmentDone``
whose cursor the write stage commits with the chunks before it. A file whose
cursor is still true of its bytes (same inode, head and seam digests) resumes
there: ``partial`` after a crash or stop, ``final`` after it grew. Reading stops at
the size the file had when planned, so a file growing faster than it is read still
finishes; the rest is the next sync's append.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from headrace.chunking.base import Chunker
from headrace.chunking.occurrences import BoundedOccurrences, Occurrences
from headrace.errors import (
    BinaryFileError,
    InputError,
    UnreadableFileError,
    VanishedFileError,
)
from headrace.ledger.cursors import Cursor, CursorStore
from headrace.parsers import parser_for
from headrace.parsers.base import Parser
from headrace.parsers.text import TextParser
from headrace.readers.detect import sniff_binary
from headrace.readers.lines import LineReader
from headrace.records import Chunk, FileRef, Line, ParseIssue, Seam, Section
from headrace.runtime.durable import DurableOffsets
from headrace.runtime.items import (
    FileDone,
    FileFailed,
    FileSkipped,
    FileStart,
    Item,
    SegmentDone,
)
from headrace.sources.fingerprint import (
    HashChain,
    chain_digest,
    chain_to,
    content_hash,
    edge_digests,
)

MAX_KEPT_ISSUES = 1000
# Smaller files get no final cursor: re-reading them whole on a change is cheap.
FINAL_CURSOR_MIN_BYTES = 64 << 10
# Chunks the runner can hold between chunker and commit stay under this bound
# (runner.py: Q1 4096 items, Q2 2 windows of <= 4096, one window each in the
# embed and write stages: 20,480), so occurrence counts older than it are
# committed and can be looked up instead of kept (tests/unit/chunking pins it).
# Two generations of counts of up to this many text hashes are held, so it is
# kept near that bound (2^15; it was 2^16 when Q1 held four windows).
OCCURRENCE_HORIZON = 1 << 15
# A resumed file preloads the hashes before its cursor only up to this many chunks.
PRELOAD_MAX_CHUNKS = 1 << 14
# The occurrence Bloom filter: 8 MiB for a file that can get a final cursor (and so
# keep its filter); a smaller file gets one of its own size (>= 8 bits per byte, so
# false positives, which only cost a lookup, stay rare). 8 MiB zeroed per 2 KB file
# was most of a live watcher's page faults under fixed malloc thresholds.
BLOOM_BYTES = 8 << 20
BLOOM_MIN_BYTES = 4 << 10


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
    cursors: CursorStore | None = None  # None: no segments, no resuming
    segment_bytes: int = 8 << 20
    durable: DurableOffsets | None = None  # set: at most one segment in flight per file

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
        started = False
        try:
            reason = sniff_binary(ref.path)
            signature = self.signature_of(ref)
            if reason is not None:
                digest = known_hash or content_hash(ref.path, ref.size)
                yield FileStart(ref)
                yield FileSkipped(ref, reason, digest, signature)
                return
            resume = self.resume_point(ref, signature)
            started = True
            yield FileStart(ref, resume)
            yield from _FileRun(self, ref, signature, resume).items(known_hash, stop)
        except InputError as exc:
            exc.path = exc.path or ref.path
            yield from _failed(ref, exc, self.signature_of(ref), started)
        except OSError as exc:
            kind = VanishedFileError if isinstance(exc, FileNotFoundError) else UnreadableFileError
            err = kind(str(exc), path=ref.path, stage="read")
            yield from _failed(ref, err, self.signature_of(ref), started)

    def resume_point(self, ref: FileRef, signature: str) -> Cursor | None:
        """The file's durable cursor if it is still true of the file's bytes."""
        if self.cursors is None:
            return None
        cur = self.cursors.get(ref.path)
        if cur is None or cur.signature != signature or cur.inode != ref.inode:
            return None
        if cur.offset > ref.size or (cur.mode == "final" and ref.size <= cur.size):
            return None  # shrank, or same size with new bytes: rewritten
        if edge_digests(ref.path, cur.offset) != (cur.head_digest, cur.seam_digest):
            return None  # truncated and rewritten, copy-truncated, edited
        return cur


def _failed(ref: FileRef, err: InputError, signature: str, started: bool) -> Iterator[Item]:
    if not started:
        yield FileStart(ref)
    yield FileFailed(ref, err, signature)


class _FileRun:
    """One pass over one file, from its start or from a durable cursor."""

    def __init__(
        self, proc: FileProcessor, ref: FileRef, signature: str, resume: Cursor | None
    ) -> None:
        self.proc, self.ref, self.signature, self.resume = proc, ref, signature, resume
        self.base = resume.base_ordinal if resume else 0
        self.issues = _IssueSink(resume.issues if resume else ())
        # The content hash so far: a resumed or appended file continues the cursor's.
        self.chain = (
            resume.chain if resume and resume.chain.offset <= resume.offset else HashChain()
        )

    def items(self, known_hash: str | None, stop: Callable[[], bool]) -> Iterator[Item]:
        proc, ref, resume = self.proc, self.ref, self.resume
        lines = LineReader(
            ref.path,
            start=resume.offset if resume else 0,
            first_line=resume.line if resume else 1,
            max_line_bytes=proc.max_line_bytes,
            end=ref.size,
        )
        ordinal = resume.ordinal if resume else 0
        counter = self.occurrences(ordinal)
        parsed = proc.parser(ref.path).parse(lines, ref.path)
        stream = proc.chunker.stream(
            ref.path, self.issues.filter(parsed), ordinal=ordinal, occurrences=counter
        )
        durable = resume.offset if resume else 0
        unacked: int | None = None  # offset of the segment sent and not yet waited for
        step = max(1, proc.segment_bytes // 2)
        last: tuple[Seam, int] | None = None
        for item in stream:
            if isinstance(item, Chunk):
                if stop():
                    return  # no FileDone: redone from the last durable cursor
                ordinal += 1
                yield item
                continue
            last = (item, ordinal)
            if item.offset - durable >= step and proc.cursors is not None:
                cursor = self.cursor("partial", item, ordinal)
                if cursor is not None:
                    durable = item.offset
                    yield SegmentDone(ref, cursor)
                    # Cursors every half segment, and wait for the previous one: the
                    # reader is never more than a segment past the durable cursor.
                    if unacked is not None and proc.durable is not None:
                        proc.durable.wait(ref.path, unacked, stop)
                    unacked = item.offset
        final = None
        if last is not None and ref.size >= min(FINAL_CURSOR_MIN_BYTES, proc.segment_bytes):
            final = self.cursor("final", *last)
            if final is not None and isinstance(counter, BoundedOccurrences):
                final = self.with_filter(final, counter)
        issues = self.issues
        # Hashed last (of the bytes as planned), from the chain the cursors carried:
        # a resumed file starts reading at once, an appended one hashes its new bytes.
        digest = known_hash or chain_digest(ref.path, self.chain, ref.size)
        yield FileDone(
            ref, digest, self.signature, tuple(issues.kept), issues.dropped, final, self.base
        )

    def occurrences(self, ordinal: int) -> Occurrences | None:
        """Flat-memory occurrence counts backed by the index (None: a plain dict)."""
        store, path, base = self.proc.cursors, self.ref.path, self.base
        if store is None:
            return None
        # A resumed file with a long prefix looks texts up instead of preloading
        # every hash before the cursor (~8 us each: 25 s for a 1 GB log).
        lookup_floor = ordinal > PRELOAD_MAX_CHUNKS
        counter = BoundedOccurrences(
            lambda h, below: store.count_stored(path, h, base, below),
            horizon=OCCURRENCE_HORIZON,
            ordinal=ordinal,
            bloom_bytes=bloom_bytes(self.ref.size, self.proc.segment_bytes),
            lookup_floor=lookup_floor,
        )
        resume = self.resume
        if resume is not None and resume.bloom is not None and counter.load_filter(resume.bloom):
            return counter  # an append to a file of many chunks: its stored filter
        if resume is not None and not lookup_floor:
            counter.preload(store.stored_hashes(resume))
        return counter

    @staticmethod
    def with_filter(final: Cursor, counter: BoundedOccurrences) -> Cursor:
        """A file of many chunks keeps its complete filter in its final cursor, so an
        append looks up only the texts it may have seen (not every new one)."""
        if final.ordinal <= PRELOAD_MAX_CHUNKS or not counter.complete:
            return final
        return dataclasses.replace(final, bloom=counter.filter_bytes())

    def cursor(self, mode: str, seam: Seam, ordinal: int) -> Cursor | None:
        if self.proc.cursors is None:
            return None
        head, tail = edge_digests(self.ref.path, seam.offset)
        if head is None or tail is None:
            return None
        self.chain = chain_to(self.ref.path, self.chain, seam.offset)
        kept = tuple(i for i in self.issues.kept if i.offset is None or i.offset < seam.offset)
        base = ordinal if mode == "final" else self.base
        r = self.ref
        return Cursor(
            r.path, mode, self.signature, r.inode, r.size, seam.offset, seam.line,
            ordinal, base, head, tail, kept, self.chain,
        )  # fmt: skip


class _IssueSink:
    """Separates recoverable issues from sections and seams, keeping a bounded number."""

    def __init__(self, kept: Iterable[ParseIssue] = ()) -> None:
        self.kept: list[ParseIssue] = list(kept)
        self.dropped = 0

    def filter(
        self, stream: Iterable[Section | ParseIssue | Seam | Line]
    ) -> Iterator[Section | Seam]:
        for item in stream:
            if isinstance(item, Section | Seam):
                yield item
            elif isinstance(item, ParseIssue):
                if len(self.kept) < MAX_KEPT_ISSUES:
                    self.kept.append(item)
                else:
                    self.dropped += 1


__all__ = ["BinaryFileError", "FileProcessor"]


def bloom_bytes(size: int, segment_bytes: int) -> int:
    """Bytes of the occurrence filter for a file of ``size`` bytes (see BLOOM_BYTES):
    the full size wherever ``items`` may write a final cursor."""
    if size >= min(FINAL_CURSOR_MIN_BYTES, segment_bytes):
        return BLOOM_BYTES
    return max(BLOOM_MIN_BYTES, 1 << max(0, size - 1).bit_length())
