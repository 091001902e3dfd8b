"""``LineReader``: a file's lines in bounded memory, with exact byte offsets.

Decoding policy
---------------
Files are read in binary and each line is decoded as UTF-8 on its own. Invalid
bytes never abort the stream: they become U+FFFD (Python's ``errors="replace"``,
one replacement per maximal invalid subsequence) and ``Line.replaced`` counts
them. A UTF-8 byte-order mark at byte 0 is not text: it is skipped, so the first
line's ``offset`` is 3. Line terminators are LF and CRLF (the CR is dropped from
``text`` but counted in ``length``); a lone CR is ordinary text. Other encodings
are out of scope: ``readers.detect.sniff_binary`` turns UTF-16/32 away first.

Memory
------
A line is held only while it is shorter than ``max_line_bytes``. Once a line's
length (terminator included) passes the cap, its bytes are dropped as they are
read, block by block, until its newline; the reader then yields a ``ParseIssue``
(``error_type="LineTooLongError"``) at the line's offset and carries on. Peak
memory is therefore a small multiple of ``block_size + max_line_bytes``.

Resuming
--------
``position`` is the byte offset just past the last line (or skipped line) the
iterator has handed out; it is updated *before* the item is yielded. A caller
resumes with ``LineReader(path, start=position, first_line=last_number + 1)``.
A final line without a newline counts as consumed but is marked
``terminated=False``: a caller that tails a file still being appended to must
re-read that last line (the durable cursor is never placed after it).

``end`` stops reading at that byte offset (the size the file had when it was
discovered): a file that grows faster than it is read still finishes, and a line
cut by ``end`` is delivered as an unterminated last line; the rest waits for the
next sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from headrace.errors import UnreadableFileError, VanishedFileError
from headrace.records import Line, ParseIssue

_BOM = b"\xef\xbb\xbf"
_REPLACEMENT_BYTES = b"\xef\xbf\xbd"


def decode_line(raw: bytes) -> tuple[str, int]:
    """Decode one line's bytes (no terminator); return the text and replacements made."""
    try:
        return raw.decode(), 0
    except UnicodeDecodeError:
        text = raw.decode(errors="replace")
        # A literal U+FFFD in the file is valid UTF-8 and not a replacement; an EF
        # byte never continues a broken sequence, so the two counts never overlap.
        return text, text.count("\ufffd") - raw.count(_REPLACEMENT_BYTES)


def _strip_cr(raw: bytes) -> bytes:
    return raw[:-1] if raw.endswith(b"\r") else raw


