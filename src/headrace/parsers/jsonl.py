"""``JsonlParser``: JSON Lines, one record per line, each its own section.

An object's string leaves are rendered as ``key: value`` lines: nested keys are
dotted (``message.content.text``), list elements are filed under the list's key
and the sibling strings of one list are joined with ``", "``. Numbers, booleans
and null are left to the metadata. A top-level string is its own text. A
malformed line is reported as a ``ParseIssue`` with its line number and byte
offset, and the parser moves on.

Resuming: records are independent, so the start of every line is a ``Seam`` (and so
is the end of the last complete line). A last line without its newline that is not
valid JSON is taken to be still being written: it is *held back* (no section, no
issue) and the last seam lies before it, so the next sync reads it again.

Records are decoded with the standard ``json`` module: ``orjson`` decodes about
1.7 times as fast, but decoding is only some 40% of this parser's time, so it
would gain under a fifth and is not worth a dependency.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from headrace.parsers.base import ParserOutput
from headrace.parsers.sections import DEFAULT_MAX_SECTION_CHARS, is_blank, split_text
from headrace.records import Line, ParseIssue, Seam, Section

_CONTAINERS = (dict, list)
# Top-level scalars copied into metadata so that users can filter on them.
METADATA_MAX_KEYS = 10
METADATA_MAX_CHARS = 200


class JsonlParser:
    """JSON Lines (``.jsonl``, ``.ndjson``): one section per record, bounded in size.

    A record's section spans its line (``line_start == line_end``, the line's byte
    range). ``metadata`` is ``{"record": line_number}`` plus up to
    ``METADATA_MAX_KEYS`` top-level scalar fields (strings of at most
    ``METADATA_MAX_CHARS`` characters, numbers, booleans). A record whose text is
    longer than ``max_section_chars`` becomes consecutive sections with the same
    line, range and metadata. Blank lines and records without text yield nothing.
    """

    name = "jsonl"
    version = "1"

    def __init__(self, *, max_section_chars: int = DEFAULT_MAX_SECTION_CHARS) -> None:
        self.max_section_chars = max_section_chars

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield each record's sections, and an issue for each malformed line."""
        last: Line | None = None
        for item in lines:
            if isinstance(item, ParseIssue):
                yield item
                continue
            yield Seam(item.offset, item.number)
            last = item
            if not is_blank(item.text):
                yield from self._record(item)
        if last is not None and last.terminated:
            yield Seam(last.offset + last.length, last.number + 1)

    def _record(self, line: Line) -> Iterator[Section | ParseIssue]:
        try:
            value = json.loads(line.text)
            text = "\n".join(render_record(value))
        except ValueError as exc:
            if line.terminated:
                yield ParseIssue(f"invalid JSON: {exc}", line.number, line.offset, "ParseError")
            return
        except RecursionError:
            yield ParseIssue("invalid JSON: nested too deeply", line.number, line.offset)
            return
        meta = record_metadata(value, line.number)
        end = line.offset + line.length
        for piece in split_text(text, self.max_section_chars):
            if not is_blank(piece):
                yield Section(piece, line.number, line.number, line.offset, end, None, meta)


def render_record(value: Any, key: str = "") -> list[str]:
    """The string leaves of a decoded record (plain JSON types) as ``key: value`` lines."""
    out: list[str] = []
    _render(value, key, out)
    return out


def _render(value: Any, key: str, out: list[str]) -> None:
    # The hot path of the parser: exact type checks, string members handled inline.
    kind = type(value)
    if kind is str:
        out.append(f"{key}: {value}" if key else value)
    elif kind is dict:
        prefix = f"{key}." if key else ""
        for name, member in value.items():
            if type(member) is str:
                out.append(f"{prefix}{name}: {member}")
            elif type(member) in _CONTAINERS:
                _render(member, prefix + name, out)
    elif kind is list:
        strings = [x for x in value if type(x) is str]
        if strings:
            out.append(f"{key}: {', '.join(strings)}" if key else ", ".join(strings))
        for member in value:
            if type(member) in _CONTAINERS:
                _render(member, key, out)


def record_metadata(value: Any, number: int) -> Mapping[str, Any]:
    """``{"record": number}`` plus the record's small top-level scalar fields."""
    meta: dict[str, Any] = {}
    if type(value) is dict:
        for name, member in value.items():
            kind = type(member)
            if kind is str:
                keep = len(member) <= METADATA_MAX_CHARS
            else:
                keep = kind is int or kind is bool or (kind is float and math.isfinite(member))
            if keep:
                meta[name] = member
                if len(meta) == METADATA_MAX_KEYS:
                    break
    meta["record"] = number
    return meta
