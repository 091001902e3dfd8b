"""The parser registry: explicit names, extensions, and the Parser protocol."""

from __future__ import annotations

import pytest

from headrace.parsers import (
    EXTENSIONS,
    PARSERS,
    PATTERNS,
    ClaudeCodeParser,
    JsonlParser,
    JsonParser,
    MarkdownParser,
    RstParser,
    ScrapedPageParser,
    TextParser,
    parser_for,
    parser_name_for,
)
from headrace.parsers.base import Parser


def test_registry_names_match_the_parsers() -> None:
    expected = {
        "text": TextParser,
        "markdown": MarkdownParser,
        "rst": RstParser,
        "json": JsonParser,
        "jsonl": JsonlParser,
        "scraped": ScrapedPageParser,
        "claude-code": ClaudeCodeParser,
    }
    assert expected == PARSERS
    for name, factory in PARSERS.items():
        parser: Parser = factory()
        # A "+suffix" is a digest of the parser's settings (claude-code's concepts).
        assert (parser.name, parser.version.split("+")[0]) == (name, "1")
    # claude-code is chosen by the ``parser`` setting (a preset), never by extension.
    routed = set(EXTENSIONS.values()) | set(PATTERNS.values())
    assert routed | {"claude-code"} == set(PARSERS)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/a/notes.txt", TextParser),
        ("/a/notes.TEXT", TextParser),
        ("app.log", TextParser),
        ("README.md", MarkdownParser),
        ("x.Markdown", MarkdownParser),
        ("doc.rst", RstParser),
        ("data.json", JsonParser),
        ("events.jsonl", JsonlParser),
        ("events.ndjson", JsonlParser),
        ("/raw/item_3f2a.json", ScrapedPageParser),
        ("page.scraped.json", ScrapedPageParser),
        ("/raw/my_item_3f2a.json", JsonParser),
        ("/item_dir/data.json", JsonParser),
    ],
)
def test_parser_for_known_extensions(path: str, expected: type) -> None:
    assert isinstance(parser_for(path), expected)


@pytest.mark.parametrize("path", ["Makefile", "archive.tar.gz", "page.html", ".md", "dir.md/x"])
def test_unknown_extensions_get_no_parser(path: str) -> None:
    assert parser_for(path) is None
    assert parser_name_for(path) is None


def test_section_bound_is_passed_on() -> None:
    parser = parser_for("a.md", max_section_chars=123)
    assert isinstance(parser, MarkdownParser)
    assert parser.max_section_chars == 123
