"""``sniff_binary``: a cheap look at a file's head to keep binaries out of parsers.

A file is binary if its first ``sample`` bytes contain a NUL byte or begin with the
magic number of a common binary format. UTF-16 and UTF-32 text is reported as
binary too, with its own reason: the readers decode UTF-8 only, and such text
would otherwise arrive as NUL-ridden garbage (without a byte-order mark it is
caught by the NUL rule anyway). An empty file is text.
"""

from __future__ import annotations

from headrace.errors import UnreadableFileError, VanishedFileError

# Longer prefixes first: UTF-32 LE starts with the UTF-16 LE mark.
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "UTF-32 text is not supported"),
    (b"\x00\x00\xfe\xff", "UTF-32 text is not supported"),
    (b"\xff\xfe", "UTF-16 text is not supported"),
    (b"\xfe\xff", "UTF-16 text is not supported"),
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"PK\x05\x06", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"BZh91AY&SY", "bzip2 archive"),
    (b"\xfd7zXZ\x00", "xz archive"),
    (b"\x28\xb5\x2f\xfd", "zstd archive"),
    (b"7z\xbc\xaf\x27\x1c", "7-Zip archive"),
    (b"\x7fELF", "ELF executable"),
    (b"SQLite format 3\x00", "SQLite database"),
)


def sniff_binary(path: str, sample: int = 8192) -> str | None:
    """Return why ``path`` looks binary, or ``None`` if it looks like text.

    Reads at most ``sample`` bytes. Raises ``UnreadableFileError(stage="read")``
    when the file cannot be opened or read, ``VanishedFileError`` when it is gone.
    """
    try:
        with open(path, "rb") as handle:
            head = handle.read(sample)
    except FileNotFoundError as exc:
        reason = exc.strerror or type(exc).__name__
        raise VanishedFileError(f"file not found: {reason}", path=path, stage="read") from exc
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise UnreadableFileError(f"cannot read: {reason}", path=path, stage="read") from exc
    return sniff_bytes(head)


def sniff_bytes(head: bytes) -> str | None:
    """The same verdict as ``sniff_binary`` for a file's first bytes."""
    for magic, reason in _MAGIC:
        if head.startswith(magic):
            return reason
    nul = head.find(b"\x00")
    return None if nul < 0 else f"NUL byte at offset {nul}"
