"""Parsers: one module per format, chosen by name or by file extension.

The registry is explicit: ``PARSERS`` maps each built-in parser's ``name`` to its
class and ``EXTENSIONS`` maps a lower-case extension to a parser name.
``parser_for`` answers only for known extensions; what to do with any other file
(treat it as text if it is not binary, or skip it) is the caller's decision.
"""

from __future__ import annotations

import os
from typing import Protocol

from headrace.parsers.base import Parser, ParserOutput
from headrace.parsers.json import JsonParser
from headrace.parsers.jsonl import JsonlParser
from headrace.parsers.markdown import MarkdownParser
from headrace.parsers.rst import RstParser
from headrace.parsers.text import TextParser


class ParserFactory(Protocol):
    """How a built-in parser is made: every one takes the section bound by keyword."""

    def __call__(self, *, max_section_chars: int = ...) -> Parser: ...


PARSERS: dict[str, ParserFactory] = {
    TextParser.name: TextParser,
    MarkdownParser.name: MarkdownParser,
    RstParser.name: RstParser,
    JsonParser.name: JsonParser,
    JsonlParser.name: JsonlParser,
}

EXTENSIONS: dict[str, str] = {
    ".txt": "text",
    ".text": "text",
    ".log": "text",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}


def parser_name_for(path: str) -> str | None:
    """The name of the parser for ``path``'s extension (case-insensitive), or ``None``."""
    return EXTENSIONS.get(os.path.splitext(path)[1].lower())


def parser_for(path: str, *, max_section_chars: int | None = None) -> Parser | None:
    """A new parser for ``path`` chosen by its extension, or ``None`` if unknown.

    ``max_section_chars`` overrides every parser's default section bound.
    """
    name = parser_name_for(path)
    if name is None:
        return None
    if max_section_chars is None:
        return PARSERS[name]()
    return PARSERS[name](max_section_chars=max_section_chars)


__all__ = [
    "EXTENSIONS",
    "PARSERS",
    "JsonParser",
    "JsonlParser",
    "MarkdownParser",
    "Parser",
    "ParserFactory",
    "ParserOutput",
    "RstParser",
    "TextParser",
    "parser_for",
    "parser_name_for",
]
