"""RstParser: adornment styles, overlines, transitions, heading paths."""

from __future__ import annotations

from pathlib import Path

from headrace.parsers.rst import RstParser
from headrace.readers.lines import LineReader
from headrace.records import Section

FIXTURES = Path(__file__).parents[2] / "fixtures" / "parsers"


def parse(path: Path, **kwargs: int) -> list[Section]:
    items = list(RstParser(**kwargs).parse(LineReader(str(path)), str(path)))
    assert all(isinstance(x, Section) for x in items)
    return [x for x in items if isinstance(x, Section)]


def parse_text(tmp_path: Path, text: str) -> list[Section]:
    path = tmp_path / "doc.rst"
    path.write_text(text, encoding="utf-8")
    return parse(path)


def test_guide_titles_levels_and_transitions() -> None:
    path = FIXTURES / "guide.rst"
    sections = parse(path)
    assert [(s.heading, s.line_start, s.line_end) for s in sections] == [
        ("Headrace", 1, 5),
        ("Headrace > Install", 7, 10),
        ("Headrace > Install > Keys", 12, 19),
        ("Headrace > Usage", 21, 29),
    ]
    assert sections[0].text.startswith("==========\n Headrace\n==========\n")
    assert "----------\n\nText after a transition." in sections[2].text
    assert "Too short\n==" in sections[3].text
    data = path.read_bytes()
    for section in sections:
        assert section.text in data[section.byte_start : section.byte_end].decode()


def test_level_follows_first_appearance_not_the_character(tmp_path: Path) -> None:
    text = "A\n~\n\nB\n*\n\nC\n~\n\nD\n*\n\nE\n#\n"
    sections = parse_text(tmp_path, text)
    assert [s.heading for s in sections] == ["A", "A > B", "C", "C > D", "C > D > E"]


def test_overlined_and_plain_styles_differ(tmp_path: Path) -> None:
    text = "=====\nTitle\n=====\n\nPart\n=====\n\nNext\n=====\n"
    sections = parse_text(tmp_path, text)
    assert [s.heading for s in sections] == ["Title", "Title > Part", "Title > Next"]


def test_mismatched_overline_and_indented_lines_are_text(tmp_path: Path) -> None:
    text = "Intro\n\n=====\nTitle\n-----\n\n  Quote\n  -----\n\n::\n\n    Code\n    ====\n"
    sections = parse_text(tmp_path, text)
    assert [s.heading for s in sections] == [None]
    assert sections[0].line_end == 13


def test_title_must_follow_a_blank_line(tmp_path: Path) -> None:
    sections = parse_text(tmp_path, "para one\npara two\n--------\n")
    assert [s.heading for s in sections] == [None]


def test_bounded_sections_keep_the_title(tmp_path: Path) -> None:
    body = "\n\n".join(f"Paragraph {i} " + "word " * 20 for i in range(20))
    path = tmp_path / "long.rst"
    path.write_text("Title\n=====\n\n" + body + "\n", encoding="utf-8")
    sections = parse(path, max_section_chars=300)
    assert len(sections) > 5
    assert all(s.heading == "Title" and len(s.text) <= 300 for s in sections)
