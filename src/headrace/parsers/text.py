"""``TextParser``: plain text as paragraphs, in sections of bounded size."""

from __future__ import annotations

from collections.abc import Iterable

from headrace.parsers.base import ParserOutput
from headrace.parsers.sections import DEFAULT_MAX_SECTION_CHARS, SectionBuilder
from headrace.records import Line, ParseIssue, Seam


class TextParser:
    """Plain text (``.txt``, ``.log``): one section per bounded run of lines.

    Text has no headings, so a section is simply as many whole lines as fit in
    ``max_section_chars``, cut at a paragraph break (a blank line) when one lies in
    the second half of the budget. Sections have no heading and no metadata.

    Resumable: after each emitted section the builder's state is equivalent to a
    fresh builder fed from its first pending line, so that line is a ``Seam``.
    """

    name = "text"
    version = "1"

    def __init__(self, *, max_section_chars: int = DEFAULT_MAX_SECTION_CHARS) -> None:
        self.max_section_chars = max_section_chars

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield the sections of ``lines``; reader issues pass through in order."""
        builder = SectionBuilder(self.max_section_chars)
        last: Line | None = None
        for item in lines:
            if isinstance(item, ParseIssue):
                yield item
                continue
            last = item
            done = builder.add(item)
            if done:
                yield from done
                yield _seam(builder.first_pending(), item)
        if last is not None:
            yield _seam(builder.first_pending(), last)
        yield from builder.flush()


def _seam(pending: Line | None, current: Line) -> Seam:
    """The resumable point after ``current``: the builder's first held line, or the next."""
    if pending is not None:
        return Seam(pending.offset, pending.number)
    if not current.terminated:  # never past a line that may still grow
        return Seam(current.offset, current.number)
    return Seam(current.offset + current.length, current.number + 1)
