"""TextParser: paragraphs in bounded sections with exact line and byte ranges."""

from __future__ import annotations

from pathlib import Path

from headrace.parsers.text import TextParser
from headrace.readers.lines import LineReader
from headrace.records import ParseIssue, Seam, Section


def parse(path: Path, **kwargs: int) -> list[Section | ParseIssue]:
    items = TextParser(**kwargs).parse(LineReader(str(path)), str(path))
    return [x for x in items if not isinstance(x, Seam)]  # seams: tests/unit/parsers/test_seams.py


def test_small_file_is_one_section(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("\n\nFirst paragraph.\nStill first.\n\nSecond.\n\n\n", encoding="utf-8")
    (section,) = parse(path)
    assert isinstance(section, Section)
    assert section.text == "First paragraph.\nStill first.\n\nSecond."
    assert (section.line_start, section.line_end) == (3, 6)
    assert (section.byte_start, section.byte_end) == (2, path.stat().st_size - 2)
    assert (section.heading, dict(section.metadata)) == (None, {})


def test_long_text_splits_at_paragraphs_and_ranges_hold_the_text(tmp_path: Path) -> None:
    paragraphs = [
        f"Paragraph {i}. " + "Sentence with w\u00f6rds. " * (i % 7 + 1) for i in range(60)
    ]
    path = tmp_path / "long.txt"
    path.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    sections = [s for s in parse(path, max_section_chars=400) if isinstance(s, Section)]
    assert len(sections) > 10
    assert all(len(s.text) <= 400 for s in sections)
    data = path.read_bytes()
    for section in sections:
        assert data[section.byte_start : section.byte_end].decode().rstrip("\n") == section.text
        assert section.text.startswith("Paragraph ")  # cut at paragraph breaks
    lines = [s.line_start for s in sections]
    assert lines == sorted(lines)


def test_reader_issues_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "a.log"
    path.write_text("ok\n" + "z" * 80 + "\nfine\n", encoding="utf-8")
    stream = TextParser().parse(LineReader(str(path), max_line_bytes=40), str(path))
    items = [x for x in stream if not isinstance(x, Seam)]
    assert isinstance(items[0], ParseIssue)
    assert (items[0].line, items[0].offset) == (2, 3)
    assert isinstance(items[1], Section)
    assert items[1].text == "ok\nfine"


def test_blank_file_yields_nothing(tmp_path: Path) -> None:
    path = tmp_path / "blank.txt"
    path.write_text(" \n\t\n\n", encoding="utf-8")
    assert parse(path) == []
