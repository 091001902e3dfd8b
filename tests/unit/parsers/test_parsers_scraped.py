"""The scraped-page parser: clean text from HTML, url/title metadata, narrow routing."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.errors import ParseError
from headrace.parsers import JsonParser, ScrapedPageParser, parser_for
from headrace.readers.lines import LineReader
from headrace.records import Section

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "scraped"


def _sections(name: str) -> list[Section]:
    path = str(FIXTURES / name)
    parser = parser_for(path)
    assert isinstance(parser, ScrapedPageParser)
    return [s for s in parser.parse(LineReader(path), path) if isinstance(s, Section)]


def test_html_becomes_clean_article_text_with_url_and_title() -> None:
    sections = _sections("item_reservoir.json")
    text = "\n".join(s.text for s in sections)
    assert "headrace canal that feeds the old mill" in text
    assert "seeding would be delayed" in text
    for boilerplate in ("do-not-index-me", "Accept all cookies", "All rights reserved", "Log in"):
        assert boilerplate not in text
    meta = sections[0].metadata
    assert meta["url"] == "https://gazette.example/news/reservoir"
    assert "Reservoir levels rise" in meta["title"]
    assert sections[0].heading == meta["title"]
    assert sections[0].line_start == 1
    assert sections[-1].line_end > 1


def test_given_text_wins_over_html() -> None:
    sections = _sections("item_text.json")
    text = "\n".join(s.text for s in sections)
    assert "mill wheel" in text
    assert "tailrace" in text
    assert "ignored" not in text
    assert sections[0].metadata == {"url": "https://blog.example/p/1", "title": "Mill notes"}


def test_a_non_item_with_an_item_name_is_parsed_as_ordinary_json() -> None:
    path = str(FIXTURES / "item_config.json")
    got = list(ScrapedPageParser().parse(LineReader(path), path))
    expected = list(JsonParser().parse(LineReader(path), path))
    assert got == expected
    assert got


def test_truncated_item_fails_with_its_line() -> None:
    path = str(FIXTURES / "item_broken.json")
    with pytest.raises(ParseError) as info:
        list(ScrapedPageParser().parse(LineReader(path), path))
    assert info.value.line is not None
    assert info.value.line >= 2


def test_ordinary_json_names_keep_the_json_parser() -> None:
    assert isinstance(parser_for("/data/items.json"), JsonParser)
    assert isinstance(parser_for("/data/item_1.json"), ScrapedPageParser)
