"""``TextParser``: plain text as paragraphs, in sections of bounded size."""

from __future__ import annotations

from collections.abc import Iterable

from headrace.parsers.base import ParserOutput
from headrace.parsers.sections import DEFAULT_MAX_SECTION_CHARS, SectionBuilder
from headrace.records import Line, ParseIssue


class TextParser:
    """Plain text (``.txt``, ``.log``): one section per bounded run of lines.

    Text has no headings, so a section is simply as many whole lines as fit in
    ``max_section_chars``, cut at a paragraph break (a blank line) when one lies in
    the second half of the budget. Sections have no heading and no metadata.
    """

    name = "text"
    version = "1"

    def __init__(self, *, max_section_chars: int = DEFAULT_MAX_SECTION_CHARS) -> None:
        self.max_section_chars = max_section_chars

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield the sections of ``lines``; reader issues pass through in order."""
        builder = SectionBuilder(self.max_section_chars)
        for item in lines:
            if isinstance(item, ParseIssue):
                yield item
            else:
                yield from builder.add(item)
        yield from builder.flush()
