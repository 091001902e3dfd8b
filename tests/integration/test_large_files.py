"""Large and growing files (issue 3): segment cursors, resume, append-aware sync.

Every scenario ends by comparing the canonical export and the dead letters with a
clean ingest of the final file into a fresh index: chunk ids, texts, positions and
vectors must be identical. Segments are made tiny (16 KiB) so that files of a few
hundred KiB have dozens of seams.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import threading
from pathlib import Path

import pytest
from tests.conftest import WORDS

from headrace import Index, Settings
from headrace.ledger.cursors import CursorStore
from headrace.runtime import write as write_module
from headrace.runtime.stats import RunStats
from headrace.testing.embedders import HashEmbedder

SEGMENT = 16 << 10


def _settings(**extra: int) -> Settings:
    return Settings(segment_bytes=SEGMENT, queue_bytes=64 << 10, **extra)


def _records(start: int, count: int, seed: int = 3) -> str:
    rng = random.Random(seed * 100_003 + start)
    out = []
    for i in range(start, start + count):
        if i % 17 == 0:  # repeated text: occurrence counts must survive seams
            out.append(json.dumps({"msg": "heartbeat ok", "level": "debug"}))
        else:
            words = " ".join(rng.choices(WORDS, k=rng.randint(5, 90)))
            out.append(json.dumps({"n": i, "msg": f"event {i}: {words}", "level": "info"}))
    return "".join(line + "\n" for line in out)


def _log_lines(start: int, count: int) -> str:
    rng = random.Random(start)
    lines = []
    for i in range(start, start + count):
        lines.append("" if i % 9 == 0 else f"{i} " + " ".join(rng.choices(WORDS, k=12)))
    return "".join(line + "\n" for line in lines)


def _index(path: Path, emb: HashEmbedder | None = None, **extra: int) -> Index:
    return Index(path, settings=_settings(**extra), embedder=emb or HashEmbedder())


def _state(idx: Index) -> tuple[list[dict[str, object]], list[tuple[object, ...]]]:
    letters = [(d.path, d.line, d.offset, d.message) for d in idx.failed()]
    return list(idx.export()), sorted(letters, key=repr)


def _clean(tmp: Path, root: Path) -> tuple[list[dict[str, object]], list[tuple[object, ...]]]:
    fresh = tmp / f"clean-{random.random()}.sqlite"
    with _index(fresh) as idx:
        idx.ingest([str(root)])
        return _state(idx)


def _cursor_mode(idx: Index, path: Path) -> str | None:
    cur = CursorStore(idx.conn).get(str(path))
    return None if cur is None else cur.mode


# -- segment commits and resume ------------------------------------------------------


class _Crash(Exception):
    pass


@pytest.mark.parametrize("crash_at", [3, 11])
def test_crash_mid_file_resumes_from_last_segment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, crash_at: int
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    big = root / "big.jsonl"
    big.write_text(_records(0, 1500) + "not json\n" + _records(1500, 700), encoding="utf-8")
    real = write_module.WriteStage._segment
    calls = {"n": 0}

    def crashing(self: write_module.WriteStage, item: write_module.SegmentDone) -> None:
        calls["n"] += 1
        if calls["n"] == crash_at:
            raise _Crash  # the window's transaction rolls back, earlier ones stay
        real(self, item)

    monkeypatch.setattr(write_module.WriteStage, "_segment", crashing)
    with _index(tmp_path / "i.sqlite") as idx:
        with pytest.raises(_Crash):
            idx.ingest([str(root)])
        assert _cursor_mode(idx, big) == "partial"
        monkeypatch.setattr(write_module.WriteStage, "_segment", real)
        stats = idx.ingest([str(root)])
        assert 0 < stats.bytes_resumed < big.stat().st_size
        assert _cursor_mode(idx, big) == "final"
        assert _state(idx) == _clean(tmp_path, root)


def test_resume_does_not_embed_the_committed_part_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "app.log").write_text(_log_lines(0, 6000), encoding="utf-8")
    real = write_module.WriteStage._segment
    calls = {"n": 0}

    def crashing(self: write_module.WriteStage, item: write_module.SegmentDone) -> None:
        calls["n"] += 1
        if calls["n"] == 10:
            raise _Crash
        real(self, item)

    monkeypatch.setattr(write_module.WriteStage, "_segment", crashing)
    emb = HashEmbedder()
    with _index(tmp_path / "i.sqlite", emb) as idx:
        with pytest.raises(_Crash):
            idx.ingest([str(root)])
        monkeypatch.setattr(write_module.WriteStage, "_segment", real)
        first = emb.texts_embedded
        stats = idx.ingest([str(root)])
        assert stats.bytes_resumed > 0
        total = idx.status()["embedding_cache"]
        # Only the rolled-back window and what follows the cursor are embedded again.
        assert 0 < emb.texts_embedded - first < total
        assert first + (emb.texts_embedded - first) - total < total // 2
        assert _state(idx) == _clean(tmp_path, root)


def test_graceful_stop_keeps_cursor(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    big = root / "big.jsonl"
    big.write_text(_records(0, 2000), encoding="utf-8")
    with _index(tmp_path / "i.sqlite") as idx:
        orig = write_module.WriteStage._segment

        def stop_after(self: write_module.WriteStage, item: write_module.SegmentDone) -> None:
            orig(self, item)
            if item.cursor.offset > big.stat().st_size // 3:
                idx.request_stop()

        write_module.WriteStage._segment = stop_after  # type: ignore[method-assign]
        try:
            idx.ingest([str(root)])
        finally:
            write_module.WriteStage._segment = orig  # type: ignore[method-assign]
        assert _cursor_mode(idx, big) == "partial"
        idx.stopped = False
        stats = idx.ingest([str(root)])
        assert stats.bytes_resumed > big.stat().st_size // 3
        assert _state(idx) == _clean(tmp_path, root)


# -- append-aware sync --------------------------------------------------------------


def _append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture
def indexed(tmp_path: Path) -> tuple[Path, Path, Index, HashEmbedder]:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "chat.jsonl").write_text(_records(0, 800), encoding="utf-8")
    (root / "app.log").write_text(_log_lines(0, 3000), encoding="utf-8")
    emb = HashEmbedder()
    idx = _index(tmp_path / "i.sqlite", emb)
    idx.ingest([str(root)])
    emb.reset_counts()
    return tmp_path, root, idx, emb


@pytest.mark.parametrize("name", ["chat.jsonl", "app.log"])
@pytest.mark.parametrize("lines", [1, 300])
def test_append_reads_only_the_tail(
    indexed: tuple[Path, Path, Index, HashEmbedder], name: str, lines: int
) -> None:
    tmp, root, idx, emb = indexed
    path = root / name
    before = path.stat().st_size
    _append(path, _records(800, lines) if name.endswith("jsonl") else _log_lines(3000, lines))
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed > before - 10_000  # at most one section re-read
    new_texts = emb.texts_embedded
    assert 0 < new_texts <= lines + 2  # only the appended records' chunks
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_torn_line_is_held_back_until_complete(
    indexed: tuple[Path, Path, Index, HashEmbedder],
) -> None:
    tmp, root, idx, _ = indexed
    path = root / "chat.jsonl"
    record = json.dumps({"msg": "a record written in two steps", "level": "info"})
    _append(path, record[:20])
    idx.ingest([str(root)])
    assert idx.failed() == []  # a torn record is not a malformed one
    texts = [row["text"] for row in idx.export()]
    assert not any("written in two steps" in str(t) for t in texts)
    _append(path, record[20:] + "\n")
    idx.ingest([str(root)])
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_torn_text_line_is_replaced_when_completed(
    indexed: tuple[Path, Path, Index, HashEmbedder],
) -> None:
    tmp, root, idx, _ = indexed
    path = root / "app.log"
    _append(path, "3000 half a li")
    idx.ingest([str(root)])
    _append(path, "ne, now whole\n" + _log_lines(3001, 20))
    idx.ingest([str(root)])
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_truncate_and_rewrite_is_a_full_reingest(
    indexed: tuple[Path, Path, Index, HashEmbedder],
) -> None:
    tmp, root, idx, _ = indexed
    path = root / "chat.jsonl"
    with path.open("r+", encoding="utf-8") as handle:  # same inode, new bytes
        handle.truncate(0)
        handle.write(_records(0, 900, seed=9))
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed == 0
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_rewrite_keeping_edges_but_same_size_is_a_full_reingest(
    indexed: tuple[Path, Path, Index, HashEmbedder],
) -> None:
    tmp, root, idx, _ = indexed
    path = root / "app.log"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 5] = b"XXXXX"  # an edit in the middle, the edges untouched
    with path.open("r+b") as handle:
        handle.write(data)
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed == 0
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_insertion_in_the_middle_that_grows_the_file_is_not_an_append(
    indexed: tuple[Path, Path, Index, HashEmbedder],
) -> None:
    tmp, root, idx, _ = indexed
    path = root / "app.log"
    data = path.read_bytes()
    middle = data.index(b"\n", len(data) // 2) + 1
    path.write_bytes(data[:middle] + b"an inserted line in the middle\n" + data[middle:])
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed == 0
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_rotate_by_rename(indexed: tuple[Path, Path, Index, HashEmbedder]) -> None:
    tmp, root, idx, _ = indexed
    path = root / "app.log"
    path.rename(root / "app.log.1")
    path.write_text(_log_lines(5000, 200), encoding="utf-8")
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed == 0
    assert _state(idx) == _clean(tmp, root)
    _append(root / "app.log.1", _log_lines(9000, 5))  # the rotated file still grows
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed > 0
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_copytruncate(indexed: tuple[Path, Path, Index, HashEmbedder]) -> None:
    tmp, root, idx, _ = indexed
    path = root / "app.log"
    shutil.copyfile(path, root / "app.log.1")
    with path.open("r+", encoding="utf-8") as handle:
        handle.truncate(0)
    _append(path, _log_lines(7000, 4000))  # grows past the old cursor again
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed == 0
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_append_after_crash_during_append(
    indexed: tuple[Path, Path, Index, HashEmbedder], monkeypatch: pytest.MonkeyPatch
) -> None:
    tmp, root, idx, _ = indexed
    path = root / "chat.jsonl"
    _append(path, _records(800, 1500))
    real = write_module.WriteStage._segment
    calls = {"n": 0}

    def crashing(self: write_module.WriteStage, item: write_module.SegmentDone) -> None:
        calls["n"] += 1
        if calls["n"] == 6:
            raise _Crash
        real(self, item)

    monkeypatch.setattr(write_module.WriteStage, "_segment", crashing)
    with pytest.raises(_Crash):
        idx.ingest([str(root)])
    monkeypatch.setattr(write_module.WriteStage, "_segment", real)
    _append(path, _records(2300, 10))
    idx.ingest([str(root)])
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_file_growing_while_ingested(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    path = root / "live.jsonl"
    path.write_text(_records(0, 2000), encoding="utf-8")
    done = threading.Event()

    def writer() -> None:
        n = 2000
        while not done.is_set() and n < 6000:
            _append(path, _records(n, 50))  # whole lines: a writer appends records
            n += 50

    with _index(tmp_path / "i.sqlite") as idx:
        thread = threading.Thread(target=writer)
        thread.start()
        try:
            for _ in range(3):  # each run ends at the size it planned, however fast it grows
                idx.ingest([str(root)])
        finally:
            done.set()
            thread.join()
        idx.ingest([str(root)])
        assert _state(idx) == _clean(tmp_path, root)


def test_huge_single_line_is_a_dead_letter_and_the_rest_is_kept(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    path = root / "big.jsonl"
    head = _records(0, 500)
    huge = json.dumps({"msg": "x" * (300 << 10)})
    path.write_text(head + huge + "\n" + _records(500, 500), encoding="utf-8")
    with _index(tmp_path / "i.sqlite", max_line_bytes=128 << 10) as idx:
        idx.ingest([str(root)])
        (letter,) = idx.failed()
        assert (letter.error_type, letter.offset) == ("LineTooLongError", len(head.encode()))
        assert letter.line == 501
        assert len(list(idx.export())) > 900
        _append(path, _records(1000, 5))
        stats = idx.ingest([str(root)])
        assert stats.bytes_resumed > len(head)
        assert [(d.line, d.offset) for d in idx.failed()] == [(501, len(head.encode()))]


@pytest.mark.skipif(os.name != "posix", reason="inode semantics")
def test_renamed_large_file_keeps_its_cursor(
    indexed: tuple[Path, Path, Index, HashEmbedder],
) -> None:
    tmp, root, idx, _ = indexed
    (root / "chat.jsonl").rename(root / "moved.jsonl")
    stats = idx.ingest([str(root)])
    assert stats.renamed == 1
    _append(root / "moved.jsonl", _records(800, 3))
    stats = idx.ingest([str(root)])
    assert stats.bytes_resumed > 0
    assert _state(idx) == _clean(tmp, root)
    idx.close()


def test_run_stats_count_bytes(tmp_path: Path) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    (root / "a.jsonl").write_text(_records(0, 1500), encoding="utf-8")
    stats = RunStats()
    with _index(tmp_path / "i.sqlite") as idx:
        idx.ingest([str(root)], stats=stats)
    size = (root / "a.jsonl").stat().st_size
    assert stats.bytes_total == stats.bytes_done == size
    assert stats.segments >= size // SEGMENT - 1
