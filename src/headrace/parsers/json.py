"""``JsonParser``: one JSON document, streamed with ijson, as sections per object.

Input is the reader's lines, not the file: the parser pushes each line (re-encoded,
with its newline) into ijson's push parser. It so keeps the Parser contract (no I/O
of its own), shares the reader's decoding and memory policy, and knows which line
every event came from: line numbers and byte ranges are exact to the line. The
price: a minified document on one line longer than the reader's ``max_line_bytes``
arrives as a skipped line, and a document with a hole cannot be parsed, so the
parser passes the reader's issue through and raises ``ParseError``.

Sections: the scalar members of an object become one section of ``key: value``
lines (strings, numbers and booleans; null is dropped) with
``metadata={"json_path": "$.items[3]"}``. Scalars inside an array belong to the
nearest enclosing object, under the array's key; top-level scalars, and arrays with
no object above them, form sections of their own. A nested object's section is
emitted when it closes, so it precedes its parent's. Long values are split by
``max_section_chars``. Memory: one pending section per open container.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

import ijson  # type: ignore[import-untyped]  # ijson ships no type information

from headrace.errors import ParseError
from headrace.parsers.base import ParserOutput
from headrace.parsers.sections import DEFAULT_MAX_SECTION_CHARS, SectionBuilder, render_scalar
from headrace.records import Line, ParseIssue, Section

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


class JsonParser:
    """JSON (``.json``): sections per object, with their JSON paths as metadata.

    Malformed JSON: the sections completed so far are yielded, then ``ParseError``
    is raised with the line the parser choked on and that line's byte offset (for a
    premature end: the last line and the end of the file). A blank file yields
    nothing.
    """

    name = "json"
    version = "1"

    def __init__(self, *, max_section_chars: int = DEFAULT_MAX_SECTION_CHARS) -> None:
        self.max_section_chars = max_section_chars

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield the document's sections; raise ``ParseError`` if it is not JSON."""
        feed = _Feed(path, _Walker(self.max_section_chars))
        for item in lines:
            if isinstance(item, ParseIssue):
                yield item
                raise _hole(item, path)
            done, error = feed.push(item)
            # Events parsed before an error are valid and may have completed sections.
            yield from done
            if error is not None:
                raise error
        yield from feed.finish()


class _Feed:
    """ijson's push parser, fed one line at a time, and what it has seen."""

    def __init__(self, path: str, walker: _Walker) -> None:
        self.path = path
        self.walker = walker
        self.events = ijson.sendable_list()
        self.coroutine = ijson.basic_parse_coro(self.events)
        self.last = Line(1, 0, 0, "")
        self.blank = True

    def push(self, line: Line) -> tuple[list[Section], ParseError | None]:
        """Feed one line: the sections it completed, and the error it caused if any."""
        self.last, self.blank = line, self.blank and not line.text.strip()
        error = _push(self.coroutine.send, line.text.encode() + b"\n")
        done = self.walker.apply(self.events, line)
        del self.events[:]
        if error is None:
            return done, None
        return done, _invalid(error, self.path, line.number, line.offset)

    def finish(self) -> Iterator[Section]:
        error = _push(self.coroutine.close)
        last = self.last
        yield from self.walker.apply(self.events, last)
        if error is not None and not self.blank:
            raise _invalid(error, self.path, last.number, last.offset + last.length)
        yield from self.walker.root.flush()


def _push(step: Any, *args: bytes) -> Exception | None:
    try:
        step(*args)
    except ijson.JSONError as exc:
        return exc  # type: ignore[no-any-return]  # ijson is untyped
    return None


def _invalid(error: Exception, path: str, line: int, offset: int) -> ParseError:
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    invalid = ParseError(f"invalid JSON: {reason}", path=path, line=line, offset=offset)
    invalid.__cause__ = error
    return invalid


def _hole(issue: ParseIssue, path: str) -> ParseError:
    message = f"a JSON document cannot skip a line ({issue.error_type}: {issue.message})"
    return ParseError(message, path=path, line=issue.line, offset=issue.offset)


class _Frame:
    """An open container: its JSON path and the builder its scalars go to."""

    __slots__ = ("builder", "index", "is_object", "key", "label", "path")

    def __init__(self, path: str, is_object: bool, label: str | None, builder: SectionBuilder):
        self.path = path
        self.is_object = is_object
        self.key: str | None = None  # the current member's key, in an object
        self.index = -1  # the current element's index, in an array
        self.label = label  # the key an array's scalars are filed under
        self.builder = builder  # an array inside an object writes into the object's

    def child_path(self) -> str:
        if self.is_object:
            key = self.key or ""
            return (
                f"{self.path}.{key}"
                if _IDENTIFIER.match(key)
                else f"{self.path}[{json.dumps(key)}]"
            )
        self.index += 1
        return f"{self.path}[{self.index}]"


class _Walker:
    """Turns ijson's basic events into sections, one builder per object."""

    def __init__(self, max_chars: int) -> None:
        self.max_chars = max_chars
        self.root = self._builder("$")
        self.stack: list[_Frame] = []

    def apply(self, events: list[tuple[str, Any]], line: Line) -> list[Section]:
        """Apply one line's events; return the sections they completed."""
        done: list[Section] = []
        for event, value in events:
            if event == "map_key":
                self.stack[-1].key = value
            elif event in ("start_map", "start_array"):
                self._open(event == "start_map")
            elif event in ("end_map", "end_array"):
                done.extend(self._close())
            else:
                done.extend(self._scalar(value, line))
        return done

    def _open(self, is_object: bool) -> None:
        parent = self.stack[-1] if self.stack else None
        path = parent.child_path() if parent else "$"
        if is_object or parent is None:
            frame = _Frame(path, is_object, None, self._builder(path))
        else:
            label = parent.key if parent.is_object else parent.label
            frame = _Frame(path, is_object, label, parent.builder)
        self.stack.append(frame)

    def _close(self) -> Iterable[Section]:
        frame = self.stack.pop()
        # Only objects and top-level arrays own their builder; other arrays borrow.
        return frame.builder.flush() if frame.is_object or not self.stack else ()

    def _scalar(self, value: Any, line: Line) -> Iterable[Section]:
        frame = self.stack[-1] if self.stack else None
        label = None
        if frame is not None:
            label = frame.key if frame.is_object else frame.label
            if not frame.is_object:
                frame.index += 1
        text = render_scalar(value)
        if text is None:
            return ()
        builder = frame.builder if frame else self.root
        rendered = text if label is None else f"{label}: {text}"
        return builder.add(Line(line.number, line.offset, line.length, rendered))

    def _builder(self, path: str) -> SectionBuilder:
        meta = {"json_path": path}
        return SectionBuilder(self.max_chars, metadata=meta, exact_bytes=False)
