"""Keyword-only indexes stage a fresh file in place (issue 3, sinks/sqlite.py).

Its chunks go straight into ``chunks`` and ``chunks_fts`` under a reserved file id
segment by segment, and the file becomes visible (``files`` row, search, export)
only when it is published. A crash mid-file leaves those rows invisible; the next
run resumes from the cursor and ends equal to a clean run; a file that changed
meanwhile is redone from byte 0 without leftovers. A file with a published version
still stages in ``pending``, so its old version stays searchable until the new one
is published.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import WORDS

from headrace import Index, Settings
from headrace.runtime import write as write_module

SEGMENT = 16 << 10


class _Crash(Exception):
    pass


def _records(count: int, seed: int, tag: str = "event") -> str:
    rng = random.Random(seed)
    out = []
    for i in range(count):
        if i % 19 == 0:  # repeated text: occurrences must survive the seams
            out.append(json.dumps({"msg": "heartbeat ok"}))
        else:
            words = " ".join(rng.choices(WORDS, k=rng.randint(5, 60)))
            out.append(json.dumps({"n": i, "msg": f"{tag} {i}: {words}"}))
    return "".join(line + "\n" for line in out)


def _index(path: Path) -> Index:
    return Index(
        path, settings=Settings(embedder="none", segment_bytes=SEGMENT, queue_bytes=64 << 10)
    )


def _state(idx: Index) -> tuple[list[dict[str, Any]], list[tuple[object, ...]]]:
    letters = [(d.path, d.line, d.offset, d.message) for d in idx.failed()]
    return list(idx.export()), sorted(letters, key=repr)


def _clean(tmp: Path, root: Path) -> tuple[list[dict[str, Any]], list[tuple[object, ...]]]:
    with _index(tmp / f"clean-{random.random()}.sqlite") as idx:
        idx.ingest([str(root)])
        return _state(idx)


def _count(idx: Index, sql: str) -> int:
    return int(idx.conn.execute(sql).fetchone()[0])


def _crash_at_segment(monkeypatch: pytest.MonkeyPatch, n: int) -> None:
    real = write_module.WriteStage._segment
    calls = {"n": 0}

    def crashing(self: write_module.WriteStage, item: write_module.SegmentDone) -> None:
        calls["n"] += 1
        if calls["n"] == n:
            raise _Crash  # this window rolls back; the segments before it stay
        real(self, item)

    monkeypatch.setattr(write_module.WriteStage, "_segment", crashing)


def _consistent(idx: Index) -> None:
    """No staged leftovers: every chunk belongs to a file row and has one FTS row."""
    assert _count(idx, "SELECT count(*) FROM staging") == 0
    chunks = _count(idx, "SELECT count(*) FROM chunks")
    assert _count(idx, "SELECT coalesce(sum(chunk_count), 0) FROM files") == chunks
    orphans = "SELECT count(*) FROM chunks WHERE file_id NOT IN (SELECT id FROM files)"
    assert _count(idx, orphans) == 0
    assert _count(idx, "SELECT count(*) FROM chunks_fts") == chunks


def test_fresh_file_is_staged_in_place_invisible_until_published(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    big = root / "big.jsonl"
    big.write_text(_records(2500, seed=5), encoding="utf-8")
    (root / "small.md").write_text("# Notes\n\nheartbeat of the small file\n", encoding="utf-8")
    _crash_at_segment(monkeypatch, 6)
    with _index(tmp_path / "i.sqlite") as idx:
        with pytest.raises(_Crash):
            idx.ingest([str(root)])
        # Committed segments are in `chunks` and FTS, but nothing shows them.
        assert _count(idx, "SELECT count(*) FROM staging") == 1
        assert _count(idx, "SELECT count(*) FROM pending") == 0
        staged = _count(
            idx, "SELECT count(*) FROM chunks WHERE file_id IN (SELECT file_id FROM staging)"
        )
        assert staged > 100
        assert all(r["source"] != str(big) for r in idx.export())
        assert all(h.path != str(big) for h in idx.search("heartbeat", 50, mode="keyword"))
        assert idx.status()["files"]["chunks"] == len(list(idx.export()))
        monkeypatch.undo()
        stats = idx.ingest([str(root)])
        assert 0 < stats.bytes_resumed < big.stat().st_size  # resumed, not restarted
        assert _state(idx) == _clean(tmp_path, root)
        _consistent(idx)
        hits = idx.search("heartbeat", 50, mode="keyword")
        assert any(h.path == str(big) for h in hits)
        assert min(r["ordinal"] for r in idx.export() if r["source"] == str(big)) == 0


def test_staged_file_changed_before_resume_is_redone_without_leftovers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    big = root / "big.jsonl"
    big.write_text(_records(2000, seed=7), encoding="utf-8")
    _crash_at_segment(monkeypatch, 4)
    with _index(tmp_path / "i.sqlite") as idx:
        with pytest.raises(_Crash):
            idx.ingest([str(root)])
        monkeypatch.undo()
        big.write_text(_records(1500, seed=8, tag="other"), encoding="utf-8")  # rewritten
        stats = idx.ingest([str(root)])
        assert stats.bytes_resumed == 0
        assert _state(idx) == _clean(tmp_path, root)
        _consistent(idx)


def test_file_with_a_published_version_keeps_it_visible_until_the_new_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    big = root / "big.jsonl"
    big.write_text(_records(2000, seed=9), encoding="utf-8")
    with _index(tmp_path / "i.sqlite") as idx:
        idx.ingest([str(root)])
        before = _state(idx)
        big.write_text(_records(2200, seed=10, tag="second"), encoding="utf-8")
        _crash_at_segment(monkeypatch, 5)
        with pytest.raises(_Crash):
            idx.ingest([str(root)])
        assert _count(idx, "SELECT count(*) FROM staging") == 0  # staged in pending
        assert _count(idx, "SELECT count(*) FROM pending") > 0
        assert _state(idx) == before  # the old version, whole
        monkeypatch.undo()
        idx.ingest([str(root)])
        assert _state(idx) == _clean(tmp_path, root)
        _consistent(idx)


def test_staged_file_deleted_before_the_next_run_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "logs"
    root.mkdir()
    big = root / "big.jsonl"
    big.write_text(_records(2000, seed=11), encoding="utf-8")
    (root / "keep.md").write_text("# Keep\n\nthis file stays\n", encoding="utf-8")
    _crash_at_segment(monkeypatch, 4)
    with _index(tmp_path / "i.sqlite") as idx:
        with pytest.raises(_Crash):
            idx.ingest([str(root)])
        monkeypatch.undo()
        big.unlink()
        idx.ingest([str(root)])
        assert _state(idx) == _clean(tmp_path, root)
        _consistent(idx)
        assert _count(idx, "SELECT count(*) FROM cursors") == 0
