"""JsonParser: sections per object with JSON paths, streamed; errors with positions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from headrace.errors import ParseError
from headrace.parsers.json import JsonParser
from headrace.readers.lines import LineReader
from headrace.records import ParseIssue, Section

FIXTURES = Path(__file__).parents[2] / "fixtures" / "parsers"


def parse(path: Path, **kwargs: int) -> list[Section | ParseIssue]:
    return list(JsonParser(**kwargs).parse(LineReader(str(path)), str(path)))


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "doc.json"
    path.write_text(text, encoding="utf-8")
    return path


def by_path(items: list[Section | ParseIssue]) -> dict[str, Section]:
    return {s.metadata["json_path"]: s for s in items if isinstance(s, Section)}


def test_catalog_objects_become_sections_with_paths_and_lines() -> None:
    sections = by_path(parse(FIXTURES / "catalog.json"))
    assert list(sections) == [
        "$.items[0]",
        "$.items[1].owner",
        "$.items[1]",
        '$["weird key"]',
        "$",
    ]
    first = sections["$.items[0]"]
    assert first.text == "id: 1\ntitle: Rotate keys\nbody: Keys rotate every 90 days."
    assert (first.line_start, first.line_end) == (5, 5)
    second = sections["$.items[1]"]
    assert second.text == "id: 2\ntitle: Back up\ntags: ops\ntags: backup"
    assert (second.line_start, second.line_end) == (7, 9)
    assert sections["$.items[1].owner"].text == "name: Ada\nteam: ops"
    assert sections['$["weird key"]'].text == "a.b: dotted"
    assert sections["$"].text == "name: catalog\nversion: 2"


def test_byte_ranges_are_the_lines_of_the_members() -> None:
    path = FIXTURES / "catalog.json"
    data = path.read_bytes()
    sections = by_path(parse(path))
    raw = data[sections["$.items[0]"].byte_start : sections["$.items[0]"].byte_end]
    assert raw.decode().strip().startswith('{"id": 1, "title": "Rotate keys"')
    for section in sections.values():
        chunk = data[section.byte_start : section.byte_end].decode()
        assert all(line.split(": ")[-1] in chunk for line in section.text.splitlines())


def test_minified_document_on_one_line(tmp_path: Path) -> None:
    doc = {"a": [{"t": "x"}, {"t": "y"}], "b": "z"}
    sections = by_path(parse(write(tmp_path, json.dumps(doc, separators=(",", ":")))))
    assert {k: s.text for k, s in sections.items()} == {
        "$.a[0]": "t: x",
        "$.a[1]": "t: y",
        "$": "b: z",
    }


def test_top_level_scalar_and_array(tmp_path: Path) -> None:
    assert [s.text for s in by_path(parse(write(tmp_path, '"just text"\n'))).values()] == [
        "just text"
    ]
    sections = by_path(parse(write(tmp_path, '["p1", ["p2"], {"k": "v"}, 3, null]')))
    assert {k: s.text for k, s in sections.items()} == {"$[2]": "k: v", "$": "p1\np2\n3"}


def test_long_string_is_split_by_the_bound(tmp_path: Path) -> None:
    text = " ".join(f"word{i}" for i in range(400))
    sections = [
        s for s in parse(write(tmp_path, json.dumps({"body": text})), max_section_chars=200)
    ]
    assert len(sections) > 10
    assert all(isinstance(s, Section) and len(s.text) <= 200 for s in sections)
    joined = "".join(s.text for s in sections if isinstance(s, Section))
    assert joined == "body: " + text


def test_malformed_json_yields_what_was_parsed_then_raises_with_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '{\n  "ok": {"a": "b"},\n  "bad": x,\n  "later": {"c": "d"}\n}\n')
    parser = JsonParser()
    stream = parser.parse(LineReader(str(path)), str(path))
    first = next(stream)
    assert isinstance(first, Section)
    assert first.metadata["json_path"] == "$.ok"
    with pytest.raises(ParseError, match="invalid JSON") as caught:
        next(stream)
    assert (caught.value.line, caught.value.offset) == (3, 22)
    assert caught.value.path == str(path)


def test_truncated_json_raises_at_the_end_of_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, '{"a": {"b": "c"},\n "d": [')
    with pytest.raises(ParseError, match="premature EOF") as caught:
        parse(path)
    assert (caught.value.line, caught.value.offset) == (2, path.stat().st_size)


def test_trailing_garbage_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match="trailing garbage"):
        parse(write(tmp_path, '{"a": "b"}\n{"c": "d"}\n'))


def test_blank_file_yields_nothing(tmp_path: Path) -> None:
    assert parse(write(tmp_path, "")) == []
    assert parse(write(tmp_path, "\n  \n")) == []


def test_a_skipped_line_is_passed_through_then_fails_the_document(tmp_path: Path) -> None:
    path = write(tmp_path, '{"a": "short",\n "b": "' + "x" * 200 + '"}\n')
    stream = JsonParser().parse(LineReader(str(path), max_line_bytes=100), str(path))
    issue = next(stream)
    assert isinstance(issue, ParseIssue)
    assert issue.error_type == "LineTooLongError"
    with pytest.raises(ParseError, match="cannot skip a line") as caught:
        next(stream)
    assert (caught.value.line, caught.value.offset) == (2, 15)


def test_crlf_and_bom_are_handled_by_the_reader(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(b'\xef\xbb\xbf{\r\n  "a": "b"\r\n}\r\n')
    (section,) = parse(path)
    assert isinstance(section, Section)
    assert (section.text, section.line_start, section.byte_start) == ("a: b", 2, 6)
