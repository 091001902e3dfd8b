"""Parsers: one module per format, chosen by name or by file extension.

The registry is explicit: ``PARSERS`` maps each built-in parser's ``name`` to its
class and ``EXTENSIONS`` maps a lower-case extension to a parser name.
``PATTERNS`` maps a file-name glob to a parser name and is checked first: it
routes scraped-page items (``item_*.json`` …) to the ``scraped`` parser while every
other ``.json`` keeps the JSON parser; ``register_pattern`` adds one.
``parser_for`` answers only for known names; what to do with any other file
(treat it as text if it is not binary, or skip it) is the caller's decision.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Protocol

from headrace.parsers.base import Parser, ParserOutput
from headrace.parsers.claude_code import ClaudeCodeParser
from headrace.parsers.json import JsonParser
from headrace.parsers.jsonl import JsonlParser
from headrace.parsers.markdown import MarkdownParser
from headrace.parsers.rst import RstParser
from headrace.parsers.scraped import SCRAPED_PATTERNS, ScrapedPageParser
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
    ScrapedPageParser.name: ScrapedPageParser,
    # Not routed by extension (a .jsonl is not necessarily a transcript): chosen by
    # the ``parser`` setting, e.g. through the ``claude-code`` preset.
    ClaudeCodeParser.name: ClaudeCodeParser,
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


# File-name globs (on the base name, case-sensitive) checked before extensions.
PATTERNS: dict[str, str] = dict.fromkeys(SCRAPED_PATTERNS, ScrapedPageParser.name)


def register_pattern(glob: str, parser: str) -> None:
    """Route base names matching ``glob`` to ``parser`` (a ``PARSERS`` name)."""
    if parser not in PARSERS:
        raise KeyError(f"unknown parser {parser!r}")
    PATTERNS[glob] = parser


def parser_name_for(path: str) -> str | None:
    """The parser for ``path``: a matching ``PATTERNS`` glob, else its extension."""
    base = os.path.basename(path)
    for glob, name in PATTERNS.items():
        if fnmatch.fnmatchcase(base, glob):
            return name
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
    "PATTERNS",
    "ClaudeCodeParser",
    "JsonParser",
    "JsonlParser",
    "MarkdownParser",
    "Parser",
    "ParserFactory",
    "ParserOutput",
    "RstParser",
    "ScrapedPageParser",
    "TextParser",
    "parser_for",
    "parser_name_for",
    "register_pattern",
]
