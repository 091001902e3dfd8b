"""Deterministic identifiers: the reason replayed writes overwrite instead of duplicating.

Both hashes are BLAKE3, hex, 32 characters (128 bits). ``chunk_id`` derives from the
source identity, the chunk text's hash and its occurrence (how many earlier chunks of
the same file had the same text), so the same content at the same place always gets
the same id, whichever run, process or machine produced it.
"""

from __future__ import annotations

from blake3 import blake3

_HEX_BYTES = 16  # 32 hex characters

__all__ = ["chunk_id", "text_hash"]


def _digest(data: str) -> str:
    # "surrogatepass" equals strict UTF-8 for every valid string; it only keeps a
    # stray surrogate (from a surrogateescape decode) from raising here.
    return str(blake3(data.encode("utf-8", "surrogatepass")).hexdigest(length=_HEX_BYTES))


def text_hash(text: str) -> str:
    """Return the BLAKE3 hash of ``text``'s UTF-8 bytes: 32 lowercase hex characters."""
    return _digest(text)


def chunk_id(source: str, text_hash: str, occurrence: int) -> str:
    """Return the id of a chunk: BLAKE3 of ``source\\0text_hash\\0occurrence``, 32 hex chars.

    ``occurrence`` is 0 for the first chunk of ``source`` with this ``text_hash``, 1 for
    the second, and so on; it keeps repeated text (boilerplate, separators) distinct.
    """
    return _digest(f"{source}\0{text_hash}\0{occurrence}")
