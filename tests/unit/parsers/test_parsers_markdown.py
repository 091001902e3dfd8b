"""MarkdownParser: heading paths, fences, setext, front matter, bounds, byte ranges."""

from __future__ import annotations

from pathlib import Path

from headrace.parsers.markdown import MarkdownParser
from headrace.readers.lines import LineReader
from headrace.records import ParseIssue, Section

FIXTURES = Path(__file__).parents[2] / "fixtures" / "parsers"


def parse_file(path: Path, **kwargs: int) -> list[Section | ParseIssue]:
    return list(MarkdownParser(**kwargs).parse(LineReader(str(path)), str(path)))


def parse_text(tmp_path: Path, text: str, **kwargs: int) -> list[Section]:
    path = tmp_path / "doc.md"
    path.write_text(text, encoding="utf-8")
    items = parse_file(path, **kwargs)
    assert all(isinstance(x, Section) for x in items)
    return [x for x in items if isinstance(x, Section)]


def sections_of(items: list[Section | ParseIssue]) -> list[Section]:
    return [x for x in items if isinstance(x, Section)]


def assert_ranges_hold_text(path: Path, sections: list[Section]) -> None:
    data = path.read_bytes()
    for section in sections:
        assert section.text in data[section.byte_start : section.byte_end].decode()


def test_guide_headings_fences_setext_and_front_matter() -> None:
    path = FIXTURES / "guide.md"
    sections = sections_of(parse_file(path))
    assert [(s.heading, s.line_start, s.line_end) for s in sections] == [
        (None, 7, 7),
        ("Install", 9, 16),
        ("Install > Rotate keys", 18, 24),
        ("Install > Configuration", 26, 29),
        ("Usage", 31, 33),
        ("Usage > Deep dive", 35, 37),
    ]
    assert sections[1].text.startswith("# Install\n")
    assert "# a shell comment, not a heading" in sections[1].text
    assert "## not a heading either" in sections[2].text
    assert sections[3].text.startswith("Configuration\n-------------")
    assert all(s.metadata == {"title": "Rotating keys", "owner": "ops team"} for s in sections)
    assert all("title: Rotating keys" not in s.text for s in sections)
    assert_ranges_hold_text(path, sections)


def test_logseq_bullet_headings_and_json_ld_fences() -> None:
    path = FIXTURES / "logseq_1hive.md"
    sections = sections_of(parse_file(path))
    assert [s.heading for s in sections] == [
        None,
        "1Hive",
        "1Hive > Definition",
        "1Hive > Semantic Classification",
        "1Hive > Relationships",
        "1Hive > Content",
        "1Hive > Provenance",
    ]
    assert '"@type": "vc:LinkResolutionsAnnotation"' in sections[1].text
    assert_ranges_hold_text(path, sections)


def test_long_runs_split_into_bounded_sections_with_the_same_heading() -> None:
    path = FIXTURES / "logseq_1hive.md"
    sections = sections_of(parse_file(path, max_section_chars=500))
    assert all(len(s.text) <= 500 for s in sections)
    under_title = [s for s in sections if s.heading == "1Hive"]
    assert len(under_title) > 3
    assert under_title[0].text.startswith("# 1Hive\n")
    ends = [s.line_end for s in sections]
    assert ends == sorted(ends)
    assert_ranges_hold_text(path, sections)


def test_atx_edge_cases(tmp_path: Path) -> None:
    text = "#hashtag\n####### seven\n# Title ##\ntext\n## \nempty title\n"
    sections = parse_text(tmp_path, text)
    assert [(s.heading, s.text) for s in sections] == [
        (None, "#hashtag\n####### seven"),
        ("Title", "# Title ##\ntext"),
        ("Title", "## \nempty title"),
    ]


def test_setext_needs_a_one_line_paragraph(tmp_path: Path) -> None:
    text = "Top\n===\n\nline one\nline two\n---\n\n- item\n---\n\nSub\n---\nbody\n"
    sections = parse_text(tmp_path, text)
    assert [(s.heading, s.line_start, s.line_end) for s in sections] == [
        ("Top", 1, 9),
        ("Top > Sub", 11, 13),
    ]
    after_fence = parse_text(tmp_path, "```\ncode\n```\nTitle\n=====\n")
    assert [s.heading for s in after_fence] == [None, "Title"]


def test_fences_close_only_on_the_same_marker_at_least_as_long(tmp_path: Path) -> None:
    text = "````\n```\n# inside\n~~~~\n````\n# After\n``` not `a` fence\n# Real\n"
    sections = parse_text(tmp_path, text)
    assert [s.heading for s in sections] == [None, "After", "Real"]
    assert "# inside" in sections[0].text


def test_unclosed_front_matter_is_text(tmp_path: Path) -> None:
    text = "---\ntitle: x\n\n# Heading\nbody\n"
    sections = parse_text(tmp_path, text)
    assert [(s.heading, s.text) for s in sections] == [
        (None, "---\ntitle: x"),
        ("Heading", "# Heading\nbody"),
    ]
    assert all(s.metadata == {} for s in sections)


def test_front_matter_may_close_with_dots_and_quotes_are_stripped(tmp_path: Path) -> None:
    text = "---\na: 'one'\nb: \"two: 2\"\n  nested: no\nc:\n...\nBody\n"
    (section,) = parse_text(tmp_path, text)
    assert section.metadata == {"a": "one", "b": "two: 2"}
    assert (section.text, section.line_start) == ("Body", 7)


def test_front_matter_only_on_line_one(tmp_path: Path) -> None:
    sections = parse_text(tmp_path, "\n---\na: b\n---\ntext\n")
    assert sections[0].metadata == {}


def test_reader_issues_pass_through_in_order(tmp_path: Path) -> None:
    path = tmp_path / "doc.md"
    path.write_text("# A\nshort\n" + "x" * 100 + "\nafter\n")
    reader = LineReader(str(path), max_line_bytes=50)
    items = list(MarkdownParser().parse(reader, str(path)))
    issue = items[0]
    assert isinstance(issue, ParseIssue)
    assert (issue.line, issue.offset, issue.error_type) == (3, 10, "LineTooLongError")
    (section,) = sections_of(items)
    assert (section.heading, section.text) == ("A", "# A\nshort\nafter")


def test_empty_and_blank_files_yield_nothing(tmp_path: Path) -> None:
    assert parse_text(tmp_path, "") == []
    assert parse_text(tmp_path, "\n  \n\n") == []
