"""Fingerprints: streaming content hash, stat signature, change detection."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from blake3 import blake3

from headrace.errors import InputError, UnreadableFileError
from headrace.records import FileRef
from headrace.sources.fingerprint import (
    BLOCK_BYTES,
    content_hash,
    maybe_changed,
    stat_signature,
)


def test_large_file_hash_equals_blake3_of_its_bytes(tmp_path: Path) -> None:
    data = random.Random(7).randbytes(20 * 1024 * 1024 + 123)  # not a block multiple
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    digest = content_hash(str(path))
    assert digest == blake3(data).hexdigest()[:32]
    assert len(digest) == 32


@pytest.mark.parametrize("size", [0, 1, BLOCK_BYTES - 1, BLOCK_BYTES, BLOCK_BYTES + 1])
def test_hash_at_block_boundaries(tmp_path: Path, size: int) -> None:
    data = bytes(range(256)) * (size // 256) + bytes(size % 256)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert content_hash(str(path)) == blake3(data).hexdigest(length=16)


def test_reused_buffer_does_not_leak_between_files(tmp_path: Path) -> None:
    (tmp_path / "long").write_bytes(b"a" * 5000)
    (tmp_path / "short").write_bytes(b"b")
    content_hash(str(tmp_path / "long"))
    assert content_hash(str(tmp_path / "short")) == blake3(b"b").hexdigest(length=16)


def test_vanished_file_is_an_unreadable_file_error(tmp_path: Path) -> None:
    path = str(tmp_path / "gone.txt")
    with pytest.raises(UnreadableFileError, match="file vanished") as caught:
        content_hash(path)
    assert isinstance(caught.value, InputError)
    assert (caught.value.path, caught.value.stage) == (path, "fingerprint")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_other_os_errors_are_unreadable_file_errors(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFileError, match="cannot read file") as caught:
        content_hash(str(tmp_path))  # a directory cannot be read as a file
    assert caught.value.stage == "fingerprint"


def make_ref(path: Path) -> FileRef:
    st = os.stat(path)
    return FileRef(str(path.parent), path.name, str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def test_stat_signature_and_maybe_changed(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("one")
    ref = make_ref(path)
    assert stat_signature(ref) == (ref.size, ref.mtime_ns, ref.inode)
    assert maybe_changed(ref, None)
    assert not maybe_changed(ref, stat_signature(ref))
    assert maybe_changed(ref, (ref.size + 1, ref.mtime_ns, ref.inode))
    assert maybe_changed(ref, (ref.size, ref.mtime_ns - 1, ref.inode))
    assert maybe_changed(ref, (ref.size, ref.mtime_ns, ref.inode + 1))


def test_mtime_change_without_sleeping(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_text("one")
    before = make_ref(path)
    os.utime(path, ns=(before.mtime_ns + 1_000_000, before.mtime_ns + 1_000_000))
    assert maybe_changed(make_ref(path), stat_signature(before))


def test_content_hash_limit_hashes_the_planned_prefix(tmp_path: Path) -> None:
    from headrace.sources.fingerprint import content_hash as hash_of

    path = tmp_path / "grow.log"
    path.write_bytes(b"x" * 3_000_000)
    planned = hash_of(str(path))
    path.write_bytes(b"x" * 3_000_000 + b"appended later\n")
    assert hash_of(str(path), 3_000_000) == planned != hash_of(str(path))


def test_edge_digests_see_edits_anywhere_in_the_prefix(tmp_path: Path) -> None:
    from headrace.sources.fingerprint import edge_digests

    path = tmp_path / "a.log"
    body = b"".join(b"line %06d of the log\n" % i for i in range(20000))
    path.write_bytes(body)
    offset = len(body) - 100
    before = edge_digests(str(path), offset)
    path.write_bytes(body + b"appended\n")
    assert edge_digests(str(path), offset) == before  # it only grew
    middle = len(body) // 2
    path.write_bytes(body[:middle] + b"inserted " + body[middle:])  # grew by an insertion
    assert edge_digests(str(path), offset) != before
    path.write_bytes(b"H" + body[1:])
    assert edge_digests(str(path), offset)[0] != before[0]
    assert edge_digests(str(path), len(body) + 10**6) == (None, None)
