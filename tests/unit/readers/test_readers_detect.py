"""sniff_binary: NUL bytes, magic numbers and UTF-16/32 are binary; text is not."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.errors import UnreadableFileError
from headrace.readers.detect import sniff_binary, sniff_bytes


@pytest.mark.parametrize(
    ("head", "reason"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "PNG image"),
        (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "PDF document"),
        (b"PK\x03\x04\x14\x00", "ZIP archive"),
        (b"\x1f\x8b\x08\x00", "gzip archive"),
        (b"\x7fELF\x02\x01\x01", "ELF executable"),
        (b"SQLite format 3\x00\x10\x00", "SQLite database"),
        (b"\xff\xfeh\x00i\x00", "UTF-16 text is not supported"),
        (b"\xfe\xff\x00h\x00i", "UTF-16 text is not supported"),
        (b"\xff\xfe\x00\x00h\x00\x00\x00", "UTF-32 text is not supported"),
        (b"plain text\x00with a NUL", "NUL byte at offset 10"),
    ],
)
def test_binary_heads_have_a_reason(head: bytes, reason: str) -> None:
    assert sniff_bytes(head) == reason


@pytest.mark.parametrize(
    "head",
    [
        b"",
        b"hello\n",
        "caf\u00e9 \u2603\n".encode(),
        b"\xef\xbb\xbfbom text",
        b"\xff not utf-8 but no NUL",
    ],
)
def test_text_heads_are_not_binary(head: bytes) -> None:
    assert sniff_bytes(head) is None


def test_only_the_sample_is_read(tmp_path: Path) -> None:
    path = tmp_path / "late_nul.txt"
    path.write_bytes(b"a" * 100 + b"\x00")
    assert sniff_binary(str(path), sample=100) is None
    assert sniff_binary(str(path)) == "NUL byte at offset 100"


def test_file_on_disk(tmp_path: Path) -> None:
    path = tmp_path / "img.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)))
    assert sniff_binary(str(path)) == "PNG image"


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="file not found"):
        sniff_binary(str(tmp_path / "missing"))
