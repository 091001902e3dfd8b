"""Bounded section building shared by the parsers.

``SectionBuilder`` turns consecutive lines under one heading into sections of at
most ``max_chars`` characters, cutting at line boundaries (at a blank line when
one lies in the second half of the budget). A single line longer than the bound
is cut inside the line by ``split_text``. ``HeadingTrail`` keeps the heading
path (``"Install > Rotate keys"``) for the formats that have titles.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from headrace.records import EMPTY_META, Line, Section

DEFAULT_MAX_SECTION_CHARS = 8000
_NOTHING: tuple[Section, ...] = ()


def split_text(text: str, limit: int) -> Iterator[str]:
    """Cut ``text`` into pieces of at most ``limit`` characters that concatenate to it.

    A cut falls just after the last newline in the second half of a piece, else
    after the last space there, else exactly at ``limit``.
    """
    start, end = 0, len(text)
    while end - start > limit:
        low, high = start + limit // 2, start + limit
        found = text.rfind("\n", low, high)
        if found < 0:
            found = text.rfind(" ", low, high)
        cut = found + 1 if found >= 0 else high
        yield text[start:cut]
        start = cut
    yield text[start:]


def is_blank(text: str) -> bool:
    """True for an empty or whitespace-only line."""
    return not text or text.isspace()


class SectionBuilder:
    """Collects the lines of one heading's run and emits bounded ``Section`` records.

    ``add`` and ``flush`` return the sections completed by the call (usually none).
    Blank lines at either end of a section are trimmed from its text and positions;
    a run of blank lines emits nothing. ``exact_bytes=False`` is for lines whose text
    is rendered rather than decoded (JSON): a piece of a cut line then keeps the
    whole line's byte range instead of a computed sub-range.
    """

    def __init__(
        self,
        max_chars: int = DEFAULT_MAX_SECTION_CHARS,
        *,
        heading: str | None = None,
        metadata: Mapping[str, Any] = EMPTY_META,
        exact_bytes: bool = True,
    ) -> None:
        if max_chars < 1:
            raise ValueError("max_chars must be positive")
        self.max_chars = max_chars
        self.heading = heading
        self.metadata = metadata
        self.exact_bytes = exact_bytes
        self._lines: list[Line] = []
        self._chars = 0
        # Index of the last blank line worth cutting at (in the second half), or -1.
        self._cut_at = -1

    def add(self, line: Line) -> Iterable[Section]:
        """Append ``line``; return the sections it pushed out of the budget."""
        size = len(line.text) + 1
        if size > self.max_chars + 1:
            return [*self.flush(), *self._split_line(line)]
        done: Sequence[Section] = _NOTHING
        if self._chars + size > self.max_chars:
            done = self._make_room(size)
        self._lines.append(line)
        self._chars += size
        if self._chars > self.max_chars // 2 and is_blank(line.text):
            self._cut_at = len(self._lines) - 1
        return done

    def flush(self) -> Sequence[Section]:
        """Emit whatever is pending (at the end of a heading's run or of the file)."""
        lines, self._lines, self._chars, self._cut_at = self._lines, [], 0, -1
        section = self._section(lines)
        return _NOTHING if section is None else (section,)

    def first_pending(self) -> Line | None:
        """The oldest line held for the next section, if any (a resumable point)."""
        return self._lines[0] if self._lines else None

    def restart(self, heading: str | None) -> Sequence[Section]:
        """Flush the current run and begin a new one under ``heading``."""
        done = self.flush()
        self.heading = heading
        return done

    def _make_room(self, size: int) -> Sequence[Section]:
        if self._cut_at < 0:
            return self.flush()
        head, rest = self._lines[: self._cut_at], self._lines[self._cut_at + 1 :]
        self._lines, self._chars, self._cut_at = rest, sum(len(x.text) + 1 for x in rest), -1
        done = [s for s in (self._section(head),) if s is not None]
        if self._chars + size > self.max_chars:
            done.extend(self.flush())
        return done

    def _split_line(self, line: Line) -> Iterator[Section]:
        offset = line.offset
        for piece in split_text(line.text, self.max_chars):
            width = len(piece.encode()) if self.exact_bytes and not line.replaced else 0
            if not is_blank(piece):
                start, end = (offset, offset + width) if width else (line.offset, _end(line))
                yield self._make(piece, line.number, line.number, start, end)
            offset += width

    def _section(self, lines: list[Line]) -> Section | None:
        first, last = 0, len(lines) - 1
        while first <= last and is_blank(lines[first].text):
            first += 1
        while last > first and is_blank(lines[last].text):
            last -= 1
        if first > last:
            return None
        head, tail = lines[first], lines[last]
        text = "\n".join(x.text for x in lines[first : last + 1])
        return self._make(text, head.number, tail.number, head.offset, _end(tail))

    def _make(self, text: str, first: int, last: int, start: int, end: int) -> Section:
        return Section(text, first, last, start, end, self.heading, self.metadata)


def _end(line: Line) -> int:
    return line.offset + line.length


class HeadingTrail:
    """The path of open headings, deepest last: ``"Install > Rotate keys"``."""

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []

    def enter(self, level: int, title: str) -> str:
        """Close headings at ``level`` or deeper, open ``title``; return the new path."""
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, title))
        return " > ".join(name for _, name in self._open if name)


def render_scalar(value: object) -> str | None:
    """A JSON scalar as indexable text: strings as-is, JSON spelling otherwise.

    ``None`` (JSON null) renders as nothing; containers are not scalars.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None or isinstance(value, dict | list):
        return None
    return str(value)
