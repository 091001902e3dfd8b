"""``ScrapedPageParser``: a scraped web page per JSON file (url, title, text and/or html).

A scraper (seed 001's ``item_{hash}.json``) writes one object per page::

    {"url": "https://…", "title": "…", "text": "…", "html": "<html>…"}

The page's text becomes sections under the title as heading, with
``metadata={"url": …, "title": …}``. ``text`` wins when present (the producer
already extracted it); otherwise ``html`` is turned into clean text by
**trafilatura** (boilerplate, navigation and scripts removed; it also finds the
title when the item has none). A top-level array whose elements are all items is
read item by item.

Which files: the registry routes only names matching ``SCRAPED_PATTERNS``
(``item_*.json``, ``*.item.json``, ``*.scraped.json``, extendable with
``parsers.register_pattern``) here, so an ordinary ``.json`` keeps the JSON
parser. A matching file whose content is *not* an item (no ``url``, or neither
text nor html) is handed to ``JsonParser`` unchanged, so the rule can never lose
content. Memory: the document is buffered (a scraped page is one object; the
reader's ``max_line_bytes`` still bounds each line) and ``MAX_ITEM_BYTES`` bounds
the whole, beyond which the file is parsed as ordinary JSON, streamed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import replace
from typing import Any

from headrace.parsers.base import ParserOutput
from headrace.parsers.json import JsonParser
from headrace.parsers.sections import DEFAULT_MAX_SECTION_CHARS, SectionBuilder
from headrace.records import Line, ParseIssue, Section

SCRAPED_PATTERNS = ("item_*.json", "*.item.json", "*.scraped.json")
MAX_ITEM_BYTES = 64 << 20
TEXT_KEYS = ("text", "maintext", "articleBody", "content")
HTML_KEYS = ("html", "raw_html", "body_html")


class ScrapedPageParser:
    """Scraped page items (see the module docstring); falls back to ``JsonParser``."""

    name = "scraped"
    version = "1"

    def __init__(self, *, max_section_chars: int = DEFAULT_MAX_SECTION_CHARS) -> None:
        self.max_section_chars = max_section_chars

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield the page's sections, or the JSON parser's for a non-item document."""
        buffered: list[Line | ParseIssue] = []
        size = 0
        stream = iter(lines)
        for item in stream:
            buffered.append(item)
            if isinstance(item, ParseIssue):
                break  # a hole: the JSON parser reports it with its position
            size += item.length
            if size > MAX_ITEM_BYTES:
                break
        else:
            items = _items(buffered)
            if items is not None:
                yield from self._sections(items, buffered)
                return
        yield from JsonParser(max_section_chars=self.max_section_chars).parse(
            _chain(buffered, stream), path
        )

    def _sections(
        self, items: list[Mapping[str, Any]], lines: list[Line | ParseIssue]
    ) -> Iterator[Section]:
        whole = [x for x in lines if isinstance(x, Line)]
        first, last = whole[0], whole[-1]
        end = last.offset + last.length
        for item in items:
            page = extract_page(item)
            meta = {"url": page.url, "title": page.title}
            builder = SectionBuilder(
                self.max_section_chars, heading=page.title or None, metadata=meta, exact_bytes=False
            )
            # Extracted text has no place in the JSON file's lines: every section
            # points at the whole document.
            for paragraph in page.text.splitlines():
                line = Line(first.number, first.offset, end - first.offset, paragraph)
                yield from _spanning(builder.add(line), last.number)
            yield from _spanning(builder.flush(), last.number)


class Page:
    """A page's clean text and its metadata."""

    __slots__ = ("text", "title", "url")

    def __init__(self, url: str, title: str, text: str) -> None:
        self.url, self.title, self.text = url, title, text


def extract_page(item: Mapping[str, Any]) -> Page:
    """Clean text of an item: its ``text`` if any, else trafilatura over its ``html``."""
    url = str(item["url"])
    title = _string(item.get("title"))
    text = next((v for k in TEXT_KEYS if (v := _string(item.get(k)))), "")
    if not text:
        html = next((v for k in HTML_KEYS if (v := _string(item.get(k)))), "")
        found_title, text = html_to_text(html, url)
        title = title or found_title
    return Page(url, title, text)


def html_to_text(html: str, url: str | None = None) -> tuple[str, str]:
    """(title, clean text) of an HTML page; boilerplate removed by trafilatura."""
    import trafilatura

    doc = trafilatura.bare_extraction(
        html, url=url, with_metadata=True, include_comments=False, include_tables=True
    )
    if doc is None or isinstance(doc, dict):
        return "", ""
    return doc.title or "", doc.text or ""


def _items(lines: list[Line | ParseIssue]) -> list[Mapping[str, Any]] | None:
    text = "\n".join(x.text for x in lines if isinstance(x, Line))
    if not text.strip():
        return None
    try:
        data = json.loads(text)
    except ValueError:
        return None  # the JSON parser reports it with line and offset
    candidates = data if isinstance(data, list) and data else [data]
    if all(_is_item(c) for c in candidates):
        return candidates
    return None


def _is_item(value: Any) -> bool:
    if not isinstance(value, dict) or not _string(value.get("url")):
        return False
    return any(_string(value.get(k)) for k in (*TEXT_KEYS, *HTML_KEYS))


def _string(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def _spanning(sections: Iterable[Section], line_end: int) -> Iterator[Section]:
    for section in sections:
        yield replace(section, line_end=line_end)


def _chain(
    head: list[Line | ParseIssue], tail: Iterator[Line | ParseIssue]
) -> Iterator[Line | ParseIssue]:
    yield from head
    yield from tail


__all__ = ["SCRAPED_PATTERNS", "Page", "ScrapedPageParser", "extract_page", "html_to_text"]
