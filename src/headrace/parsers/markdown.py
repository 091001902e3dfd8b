"""``MarkdownParser``: sections by heading, with the heading path and front matter.

Recognised, line by line and in one pass: ATX headings (``#`` to ``######``,
also as a bullet's content: ``- ### Title``),
setext headings (a one-line paragraph underlined with ``===`` or ``---``), fenced
code blocks (``` or ~~~, whose content is never a heading) and YAML front matter
(``---`` on line 1 up to ``---`` or ``...``). Front matter is not text: its
top-level ``key: value`` pairs become every section's metadata, and anything
richer (lists, nesting) is ignored; no YAML library is needed. Deliberate
simplifications: a setext title must be a single line after a blank line (or a
heading, or the start), and list items or quotes are never setext titles.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from itertools import chain
from types import MappingProxyType
from typing import Any

from headrace.parsers.base import ParserOutput
from headrace.parsers.sections import (
    DEFAULT_MAX_SECTION_CHARS,
    HeadingTrail,
    SectionBuilder,
    is_blank,
)
from headrace.records import Line, ParseIssue, Section

# A bullet may precede an ATX heading: CommonMark renders "- ### Title" as a heading
# inside a list item, and outliner exports (Logseq) write every heading that way.
_ATX = re.compile(r" {0,3}(?:[-*+][ \t]+)?(#{1,6})(?:[ \t]+(.*))?$")
_ATX_CLOSING = re.compile(r"(?:^|[ \t]+)#+$")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})(.*)$")
_SETEXT = re.compile(r" {0,3}(=+|-+)[ \t]*$")
_NOT_A_TITLE = re.compile(r" {4}|\s*(?:[-*+>]|\d{1,9}[.)])(?:\s|$)")
_PAIR = re.compile(r"([A-Za-z_][\w.-]*)[ \t]*:[ \t]+(.*?)\s*$")
# Front matter that has not closed after this many lines was not front matter.
_FRONT_MATTER_MAX_LINES = 200

Item = Line | ParseIssue


class MarkdownParser:
    """Markdown (``.md``, ``.markdown``): one section per heading, bounded in size.

    A heading starts a section whose text begins with the heading line itself and
    whose ``heading`` is the path of open headings (``"Install > Rotate keys"``:
    a level-2 heading under a level-1 one). Text before the first heading has no
    heading. Front matter pairs are the ``metadata`` of every section.
    """

    name = "markdown"
    version = "1"

    def __init__(self, *, max_section_chars: int = DEFAULT_MAX_SECTION_CHARS) -> None:
        self.max_section_chars = max_section_chars

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield the sections of ``lines``; reader issues pass through."""
        items = iter(lines)
        metadata, replay = _front_matter(items)
        run = _MarkdownRun(SectionBuilder(self.max_section_chars, metadata=metadata))
        for item in chain(replay, items):
            if isinstance(item, ParseIssue):
                yield item
            else:
                yield from run.feed(item)
        yield from run.close()


class _MarkdownRun:
    """The per-file state: open fence, heading trail and a held setext candidate."""

    def __init__(self, builder: SectionBuilder) -> None:
        self.builder = builder
        self.trail = HeadingTrail()
        self.fence: str | None = None
        self.held: Line | None = None
        self.after_break = True  # the previous line ended a block (blank, heading, start)

    def feed(self, line: Line) -> Iterator[Section]:
        if self.fence is not None:
            if _closes(self.fence, line.text):
                self.fence, self.after_break = None, True
            yield from self.builder.add(line)
        elif self.held is not None and (under := _SETEXT.match(line.text)):
            level = 1 if under.group(1)[0] == "=" else 2
            yield from self._heading(level, self.held.text.strip(), self.held, line)
        else:
            yield from self._release()
            yield from self._block_line(line)

    def close(self) -> Iterator[Section]:
        yield from self._release()
        yield from self.builder.flush()

    def _block_line(self, line: Line) -> Iterator[Section]:
        text = line.text
        if fence := _FENCE.match(text):
            if not (fence.group(1)[0] == "`" and "`" in fence.group(2)):
                self.fence = fence.group(1)
        elif atx := _ATX.match(text):
            title = _ATX_CLOSING.sub("", (atx.group(2) or "").strip())
            yield from self._heading(len(atx.group(1)), title, line)
            return
        elif self.after_break and _may_be_title(text):
            self.held, self.after_break = line, False
            return
        self.after_break = is_blank(text)
        yield from self.builder.add(line)

    def _heading(self, level: int, title: str, *lines: Line) -> Iterator[Section]:
        self.held, self.after_break = None, True
        yield from self.builder.restart(self.trail.enter(level, title))
        for line in lines:
            yield from self.builder.add(line)

    def _release(self) -> Iterable[Section]:
        held, self.held = self.held, None
        return () if held is None else self.builder.add(held)


def _closes(fence: str, text: str) -> bool:
    match = _FENCE.match(text)
    return bool(
        match
        and match.group(1)[0] == fence[0]
        and len(match.group(1)) >= len(fence)
        and is_blank(match.group(2))
    )


def _may_be_title(text: str) -> bool:
    return not is_blank(text) and not _SETEXT.match(text) and not _NOT_A_TITLE.match(text)


def _front_matter(items: Iterator[Item]) -> tuple[MappingProxyType[str, Any], list[Item]]:
    """Consume a front matter block if the file opens with one.

    Returns its pairs and the items to process as the document: only reader issues
    when the block closed, else every item consumed (it was not front matter).
    """
    first = next(items, None)
    if first is None:
        return MappingProxyType({}), []
    if isinstance(first, ParseIssue) or first.text.rstrip() != "---":
        return MappingProxyType({}), [first]
    held: list[Item] = [first]
    for item in items:
        held.append(item)
        if isinstance(item, Line) and item.text.rstrip() in ("---", "..."):
            issues: list[Item] = [x for x in held if isinstance(x, ParseIssue)]
            return _pairs(x for x in held[1:-1] if isinstance(x, Line)), issues
        if len(held) > _FRONT_MATTER_MAX_LINES:
            break
    return MappingProxyType({}), held


def _pairs(lines: Iterable[Line]) -> MappingProxyType[str, Any]:
    pairs: dict[str, str] = {}
    for line in lines:
        if (match := _PAIR.match(line.text)) and match.group(2):
            pairs[match.group(1)] = _unquote(match.group(2))
    return MappingProxyType(pairs)


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value
