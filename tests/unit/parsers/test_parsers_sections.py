"""SectionBuilder and split_text: bounded, covering, positioned sections."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.parsers.sections import HeadingTrail, SectionBuilder, render_scalar, split_text
from headrace.records import Line, Section


def as_lines(texts: list[str]) -> list[Line]:
    lines, offset = [], 0
    for number, text in enumerate(texts, 1):
        size = len(text.encode()) + 1
        lines.append(Line(number, offset, size, text))
        offset += size
    return lines


def build(texts: list[str], max_chars: int) -> list[Section]:
    builder = SectionBuilder(max_chars, heading="H")
    out: list[Section] = []
    for line in as_lines(texts):
        out.extend(builder.add(line))
    out.extend(builder.flush())
    return out


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet="ab \n\u00e9", max_size=300), limit=st.integers(1, 40))
def test_split_text_pieces_are_bounded_and_concatenate(text: str, limit: int) -> None:
    pieces = list(split_text(text, limit))
    assert "".join(pieces) == text
    assert all(len(piece) <= limit for piece in pieces)


def test_split_text_prefers_a_space_in_the_second_half() -> None:
    assert list(split_text("aaaa bbbb cccc", 10)) == ["aaaa bbbb ", "cccc"]
    assert list(split_text("x" * 25, 10)) == ["x" * 10, "x" * 10, "x" * 5]


LINE_TEXTS = st.lists(st.text(alphabet="ab \u00e9", max_size=30), max_size=40)


@settings(max_examples=200, deadline=None)
@given(texts=LINE_TEXTS, max_chars=st.integers(1, 50))
def test_sections_are_bounded_ordered_and_cover_all_text(texts: list[str], max_chars: int) -> None:
    sections = build(texts, max_chars)
    assert all(len(s.text) <= max_chars for s in sections)
    assert all(s.text.strip() for s in sections)
    starts = [s.byte_start for s in sections]
    assert starts == sorted(starts)
    # Every non-space character arrives, in order.
    assert "".join("".join(s.text.split()) for s in sections) == "".join("".join(texts).split())


@settings(max_examples=100, deadline=None)
@given(texts=LINE_TEXTS, max_chars=st.integers(1, 50))
def test_byte_ranges_contain_the_section_text(texts: list[str], max_chars: int) -> None:
    data = "".join(t + "\n" for t in texts).encode()
    for section in build(texts, max_chars):
        assert section.text in data[section.byte_start : section.byte_end].decode()


def test_cut_falls_on_a_blank_line_in_the_second_half() -> None:
    texts = ["a" * 10, "b" * 10, "", "c" * 10, "d" * 10]
    sections = build(texts, 40)
    assert [s.text for s in sections] == ["a" * 10 + "\n" + "b" * 10, "c" * 10 + "\n" + "d" * 10]
    assert [(s.line_start, s.line_end) for s in sections] == [(1, 2), (4, 5)]
    assert all(s.heading == "H" for s in sections)


def test_without_a_blank_line_the_cut_is_at_a_line_boundary() -> None:
    sections = build(["aaaa", "bbbb", "cccc"], 10)
    assert [s.text for s in sections] == ["aaaa\nbbbb", "cccc"]


def test_blank_runs_emit_nothing_and_edges_are_trimmed() -> None:
    assert build(["", "  ", "\t"], 100) == []
    (section,) = build(["", "text", "", ""], 100)
    assert (section.text, section.line_start, section.line_end) == ("text", 2, 2)
    assert (section.byte_start, section.byte_end) == (1, 6)


def test_an_over_long_line_is_cut_with_exact_byte_ranges() -> None:
    text = "\u00e9t\u00e9 " * 10  # two-byte characters make char and byte offsets differ
    first, *pieces = build(["x", text], 16)
    assert first.text == "x"
    data = ("x\n" + text + "\n").encode()
    assert "".join(p.text for p in pieces) == text
    assert len(pieces) >= 3
    for piece in pieces:
        assert len(piece.text) <= 16
        assert (piece.line_start, piece.line_end) == (2, 2)
        assert data[piece.byte_start : piece.byte_end].decode() == piece.text


def test_heading_trail_closes_deeper_levels() -> None:
    trail = HeadingTrail()
    assert trail.enter(1, "A") == "A"
    assert trail.enter(3, "B") == "A > B"
    assert trail.enter(2, "C") == "A > C"
    assert trail.enter(1, "D") == "D"


def test_render_scalar_uses_json_spelling() -> None:
    values: list[object] = ["s", 1, 2.5, True, False, None, [], {}]
    assert [render_scalar(v) for v in values] == [
        "s", "1", "2.5", "true", "false", None, None, None,
    ]  # fmt: skip
