"""JsonlParser: one section per record, malformed lines reported with positions."""

from __future__ import annotations

import json
from pathlib import Path

from headrace.parsers.jsonl import JsonlParser, record_metadata, render_record
from headrace.readers.lines import LineReader
from headrace.records import ParseIssue, Seam, Section

FIXTURES = Path(__file__).parents[2] / "fixtures" / "parsers"


def parse(path: Path, **kwargs: int) -> list[Section | ParseIssue]:
    items = JsonlParser(**kwargs).parse(LineReader(str(path)), str(path))
    return [x for x in items if not isinstance(x, Seam)]  # seams: tests/unit/parsers/test_seams.py


def test_good_lines_are_kept_around_malformed_ones(tmp_path: Path) -> None:
    lines = [
        '{"role": "user", "text": "first"}',
        "{not json",
        "",
        '{"role": "assistant", "text": "second"}',
        '{"truncated": "val',
        '"a bare string"',
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    items = parse(path)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    shape = [
        (type(x).__name__, x.line, x.offset)
        if isinstance(x, ParseIssue)
        else (x.text, x.line_start, x.byte_start, x.byte_end)
        for x in items
    ]
    assert shape == [
        ("role: user\ntext: first", 1, 0, offsets[1]),
        ("ParseIssue", 2, offsets[1]),
        ("role: assistant\ntext: second", 4, offsets[3], offsets[4]),
        ("ParseIssue", 5, offsets[4]),
        ("a bare string", 6, offsets[5], offsets[6]),
    ]
    issue = items[1]
    assert isinstance(issue, ParseIssue)
    assert issue.error_type == "ParseError"
    assert issue.message.startswith("invalid JSON: ")


def test_nested_objects_and_lists_are_flattened() -> None:
    record = {
        "type": "assistant",
        "message": {"content": [{"type": "text", "text": "hi"}, {"type": "tool_use"}]},
        "tags": ["a", "b", 3],
        "usage": {"tokens": 5},
        "none": None,
    }
    assert list(render_record(record)) == [
        "type: assistant",
        "message.content.type: text",
        "message.content.text: hi",
        "message.content.type: tool_use",
        "tags: a, b",
    ]


def test_metadata_keeps_small_top_level_scalars_and_the_record_number() -> None:
    record = {f"k{i}": i for i in range(12)} | {"long": "x" * 201, "nested": {"a": 1}}
    meta = record_metadata(record, 7)
    assert meta == {f"k{i}": i for i in range(10)} | {"record": 7}
    small = {"record": "user's", "ok": True, "nan": float("nan"), "s": "x" * 200}
    assert record_metadata(small, 3) == {"ok": True, "s": "x" * 200, "record": 3}


def test_long_records_split_into_sections_with_the_same_position(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    text = " ".join(f"w{i}" for i in range(500))
    path.write_text(json.dumps({"id": "r1", "text": text}) + "\n", encoding="utf-8")
    sections = [x for x in parse(path, max_section_chars=100) if isinstance(x, Section)]
    assert len(sections) > 10
    assert all(len(s.text) <= 100 for s in sections)
    assert {(s.line_start, s.byte_start, s.byte_end) for s in sections} == {
        (1, 0, path.stat().st_size)
    }
    assert all(s.metadata == {"id": "r1", "record": 1} for s in sections)
    assert "".join(s.text for s in sections) == "id: r1\ntext: " + text


def test_real_transcript_edge_cases() -> None:
    path = FIXTURES / "cc_edge_cases.jsonl"
    items = parse(path)
    sections = [x for x in items if isinstance(x, Section)]
    assert not [x for x in items if isinstance(x, ParseIssue)]
    texts = {s.metadata["record"]: s.text for s in sections}
    assert texts[13] == "massive error"
    assert all("42" not in t.splitlines() for t in texts.values())  # non-string lines
    data = path.read_bytes()
    assert not data.endswith(b"\n")
    last = sections[-1]
    assert (last.byte_end, last.metadata["type"]) == (len(data), "summary")
    for section in sections:
        raw = data[section.byte_start : section.byte_end].decode()
        assert json.loads(raw)  # each range is exactly one record


def test_crlf_offsets_and_reader_issues_pass_through(tmp_path: Path) -> None:
    path = tmp_path / "w.jsonl"
    path.write_bytes(b'{"a": "1"}\r\n{"b": "' + b"x" * 100 + b'"}\r\n{"c": "3"}\r\n')
    stream = JsonlParser().parse(LineReader(str(path), max_line_bytes=50), str(path))
    items = [x for x in stream if not isinstance(x, Seam)]
    assert isinstance(items[1], ParseIssue)
    assert (items[1].line, items[1].offset, items[1].error_type) == (2, 12, "LineTooLongError")
    third = items[2]
    assert isinstance(third, Section)
    assert (third.text, third.line_start, third.byte_start, third.byte_end) == (
        "c: 3",
        3,
        12 + 111,
        12 + 111 + 12,
    )
