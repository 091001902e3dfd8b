"""``RstParser``: reStructuredText sections by title, with the heading path.

A title is one unindented line underlined, and optionally overlined, by a run
of one punctuation character at least as long as the title (an overline must
match the underline). Title levels follow the order in which each adornment
style (character, overlined or not) first appears, as in docutils. As for
markdown, a title must follow a blank line, another title or the start of the
file; a lone adornment line after a blank line (a transition) is text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator

from headrace.parsers.base import ParserOutput
from headrace.parsers.sections import (
    DEFAULT_MAX_SECTION_CHARS,
    HeadingTrail,
    SectionBuilder,
    is_blank,
)
from headrace.records import Line, ParseIssue, Section

# Any printable 7-bit non-alphanumeric character may adorn a title.
_ADORNMENT = re.compile(r"([!-/:-@\[-`{-~])\1*[ \t]*$")


class RstParser:
    """reStructuredText (``.rst``): one section per title, bounded in size.

    A section's text begins with its title block (overline, title, underline);
    ``heading`` is the path of open titles (``"Guide > Install"``). Text before
    the first title has no heading.
    """

    name = "rst"
    version = "1"

    def __init__(self, *, max_section_chars: int = DEFAULT_MAX_SECTION_CHARS) -> None:
        self.max_section_chars = max_section_chars

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield the sections of ``lines``; reader issues pass through."""
        run = _RstRun(SectionBuilder(self.max_section_chars))
        for item in lines:
            if isinstance(item, ParseIssue):
                yield item
            else:
                yield from run.feed(item)
        yield from run.close()


class _RstRun:
    """Per-file state: adornment styles seen, the trail and up to two held lines.

    ``held`` is ``[title]`` or ``[overline]`` or ``[overline, title]``: lines that
    may still turn out to be a title block. They are added to the section as text
    as soon as the next line rules that out.
    """

    def __init__(self, builder: SectionBuilder) -> None:
        self.builder = builder
        self.trail = HeadingTrail()
        self.styles: dict[tuple[str, bool], int] = {}
        self.held: list[Line] = []
        self.after_break = True

    def feed(self, line: Line) -> Iterator[Section]:
        if self.held and (block := self._title_block(line)):
            yield from self._title(block)
        elif len(self.held) == 1 and _is_overline(self.held[0]) and not is_blank(line.text):
            self.held.append(line)
        else:
            yield from self._release()
            if self.after_break and not is_blank(line.text) and not line.text[0].isspace():
                self.held, self.after_break = [line], False
            else:
                self.after_break = is_blank(line.text)
                yield from self.builder.add(line)

    def close(self) -> Iterator[Section]:
        yield from self._release()
        yield from self.builder.flush()

    def _title_block(self, under: Line) -> list[Line] | None:
        """The held lines plus ``under`` if together they form a title block."""
        match = _ADORNMENT.match(under.text)
        if match is None:
            return None
        title = self.held[-1].text.strip()
        long_enough = len(under.text.rstrip()) >= len(title) > 0
        if len(self.held) == 1:
            ok = long_enough and not _ADORNMENT.match(title)
        else:
            ok = long_enough and self.held[0].text.rstrip() == under.text.rstrip()
        return [*self.held, under] if ok else None

    def _title(self, block: list[Line]) -> Iterator[Section]:
        style = (block[-1].text[0], len(block) == 3)
        level = self.styles.setdefault(style, len(self.styles) + 1)
        self.held, self.after_break = [], True
        yield from self.builder.restart(self.trail.enter(level, block[-2].text.strip()))
        for line in block:
            yield from self.builder.add(line)

    def _release(self) -> Iterator[Section]:
        held, self.held = self.held, []
        for line in held:
            yield from self.builder.add(line)


def _is_overline(line: Line) -> bool:
    return _ADORNMENT.match(line.text) is not None
