"""LineReader: exact offsets and numbers, decoding policy, caps and bounded memory."""

from __future__ import annotations

import io
import tracemalloc
from pathlib import Path
from typing import NoReturn

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.errors import UnreadableFileError
from headrace.readers.lines import LineReader, decode_line
from headrace.records import Line, ParseIssue

BOM = b"\xef\xbb\xbf"


def read(path: Path, **kwargs: int) -> list[Line | ParseIssue]:
    return list(LineReader(str(path), **kwargs))


def write(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "f.txt"
    path.write_bytes(data)
    return path


def reference(data: bytes, cap: int) -> list[tuple[object, ...]]:
    """What the reader must yield, computed the obvious (slow, whole-file) way."""
    out: list[tuple[object, ...]] = []
    offset, number = (3, 1) if data.startswith(BOM) else (0, 1)
    while offset < len(data):
        newline = data.find(b"\n", offset)
        stop = len(data) if newline < 0 else newline + 1
        raw = data[offset:stop]
        if len(raw) > cap:
            out.append(("issue", number, offset))
        else:
            body = raw[:-1] if raw.endswith(b"\n") else raw
            body = body[:-1] if raw.endswith(b"\r\n") else body
            out.append(("line", number, offset, len(raw), body.decode(errors="replace")))
        offset, number = stop, number + 1
    return out


def observed(items: list[Line | ParseIssue]) -> list[tuple[object, ...]]:
    return [
        ("issue", x.line, x.offset)
        if isinstance(x, ParseIssue)
        else ("line", x.number, x.offset, x.length, x.text)
        for x in items
    ]


def test_lf_lines_have_exact_offsets_and_numbers(tmp_path: Path) -> None:
    items = read(write(tmp_path, b"alpha\nbeta\n\ngamma\n"))
    assert items == [
        Line(1, 0, 6, "alpha"),
        Line(2, 6, 5, "beta"),
        Line(3, 11, 1, ""),
        Line(4, 12, 6, "gamma"),
    ]


def test_crlf_terminator_is_counted_but_not_text(tmp_path: Path) -> None:
    items = read(write(tmp_path, b"one\r\ntwo\r\nlone\rcr\n"))
    assert items == [Line(1, 0, 5, "one"), Line(2, 5, 5, "two"), Line(3, 10, 8, "lone\rcr")]


def test_final_line_without_newline(tmp_path: Path) -> None:
    reader = LineReader(str(write(tmp_path, b"a\nlast")))
    assert list(reader) == [Line(1, 0, 2, "a"), Line(2, 2, 4, "last", terminated=False)]
    assert reader.position == 6


def test_bom_is_skipped_and_offsets_stay_file_offsets(tmp_path: Path) -> None:
    data = BOM + "héllo\nwörld\n".encode()
    items = read(write(tmp_path, data))
    assert items == [Line(1, 3, 7, "héllo"), Line(2, 10, 7, "wörld")]
    line = items[1]
    assert isinstance(line, Line)
    assert data[line.offset : line.offset + line.length].decode() == "wörld\n"


def test_bom_only_at_byte_zero(tmp_path: Path) -> None:
    items = read(write(tmp_path, b"a\n" + BOM + b"b\n"))
    assert items[1] == Line(2, 2, 5, "\ufeffb")


def test_invalid_utf8_is_replaced_and_counted(tmp_path: Path) -> None:
    data = b"ok\n\xff\xfebad\xc3\n" + "real \ufffd kept\n".encode()
    items = read(write(tmp_path, data))
    assert items[1] == Line(2, 3, 7, "\ufffd\ufffdbad\ufffd", replaced=3)
    # A U+FFFD that was valid UTF-8 in the file is not a replacement.
    assert items[2] == Line(3, 10, len("real \ufffd kept\n".encode()), "real \ufffd kept", 0)


def test_decode_line_counts_a_truncated_sequence_once() -> None:
    assert decode_line(b"caf\xc3") == ("caf\ufffd", 1)
    assert decode_line(b"\xe2\x82\xefx") == ("\ufffd\ufffdx", 2)


@pytest.mark.parametrize("block_size", [1, 2, 3, 5, 64])
def test_block_boundaries_do_not_change_the_lines(tmp_path: Path, block_size: int) -> None:
    data = BOM + "é\r\nbeta\n\n".encode() + b"\xff\xc3\nlong line here\r\nend\r"
    path = write(tmp_path, data)
    assert read(path, block_size=block_size) == read(path)


def test_resume_from_position(tmp_path: Path) -> None:
    path = write(tmp_path, b"one\ntwo\nthree\nfour\n")
    reader = LineReader(str(path))
    seen: list[Line | ParseIssue] = []
    for item in reader:
        seen.append(item)
        if len(seen) == 2:
            break
    resumed = LineReader(str(path), start=reader.position, first_line=3)
    assert list(resumed) == [Line(3, 8, 6, "three"), Line(4, 14, 5, "four")]
    assert read(path)[2:] == list(LineReader(str(path), start=8, first_line=3))


def test_position_is_updated_before_each_item(tmp_path: Path) -> None:
    reader = LineReader(str(write(tmp_path, b"ab\ncd\nef\n" * 3)), block_size=4)
    for item in reader:
        assert isinstance(item, Line)
        assert reader.position == item.offset + item.length


def test_line_at_the_cap_passes_and_one_byte_more_is_skipped(tmp_path: Path) -> None:
    items = read(write(tmp_path, b"x" * 9 + b"\n" + b"y" * 10 + b"\nz\n"), max_line_bytes=10)
    assert items[0] == Line(1, 0, 10, "x" * 9)
    assert isinstance(items[1], ParseIssue)
    assert (items[1].line, items[1].offset, items[1].error_type) == (2, 10, "LineTooLongError")
    assert items[2] == Line(3, 21, 2, "z")


def test_over_cap_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    cap, huge = 1 << 20, 5 << 20
    path = tmp_path / "big.txt"
    with path.open("wb") as handle:
        handle.write(b"first\n")
        for _ in range(huge // (1 << 16)):
            handle.write(b"a" * (1 << 16))
        handle.write(b"\nafter\nlast")
    tracemalloc.start()
    try:
        items = read(path, max_line_bytes=cap, block_size=1 << 16)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * cap < huge
    assert items[0] == Line(1, 0, 6, "first")
    issue = items[1]
    assert isinstance(issue, ParseIssue)
    assert (issue.line, issue.offset, issue.error_type) == (2, 6, "LineTooLongError")
    assert items[2:] == [
        Line(3, 6 + huge + 1, 6, "after"),
        Line(4, 6 + huge + 7, 4, "last", terminated=False),
    ]


def test_over_cap_final_line_without_newline(tmp_path: Path) -> None:
    items = read(write(tmp_path, b"ok\n" + b"q" * 50), max_line_bytes=20, block_size=8)
    assert items[0] == Line(1, 0, 3, "ok")
    assert isinstance(items[1], ParseIssue)
    assert (items[1].line, items[1].offset) == (2, 3)


def test_empty_file_yields_nothing(tmp_path: Path) -> None:
    assert read(write(tmp_path, b"")) == []
    assert read(write(tmp_path, BOM)) == []


def test_missing_file_is_unreadable_and_says_not_found(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="file not found") as caught:
        read(tmp_path / "missing.txt")
    assert caught.value.stage == "read"
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_permission_denied_is_unreadable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def denied(*args: object, **kwargs: object) -> NoReturn:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("headrace.readers.lines.open", denied, raising=False)
    with pytest.raises(UnreadableFileError, match="cannot open: Permission denied"):
        read(write(tmp_path, b"secret\n"))


def test_read_error_mid_stream_names_the_offset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class FlakyFile(io.BytesIO):
        def read(self, size: int | None = -1) -> bytes:
            if self.tell() >= 4:
                raise OSError(5, "Input/output error")
            return super().read(size)

    monkeypatch.setattr(
        "headrace.readers.lines.open", lambda *a: FlakyFile(b"abc\ndef\n"), raising=False
    )
    reader = LineReader("flaky.txt", block_size=4)
    items = iter(reader)
    assert next(items) == Line(1, 0, 4, "abc")
    with pytest.raises(UnreadableFileError, match="read failed") as caught:
        next(items)
    assert caught.value.offset == 4


def test_directory_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError):
        read(tmp_path)


def test_nothing_is_opened_before_iteration(tmp_path: Path) -> None:
    LineReader(str(tmp_path / "missing.txt"))


def test_invalid_arguments_are_rejected() -> None:
    with pytest.raises(ValueError, match="positive"):
        LineReader("x", max_line_bytes=0)


CHUNKS = st.sampled_from([b"a", b"bc", b"\n", b"\r\n", b"\r", b"\xff", "é".encode(), b"xyz"])


@settings(max_examples=300, deadline=None)
@given(
    parts=st.lists(CHUNKS, max_size=40),
    bom=st.booleans(),
    block_size=st.integers(1, 12),
    cap=st.integers(1, 12),
)
def test_matches_the_whole_file_reference(
    tmp_path_factory: pytest.TempPathFactory,
    parts: list[bytes],
    bom: bool,
    block_size: int,
    cap: int,
) -> None:
    data = (BOM if bom else b"") + b"".join(parts)
    path = tmp_path_factory.mktemp("ref") / "f.txt"
    path.write_bytes(data)
    items = read(path, block_size=block_size, max_line_bytes=cap)
    assert observed(items) == reference(data, cap)


def test_end_stops_at_the_planned_size_and_marks_the_cut_line(tmp_path: Path) -> None:
    path = write(tmp_path, b"one\ntwo\nthree\nfour\n")
    items = read(path, end=11, block_size=3)
    assert items == [
        Line(1, 0, 4, "one"),
        Line(2, 4, 4, "two"),
        Line(3, 8, 3, "thr", terminated=False),
    ]
    resumed = LineReader(str(path), start=8, first_line=3, end=19)
    assert list(resumed) == [Line(3, 8, 6, "three"), Line(4, 14, 5, "four")]
    assert resumed.position == 19


def test_end_at_a_line_boundary_leaves_no_torn_line(tmp_path: Path) -> None:
    path = write(tmp_path, BOM + b"a\nb\nc")
    assert read(path, end=7) == [Line(1, 3, 2, "a"), Line(2, 5, 2, "b")]
