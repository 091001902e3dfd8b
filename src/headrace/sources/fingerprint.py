"""Fingerprints: a cheap stat signature first, a content hash only when it moved.

A file *may* have changed when its ``(size, mtime_ns, inode)`` differs from the
stored one; only then is it hashed. The content hash (blake3, 128 bits as 32 hex
characters) is what decides whether it really changed, so a ``touch`` or a copy
that keeps the bytes costs one hash and no re-embedding.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from blake3 import blake3

from headrace.errors import UnreadableFileError, VanishedFileError
from headrace.records import FileRef

BLOCK_BYTES = 1 << 20
HASH_HEX_CHARS = 32

StatSignature = tuple[int, int, int]

# One reused block buffer per thread: allocating 1 MiB per call made hashing many
# small files five times slower.
_buffers = threading.local()


CHAIN_LINK_BYTES = 64 << 20
_CHAIN_DOMAIN = b"headrace/chained-blake3/v1\0"


@dataclass(frozen=True, slots=True)
class HashChain:
    """A content hash in progress: bytes ``[0, offset)`` folded into ``state``.

    ``offset`` is a multiple of ``CHAIN_LINK_BYTES``; ``state`` is 64 hex characters
    (empty at offset 0). Durable cursors store one, so the content hash of a file
    that grew is finished from the cursor's link instead of from byte 0.
    """

    offset: int = 0
    state: str = ""


def content_hash(path: str, limit: int | None = None) -> str:
    """Return the file's content hash as 32 lowercase hex characters.

    Up to 64 MiB (``CHAIN_LINK_BYTES``) it is the blake3 of the bytes. A larger
    file is hashed as a chain of 64 MiB links (state' = blake3(state || blake3(link)),
    then blake3 of a domain tag, the state, the tail's blake3 and the length), a pure
    function of the bytes that can be continued from any link boundary
    (``chain_to``, ``chain_digest``): appending 1 MB to a 1 GB log costs one link
    and the new bytes, not the whole file (measured 0.75 s per GB here).

    ``limit`` hashes only the first ``limit`` bytes: the size the file had when it
    was discovered, so that a file still growing is hashed as it was planned.

    Reads in 1 MiB blocks into a reused per-thread buffer, so memory stays bounded
    whatever the file's size; blake3 releases the GIL while it hashes a block.
    ``update_mmap`` is faster but a file truncated while mapped kills the process
    with SIGBUS, and files here change under us, so it is not used. Raises
    ``UnreadableFileError`` (stage ``"fingerprint"``) when the file cannot be read,
    ``VanishedFileError`` ("file vanished") when it was deleted after discovery.
    """
    return chain_digest(path, HashChain(), limit)


def chain_to(path: str, chain: HashChain, target: int) -> HashChain:
    """``chain`` advanced over every whole link below ``target`` (bytes read once)."""
    end = target - target % CHAIN_LINK_BYTES
    if end <= chain.offset:
        return chain
    return _hash_from(path, chain, end)[0]


def chain_digest(path: str, chain: HashChain, limit: int | None = None) -> str:
    """The content hash of the first ``limit`` bytes (all: ``None``), continuing
    ``chain`` (which must be true of the file's bytes below its offset)."""
    if limit is not None and chain.offset > limit:
        chain = HashChain()
    return _hash_from(path, chain, limit)[1]


def _hash_from(path: str, chain: HashChain, limit: int | None) -> tuple[HashChain, str]:
    state = bytes.fromhex(chain.state) if chain.state else bytes(32)
    offset, link, in_link = chain.offset, blake3(), 0
    _, view = _block_buffer()
    left = -1 if limit is None else limit - offset
    try:
        with open(path, "rb", buffering=0) as fh:
            fh.seek(offset)
            while left:
                want = min(BLOCK_BYTES, CHAIN_LINK_BYTES - in_link)
                count = fh.readinto(view[: want if left < 0 else min(left, want)])
                if not count:
                    break
                link.update(view[:count])
                in_link += count
                if left > 0:
                    left -= count
                if in_link == CHAIN_LINK_BYTES:
                    state = blake3(state + link.digest()).digest()
                    offset, link, in_link = offset + CHAIN_LINK_BYTES, blake3(), 0
    except FileNotFoundError as exc:
        raise VanishedFileError(
            "file vanished between discovery and hashing", path=path, stage="fingerprint"
        ) from exc
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise UnreadableFileError(
            f"cannot read file: {reason}", path=path, stage="fingerprint"
        ) from exc
    if offset == 0:  # under one link: plain blake3 of the bytes
        return HashChain(), link.hexdigest(length=HASH_HEX_CHARS // 2)
    total = (offset + in_link).to_bytes(8, "little")
    final = blake3(_CHAIN_DOMAIN + state + link.digest() + total)
    return HashChain(offset, state.hex()), final.hexdigest(length=HASH_HEX_CHARS // 2)


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