class LineReader:
    """A ``LineSource`` over one file: ``Line`` records and over-long-line issues.

    ``start`` is a byte offset that begins a line (0, or a ``position`` saved
    earlier) and ``first_line`` the number of the line found there. Nothing is
    opened until iteration starts; an ``OSError`` then becomes
    ``UnreadableFileError(stage="read")``, a ``VanishedFileError`` (message
    ``"file not found …"``) when the file is missing. Every yielded ``Line`` has
    ``length <= max_line_bytes``. Each iteration starts again at ``start``; run
    one at a time (``position`` belongs to the reader).
    """

    def __init__(
        self,
        path: str,
        *,
        start: int = 0,
        first_line: int = 1,
        max_line_bytes: int = 4 * 1024 * 1024,
        block_size: int = 1 << 20,
        end: int | None = None,
    ) -> None:
        if start < 0 or first_line < 1 or max_line_bytes < 1 or block_size < 1:
            raise ValueError("start >= 0, first_line >= 1 and positive sizes are required")
        if end is not None and end < start:
            raise ValueError("end must not be before start")
        self.path = path
        self.end = end
        self._left = -1  # bytes still allowed before ``end`` (-1: unbounded)
        self.start = start
        self.first_line = first_line
        self.max_line_bytes = max_line_bytes
        self.block_size = block_size
        self.position = start
        self._number = first_line
        # Parts of the unfinished line; emptied (but still counted) once over the cap.
        self._pending: list[bytes] = []
        self._pending_len = 0

    def __iter__(self) -> Iterator[Line | ParseIssue]:
        self.position, self._number = self.start, self.first_line
        self._pending, self._pending_len = [], 0
        self._left = -1 if self.end is None else self.end - self.start
        try:
            # Only the open is translated here; errors from the body must not be.
            handle = open(self.path, "rb")  # noqa: SIM115 - closed by the with below
        except OSError as exc:
            raise self._unreadable(exc, "cannot open") from exc
        with handle:
            if self.start:
                handle.seek(self.start)
            yield from self._scan(handle)

    def _scan(self, handle: BinaryIO) -> Iterator[Line | ParseIssue]:
        if self.start == 0:
            self._skip_bom(handle)
        while block := self._read(handle):
            first = block.find(b"\n")
            if first < 0:
                self._hold(block)
                continue
            last = block.rfind(b"\n")
            yield self._finish(block[:first], terminated=True)
            if first < last:
                yield from self._complete_lines(block[first + 1 : last])
            self._hold(block[last + 1 :])
        if self._pending_len:
            yield self._finish(b"", terminated=False)

    def _skip_bom(self, handle: BinaryIO) -> None:
        try:
            head = handle.read(len(_BOM))
            if head == _BOM and (self._left < 0 or self._left >= len(_BOM)):
                self.position = len(_BOM)
                if self._left > 0:
                    self._left -= len(_BOM)
            else:
                handle.seek(0)
        except OSError as exc:
            raise self._unreadable(exc, "read failed") from exc

    def _complete_lines(self, segment: bytes) -> Iterator[Line | ParseIssue]:
        """Yield the lines of ``segment``, a run of whole lines minus the last LF."""
        # Pure ASCII without CR (most text) is decoded and split once, not per line;
        # there a character is a byte, so lengths come from the text.
        if segment.isascii() and b"\r" not in segment:
            pieces: list[str] | list[bytes] = segment.decode("ascii").split("\n")
        else:
            pieces = segment.split(b"\n")
        limit, offset, number = self.max_line_bytes, self.position, self._number
        for piece in pieces:
            size = len(piece) + 1
            self.position = offset + size
            if size > limit:
                yield self._too_long(number, offset, size)
            elif isinstance(piece, str):
                yield Line(number, offset, size, piece)
            else:
                yield Line(number, offset, size, *decode_line(_strip_cr(piece)))
            offset, number = offset + size, number + 1
        self._number = number

    def _hold(self, part: bytes) -> None:
        """Keep ``part`` of the unfinished line unless the line is already over the cap."""
        self._pending_len += len(part)
        if self._pending_len > self.max_line_bytes:
            self._pending.clear()
        elif part:
            self._pending.append(part)

    def _finish(self, tail: bytes, *, terminated: bool) -> Line | ParseIssue:
        """Close the line made of the pending parts plus ``tail`` and advance."""
        size = self._pending_len + len(tail) + terminated
        offset, number = self.position, self._number
        self.position, self._number = offset + size, number + 1
        parts, self._pending, self._pending_len = self._pending, [], 0
        if size > self.max_line_bytes:
            return self._too_long(number, offset, size)
        raw = b"".join(parts) + tail if parts else tail
        text, replaced = decode_line(_strip_cr(raw) if terminated else raw)
        return Line(number, offset, size, text, replaced, terminated)

    def _too_long(self, number: int, offset: int, size: int) -> ParseIssue:
        message = f"line is {size} bytes, over the {self.max_line_bytes}-byte cap; skipped"
        return ParseIssue(
            message=message, line=number, offset=offset, error_type="LineTooLongError"
        )

    def _read(self, handle: BinaryIO) -> bytes:
        if self._left == 0:
            return b""
        want = self.block_size if self._left < 0 else min(self.block_size, self._left)
        try:
            block = handle.read(want)
        except OSError as exc:
            raise self._unreadable(exc, "read failed") from exc
        if self._left > 0:
            self._left -= len(block)
        return block

    def _unreadable(self, exc: OSError, what: str) -> UnreadableFileError:
        kind = UnreadableFileError
        if isinstance(exc, FileNotFoundError):
            what, kind = "file not found", VanishedFileError
        reason = exc.strerror or type(exc).__name__
        return kind(f"{what}: {reason}", path=self.path, stage="read", offset=self.position)
