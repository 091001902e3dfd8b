"""An append or a resume costs O(new bytes) (issue 3), and stays exact.

Two O(file) costs were removed: the content hash of an appended file (now a chain
of links continued from the cursor's link, ``sources.fingerprint.HashChain``) and
the preload of every chunk hash before the cursor into the occurrence filter (a
resumed file with a long prefix now asks the index once per text new to the run).
Here the link is 64 KiB and the preload limit 0, so files of a few hundred KiB
take those paths (an append with the final cursor's stored occurrence filter, or
without it, looking up every new text); each scenario still ends equal to a clean
ingest of the final file, and the stored content hash equals the hash of the file from scratch (so a
later touch or rename is still recognised).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.integration.test_large_files import _append, _clean, _index, _log_lines, _records, _state

from headrace import Index
from headrace.ledger.cursors import CursorStore
from headrace.runtime import produce
from headrace.runtime import write as write_module
from headrace.sources import fingerprint
from headrace.sources.fingerprint import HashChain, chain_digest, chain_to, content_hash
from headrace.testing.embedders import HashEmbedder

LINK = 64 << 10


@pytest.fixture(autouse=True)
def _small_links(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    monkeypatch.setattr(fingerprint, "CHAIN_LINK_BYTES", LINK)
    monkeypatch.setattr(produce, "PRELOAD_MAX_CHUNKS", 0)
    return []


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int | None]]:
    """(start offset, limit) of every hashing pass over a file."""
    calls: list[tuple[int, int | None]] = []
    real = fingerprint._hash_from

    def recording(path: str, chain: HashChain, limit: int | None) -> tuple[HashChain, str]:
        calls.append((chain.offset, limit))
        return real(path, chain, limit)

    monkeypatch.setattr(fingerprint, "_hash_from", recording)
    return calls


def _stored_hash(idx: Index, path: Path) -> str:
    stored = idx.ledger.get(str(path))
    assert stored is not None
    assert stored.content_hash is not None
    return stored.content_hash


@pytest.mark.parametrize("size", [0, 1, LINK - 1, LINK, LINK + 1, 3 * LINK + 17])
def test_chain_continued_from_any_link_equals_the_hash_from_scratch(
    tmp_path: Path, size: int
) -> None:
    path = tmp_path / "f.bin"
    path.write_bytes(os.urandom(size))
    whole = content_hash(str(path))
    for cut in range(0, size + 1, max(1, size // 5)):
        chain = chain_to(str(path), HashChain(), cut)
        assert chain.offset == cut - cut % LINK
        assert chain_digest(str(path), chain, size) == whole
    if size < LINK:
        assert whole == fingerprint.blake3(path.read_bytes()).hexdigest(length=16)


@pytest.mark.parametrize(("name", "stored_filter"), [("chat.jsonl", True), ("app.log", False)])
def test_append_hashes_only_from_the_cursors_link(
    tmp_path: Path,
    hashed: list[tuple[int, int | None]],
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    stored_filter: bool,
) -> None:
    lookups: list[str] = []
    real_count = CursorStore.count_stored

    def counting(self: CursorStore, path: str, text_hash: str, base: int, below: int) -> int:
        lookups.append(text_hash)
        return real_count(self, path, text_hash, base, below)

    monkeypatch.setattr(CursorStore, "count_stored", counting)
    if not stored_filter:  # the final cursor keeps no filter: each new text is looked up
        monkeypatch.setattr(produce._FileRun, "with_filter", staticmethod(lambda f, c: f))
    root = tmp_path / "logs"
    root.mkdir()
    path = root / name
    path.write_text(_records(0, 1500) if name.endswith("jsonl") else _log_lines(0, 6000))
    emb = HashEmbedder()
    with _index(tmp_path / "i.sqlite", emb) as idx:
        idx.ingest([str(root)])
        before = path.stat().st_size
        assert before > 4 * LINK
        for start in (5000, 5300):  # twice: the second append continues the first's chain
            _append(
                path, _records(start, 200) if name.endswith("jsonl") else _log_lines(start, 200)
            )
            hashed.clear()
            lookups.clear()
            emb.reset_counts()
            stats = idx.ingest([str(root)])
            new_texts = emb.texts_embedded
            if stored_filter:  # only the filter's false positives and repeated texts
                assert len(lookups) < 5 + new_texts // 10
            else:
                assert len(lookups) >= new_texts
            assert stats.bytes_resumed > before - LINK
            assert 0 < emb.texts_embedded <= 202  # only the appended chunks
            # Hashing began at the cursor's link, not at byte 0.
            assert hashed
            assert min(start for start, _ in hashed) >= before - LINK - (1 << 20)
            assert _stored_hash(idx, path) == content_hash(str(path))
            assert _state(idx) == _clean(tmp_path, root)
            recorded, actual = idx.conn.execute(
                "SELECT f.chunk_count, (SELECT count(*) FROM chunks c WHERE c.file_id = f.id)"
                " FROM files f WHERE f.path = ?",
                (str(path),),
            ).fetchone()
            assert recorded == actual  # counted without scanning the file's chunks
            before = path.stat().st_size
        # The chained hash is the file's hash: a touch is a touch, a rename a rename.
        os.utime(path, ns=(1, 1))
        assert idx.ingest([str(root)]).touched == 1
        os.rename(path, root / f"moved-{name}")
        assert idx.ingest([str(root)]).renamed == 1


def test_resume_with_lookups_instead_of_a_preload_equals_clean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    big = root / "big.jsonl"
    big.write_text(_records(0, 2500) + "not json\n" + _records(2500, 900), encoding="utf-8")
    real = write_module.WriteStage._segment
    calls = {"n": 0}

    class _Crash(Exception):
        pass

    def crashing(self: write_module.WriteStage, item: write_module.SegmentDone) -> None:
        calls["n"] += 1
        if calls["n"] == 70:  # ~560 KiB in (cursors every 8 KiB)
            raise _Crash
        real(self, item)

    monkeypatch.setattr(write_module.WriteStage, "_segment", crashing)
    with _index(tmp_path / "i.sqlite") as idx:
        with pytest.raises(_Crash):
            idx.ingest([str(root)])
        monkeypatch.setattr(write_module.WriteStage, "_segment", real)
        stats = idx.ingest([str(root)])
        assert stats.bytes_resumed > 4 * LINK  # the chain carried past several links
        assert _stored_hash(idx, big) == content_hash(str(big))
        assert _state(idx) == _clean(tmp_path, root)


def test_rewrite_after_append_is_still_a_full_reingest(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    path = root / "chat.jsonl"
    path.write_text(_records(0, 700), encoding="utf-8")  # > 2 links
    with _index(tmp_path / "i.sqlite") as idx:
        idx.ingest([str(root)])
        _append(path, _records(700, 50))
        assert idx.ingest([str(root)]).bytes_resumed > 0  # an append
        with path.open("r+", encoding="utf-8") as handle:  # same inode, new bytes
            handle.truncate(0)
            handle.write(_records(0, 800, seed=9))
        stats = idx.ingest([str(root)])
        assert stats.bytes_resumed == 0
        assert _stored_hash(idx, path) == content_hash(str(path))
        assert _state(idx) == _clean(tmp_path, root)
