"""Fingerprints: a cheap stat signature first, a content hash only when it moved.

A file *may* have changed when its ``(size, mtime_ns, inode)`` differs from the
stored one; only then is it hashed. The content hash (blake3, 128 bits as 32 hex
characters) is what decides whether it really changed, so a ``touch`` or a copy
that keeps the bytes costs one hash and no re-embedding.
"""

from __future__ import annotations

import threading

from blake3 import blake3

from headrace.errors import UnreadableFileError
from headrace.records import FileRef

BLOCK_BYTES = 1 << 20
HASH_HEX_CHARS = 32

StatSignature = tuple[int, int, int]

# One reused block buffer per thread: allocating 1 MiB per call made hashing many
# small files five times slower.
_buffers = threading.local()


def content_hash(path: str, limit: int | None = None) -> str:
    """Return the blake3 hash of the file's bytes as 32 lowercase hex characters.

    ``limit`` hashes only the first ``limit`` bytes: the size the file had when it
    was discovered, so that a file still growing is hashed as it was planned.

    Reads in 1 MiB blocks into a reused per-thread buffer, so memory stays bounded
    whatever the file's size; blake3 releases the GIL while it hashes a block.
    ``update_mmap`` is faster but a file truncated while mapped kills the process
    with SIGBUS, and files here change under us, so it is not used. Raises
    ``UnreadableFileError`` (stage ``"fingerprint"``) when the file cannot be read,
    with the message "file vanished" when it was deleted after discovery.
    """
    hasher = blake3()
    buffer, view = _block_buffer()
    left = -1 if limit is None else limit
    try:
        with open(path, "rb", buffering=0) as fh:
            while left:
                count = fh.readinto(buffer if left < 0 else view[: min(left, BLOCK_BYTES)])
                if not count:
                    break
                hasher.update(view[:count])
                if left > 0:
                    left -= count
    except FileNotFoundError as exc:
        raise UnreadableFileError(
            "file vanished between discovery and hashing", path=path, stage="fingerprint"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UnreadableFileError(
            f"cannot read file: {reason}", path=path, stage="fingerprint"
        ) from exc
    return hasher.hexdigest(length=HASH_HEX_CHARS // 2)


SEAM_BYTES = 4096


def span_digest(path: str, start: int, end: int) -> str | None:
    """blake3 of the bytes ``[start, end)`` (at most a few KiB), ``None`` if unreadable.

    Durable cursors store digests of a file's prefix (``edge_digests``): a file that
    only grew keeps them, a rewritten, truncated or copy-truncated one almost surely
    changes one of them.
    """
    try:
        with open(path, "rb", buffering=0) as fh:
            fh.seek(start)
            data = fh.read(end - start)
    except OSError:
        return None
    if len(data) != end - start:
        return None
    return str(blake3(data).hexdigest(length=HASH_HEX_CHARS // 2))


def edge_digests(path: str, offset: int) -> tuple[str | None, str | None]:
    """Digests of the bytes before ``offset``: sampled prefix, and the seam.

    The first is blake3 over the head ``[0, 4 KiB)`` and 4 KiB samples spread over
    ``[0, offset)`` (at most 64 of them up to 64 MiB, one per MiB beyond: 4 MB read
    per GB; a file under 256 KiB is read whole). The second covers the 4 KiB just
    before ``offset``. A file that only grew keeps both; an insertion or deletion
    anywhere shifts the bytes under the samples after it, so an edit that also grew
    the file is caught unless it keeps every sampled byte.
    """
    if offset <= 0:
        return span_digest(path, 0, 0), span_digest(path, 0, 0)
    step = max(SEAM_BYTES, min(1 << 20, offset // 64))
    hasher = blake3()
    try:
        with open(path, "rb", buffering=0) as fh:
            for start in range(0, offset, step):
                fh.seek(start)
                want = min(SEAM_BYTES, offset - start)
                data = fh.read(want)
                if len(data) != want:
                    return None, None
                hasher.update(data)
    except OSError:
        return None, None
    sampled = str(hasher.hexdigest(length=HASH_HEX_CHARS // 2))
    return sampled, span_digest(path, max(0, offset - SEAM_BYTES), offset)


def stat_signature(ref: FileRef) -> StatSignature:
    """Return ``(size, mtime_ns, inode)``: what the ledger stores to skip re-hashing."""
    return (ref.size, ref.mtime_ns, ref.inode)


def maybe_changed(ref: FileRef, stored: StatSignature | None) -> bool:
    """Tell whether ``ref`` must be hashed: new (``stored`` is None) or stat moved.

    False means "certainly unchanged" only under the usual assumption that a write
    moves the mtime or the size; an inode change (a file replaced by rename, as
    editors save) also counts as a possible change.
    """
    return stored is None or stat_signature(ref) != stored


def _block_buffer() -> tuple[bytearray, memoryview]:
    cached: tuple[bytearray, memoryview] | None = getattr(_buffers, "block", None)
    if cached is None:
        buffer = bytearray(BLOCK_BYTES)
        cached = _buffers.block = (buffer, memoryview(buffer))
    return cached
