"""Bad input: each case gets its clear outcome and the rest of the corpus is ingested."""

from __future__ import annotations

import builtins
import os
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import write_corpus

from headrace import Index, Settings
from headrace.testing.embedders import HashEmbedder

GOOD = {"good.md": "# Good\n\nThis file is fine and must always be searchable.\n"}


def _index(tmp_path: Path, **settings: Any) -> Index:
    return Index(tmp_path / "i.sqlite", settings=Settings(**settings), embedder=HashEmbedder())


def _sources(idx: Index) -> set[str]:
    return {Path(str(r["source"])).name for r in idx.export()}


def _letters(idx: Index) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for d in idx.failed():
        out.setdefault(Path(d.path).name, []).append(d)
    return out


def test_malformed_json_lines_become_dead_letters(tmp_path: Path) -> None:
    lines = ['{"body": "line one"}', "{oops", '"a plain string line"', "[1, 2", '{"body": "five"}']
    root = write_corpus(tmp_path / "c", {**GOOD, "log.jsonl": "\n".join(lines) + "\n"})
    idx = _index(tmp_path)
    stats = idx.ingest([str(root)])
    letters = _letters(idx)["log.jsonl"]
    assert [(d.line, d.offset) for d in letters] == [(2, 21), (4, 49)]
    assert all("log.jsonl" in d.path and d.error_type == "ParseError" for d in letters)
    texts = [r["text"] for r in idx.export() if r["source"].endswith("log.jsonl")]
    assert texts == ["body: line one", "a plain string line", "body: five"]
    assert stats.dead_letters == 2
    assert "good.md" in _sources(idx)


def test_invalid_utf8_is_replaced_not_fatal(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", GOOD)
    (root / "latin1.txt").write_bytes("caf\xe9 au lait\nsecond line ok\n".encode("latin-1"))
    idx = _index(tmp_path)
    stats = idx.ingest([str(root)])
    (row,) = [r for r in idx.export() if r["source"].endswith("latin1.txt")]
    assert row["text"] == "caf\ufffd au lait\nsecond line ok"
    assert stats.files_failed == 0


def test_binary_and_empty_files(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", GOOD)
    (root / "image.png").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
    (root / "empty.txt").write_bytes(b"")
    idx = _index(tmp_path)
    stats = idx.ingest([str(root)])
    assert (stats.files_skipped, stats.files_failed, stats.files_done) == (1, 0, 2)
    skipped = idx.ledger.get(str(root / "image.png"))
    assert skipped is not None
    assert skipped.state == "skipped"
    empty = idx.ledger.get(str(root / "empty.txt"))
    assert empty is not None
    assert empty.state == "indexed"
    assert idx.ingest([str(root)]).unchanged == 3  # neither is looked at again


def test_permission_denied_file_is_an_error_not_a_deletion(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_corpus(tmp_path / "c", {**GOOD, "secret.md": "# Secret\n\nold text\n"})
    idx = _index(tmp_path)
    idx.ingest([str(root)])
    (root / "secret.md").write_text("# Secret\n\nnew text that cannot be read\n")
    denied = str(root / "secret.md")
    real_open = builtins.open

    def deny(file: Any, *args: Any, **kwargs: Any) -> Any:
        # Tests run as root, which ignores permission bits: deny the read here instead.
        if str(file) == denied:
            raise PermissionError(13, "Permission denied", denied)
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", deny)
    stats = idx.ingest([str(root)])
    assert stats.files_failed == 1
    (letter,) = _letters(idx)["secret.md"]
    assert letter.error_type == "UnreadableFileError"
    assert "Permission denied" in letter.message
    assert "old text" in " ".join(r["text"] for r in idx.export())  # kept, not deleted
    monkeypatch.setattr(builtins, "open", real_open)
    again = idx.ingest([str(root)])  # unchanged since the failure: not retried
    assert (again.files_done, again.files_failed, again.unchanged) == (0, 0, 2)
    assert "secret.md" in _letters(idx)
    assert idx.retry().files_done == 1
    assert "new text" in " ".join(r["text"] for r in idx.export())
    assert "secret.md" not in _letters(idx)


def test_file_vanishing_after_discovery(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file deleted between the plan and its read is no defect: no failure, no dead
    letter; a new file is simply not recorded, an indexed one keeps its version until
    a plan sees the deletion."""
    root = write_corpus(tmp_path / "c", {**GOOD, "gone.md": "# soon gone\n", "kept.md": "# v1\n"})
    idx = _index(tmp_path)
    idx.ingest([str(root)])  # kept.md indexed before: it must survive the race below
    assert _sources(idx) == {"good.md", "gone.md", "kept.md"}
    os.unlink(root / "gone.md")
    assert idx.ingest([str(root)]).deleted == 1
    (root / "gone.md").write_text("# soon gone\n")  # new again, and deleted before its read
    (root / "kept.md").write_text("# version two, deleted before it is read\n")
    original = Index._run

    def vanish_first(self: Index, refs: list[Any], *args: Any) -> None:
        os.unlink(root / "gone.md")
        os.unlink(root / "kept.md")
        original(self, refs, *args)

    monkeypatch.setattr(Index, "_run", vanish_first)
    stats = idx.ingest([str(root)])
    assert (stats.files_failed, stats.vanished, stats.files_done) == (0, 2, 0)
    assert _letters(idx) == {}
    assert _sources(idx) == {"good.md", "kept.md"}
    assert "v1" in " ".join(str(r["text"]) for r in idx.export())
    monkeypatch.setattr(Index, "_run", original)
    again = idx.ingest([str(root)])
    assert (again.deleted, again.files_failed) == (1, 0)
    assert _sources(idx) == {"good.md"}


def test_symlink_loop_terminates(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", GOOD)
    os.symlink(root, root / "loop")
    idx = _index(tmp_path)
    plan = idx.plan([str(root)])
    assert any("loop" in s.reason for s in plan.skipped)
    idx.ingest([str(root)])
    assert _sources(idx) == {"good.md"}


@pytest.mark.slow
def test_fifty_megabyte_single_line(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", GOOD)
    with open(root / "huge.txt", "wb") as out:
        out.write(b"before the long line\n")
        out.write(b"x" * (50 << 20) + b"\n")
        out.write(b"after the long line\n")
    idx = _index(tmp_path)
    stats = idx.ingest([str(root)])
    (letter,) = _letters(idx)["huge.txt"]
    assert (letter.error_type, letter.line, letter.offset) == ("LineTooLongError", 2, 21)
    texts = " ".join(r["text"] for r in idx.export() if r["source"].endswith("huge.txt"))
    assert "before the long line" in texts
    assert "after the long line" in texts
    assert stats.files_done == 2
