"""make_plan: change detection, rename matching and the deletion guard, without an index.

Inputs are hand-made ``StoredFile`` (the ledger's view) and ``FileRef`` (the
source's view). Hashing is counted through a wrapper, so "decided by stat alone"
is checked, not assumed; files that must be hashed exist in ``tmp_path``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from headrace.ledger.ledger import StoredFile
from headrace.pipeline import plan as plan_module
from headrace.pipeline.plan import Plan, make_plan
from headrace.records import FileRef
from headrace.sources.base import RootProblem, SkippedFile
from headrace.sources.fingerprint import content_hash

SIG = "text@1|chunker1|model"


@pytest.fixture
def hashed(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Paths the planner hashed, in order."""
    seen: list[str] = []

    def counting(path: str, limit: int | None = None) -> str:
        seen.append(path)
        return content_hash(path, limit)

    monkeypatch.setattr(plan_module, "content_hash", counting)
    return seen


def _ref(
    path: Path | str, *, size: int | None = None, mtime_ns: int = 1, inode: int = 1
) -> FileRef:
    p = Path(path)
    real = size if size is not None else p.stat().st_size
    return FileRef(str(p.parent), p.name, str(p), real, mtime_ns, inode)


def _stored(
    ref: FileRef,
    *,
    content_hash: str | None = "h",
    state: str = "indexed",
    signature: str = SIG,
    path: str | None = None,
) -> StoredFile:
    return StoredFile(
        1,
        path or ref.path,
        ref.root,
        ref.size,
        ref.mtime_ns,
        ref.inode,
        content_hash,
        state,
        signature,
    )


def _plan(
    discovered: list[FileRef | SkippedFile],
    stored: list[StoredFile],
    problems: list[RootProblem] | None = None,
    *,
    signature_of: Callable[[FileRef], str] = lambda _: SIG,
    allow_root_deletion: bool = False,
) -> Plan:
    return make_plan(
        discovered,
        {s.path: s for s in stored},
        problems or [],
        signature_of,
        allow_root_deletion=allow_root_deletion,
    )


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_new_file_is_added_without_hashing(tmp_path: Path, hashed: list[str]) -> None:
    ref = _ref(tmp_path / "absent.md", size=10)
    plan = _plan([ref], [])
    assert plan.added == [ref]
    assert plan.to_process == [ref]
    assert hashed == []


def test_same_stat_is_unchanged_without_hashing(tmp_path: Path, hashed: list[str]) -> None:
    ref = _ref(tmp_path / "absent.md", size=10)  # never opened: it does not even exist
    plan = _plan([ref], [_stored(ref)])
    assert plan.summary() == {
        "added": 0,
        "changed": 0,
        "touched": 0,
        "renamed": 0,
        "deleted": 0,
        "protected": 0,
        "skipped": 0,
        "unchanged": 1,
    }
    assert hashed == []


def test_same_size_new_mtime_same_hash_is_touched(tmp_path: Path, hashed: list[str]) -> None:
    path = _write(tmp_path / "a.md", "same bytes\n")
    old = _ref(path, mtime_ns=1)
    new = _ref(path, mtime_ns=2)
    plan = _plan([new], [_stored(old, content_hash=content_hash(str(path)))])
    assert (plan.touched, plan.changed, plan.unchanged) == ([new], [], 0)
    assert hashed == [str(path)]
    assert plan.hashes == {str(path): content_hash(str(path))}


def test_same_size_new_mtime_other_hash_is_changed(tmp_path: Path, hashed: list[str]) -> None:
    path = _write(tmp_path / "a.md", "new bytes\n")
    old = _ref(path, mtime_ns=1)
    plan = _plan([_ref(path, mtime_ns=2)], [_stored(old, content_hash="0" * 32)])
    assert (len(plan.changed), plan.touched) == (1, [])
    assert hashed == [str(path)]


def test_size_change_is_changed_without_hashing(tmp_path: Path, hashed: list[str]) -> None:
    path = _write(tmp_path / "a.md", "longer content now\n")
    old = _ref(path, size=3)
    new = _ref(path, mtime_ns=2)
    plan = _plan([new], [_stored(old, content_hash=content_hash(str(path)))])
    assert plan.changed == [new]
    assert hashed == []


def test_signature_change_is_changed_even_with_same_stat(tmp_path: Path, hashed: list[str]) -> None:
    ref = _ref(tmp_path / "absent.md", size=10)
    plan = _plan([ref], [_stored(ref, signature="text@0|chunker1|model")])
    assert plan.changed == [ref]
    assert hashed == []


def test_failed_file_with_same_stat_is_unchanged(tmp_path: Path) -> None:
    ref = _ref(tmp_path / "absent.md", size=10)
    plan = _plan([ref], [_stored(ref, state="failed", content_hash=None)])
    assert (plan.unchanged, plan.changed) == (1, [])


def test_failed_file_with_new_stat_is_changed_not_touched(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.md", "same bytes\n")
    old = _ref(path, mtime_ns=1)
    new = _ref(path, mtime_ns=2)
    # Even with the content hash of an earlier indexed version, a failed file whose
    # stat moved must be processed again: a touch would leave it failed forever.
    plan = _plan([new], [_stored(old, state="failed", content_hash=content_hash(str(path)))])
    assert (plan.changed, plan.touched) == ([new], [])


def test_rename_matched_on_size_hash_and_signature(tmp_path: Path, hashed: list[str]) -> None:
    new_path = _write(tmp_path / "sub" / "new.md", "moved content\n")
    digest = content_hash(str(new_path))
    old = _stored(_ref(new_path), content_hash=digest, path=str(tmp_path / "old.md"))
    new = _ref(new_path, inode=2)
    plan = _plan([new], [old])
    assert plan.renamed == [(str(tmp_path / "old.md"), new)]
    assert (plan.added, plan.deleted, plan.to_process) == ([], [], [])
    assert hashed == [str(new_path)]


def test_rename_needs_equal_content(tmp_path: Path) -> None:
    new_path = _write(tmp_path / "new.md", "other content\n")
    old = _stored(_ref(new_path), content_hash="0" * 32, path=str(tmp_path / "old.md"))
    plan = _plan([_ref(new_path)], [old])
    assert plan.renamed == []
    assert [r.path for r in plan.added] == [str(new_path)]
    assert plan.deleted == [str(tmp_path / "old.md")]


def test_rename_needs_equal_size(tmp_path: Path, hashed: list[str]) -> None:
    new_path = _write(tmp_path / "new.md", "moved content\n")
    digest = content_hash(str(new_path))
    old_ref = _ref(new_path, size=5)
    old = _stored(old_ref, content_hash=digest, path=str(tmp_path / "old.md"))
    plan = _plan([_ref(new_path)], [old])
    assert (plan.renamed, plan.deleted) == ([], [str(tmp_path / "old.md")])
    assert hashed == []  # no candidate of that size: nothing to compare


def test_rename_needs_equal_signature(tmp_path: Path) -> None:
    new_path = _write(tmp_path / "new.rst", "moved content\n")
    digest = content_hash(str(new_path))
    old = _stored(
        _ref(new_path), content_hash=digest, path=str(tmp_path / "old.md"), signature="md@1"
    )
    plan = _plan([_ref(new_path)], [old], signature_of=lambda r: f"{r.path[-3:]}@1")
    assert plan.renamed == []
    assert (len(plan.added), plan.deleted) == (1, [str(tmp_path / "old.md")])


def test_failed_file_is_no_rename_source(tmp_path: Path) -> None:
    new_path = _write(tmp_path / "new.md", "moved content\n")
    digest = content_hash(str(new_path))
    old = _stored(
        _ref(new_path), content_hash=digest, path=str(tmp_path / "old.md"), state="failed"
    )
    plan = _plan([_ref(new_path)], [old])
    assert (plan.renamed, len(plan.added)) == ([], 1)


def test_one_vanished_file_matches_one_new_path(tmp_path: Path) -> None:
    a = _write(tmp_path / "copy1.md", "same\n")
    b = _write(tmp_path / "copy2.md", "same\n")
    old = _stored(_ref(a), content_hash=content_hash(str(a)), path=str(tmp_path / "old.md"))
    plan = _plan([_ref(a), _ref(b, inode=2)], [old])
    assert len(plan.renamed) == 1
    assert len(plan.added) == 1
    assert plan.deleted == []


def _vanished(*paths: str) -> list[StoredFile]:
    return [StoredFile(i, p, "/r", 10, 1, i, "h", "indexed", SIG) for i, p in enumerate(paths, 1)]


def test_vanished_files_are_deleted() -> None:
    plan = _plan([], _vanished("/r/a.md", "/r/b.md"))
    assert plan.deleted == ["/r/a.md", "/r/b.md"]
    assert plan.protected == []


def test_root_problem_protects_files_under_that_root_only() -> None:
    stored = _vanished("/r/a.md", "/r/sub/b.md", "/r2/c.md")
    plan = _plan([], stored, [RootProblem("/r", "missing")])
    assert sorted(plan.protected) == ["/r/a.md", "/r/sub/b.md"]
    assert plan.deleted == ["/r2/c.md"]
    assert plan.root_problems == [RootProblem("/r", "missing")]


def test_unreadable_directory_protects_files_below_it() -> None:
    stored = _vanished("/r/locked/a.md", "/r/locked/deep/b.md", "/r/lockedness.md", "/r/c.md")
    skipped = SkippedFile("/r/locked", "permission denied", unreadable=True)
    plan = _plan([skipped], stored)
    assert sorted(plan.protected) == ["/r/locked/a.md", "/r/locked/deep/b.md"]
    assert sorted(plan.deleted) == ["/r/c.md", "/r/lockedness.md"]
    assert plan.skipped == [skipped]


def test_unreadable_file_is_protected() -> None:
    skipped = SkippedFile("/r/a.md", "stat failed", unreadable=True)
    plan = _plan([skipped], _vanished("/r/a.md"))
    assert (plan.protected, plan.deleted) == (["/r/a.md"], [])


def test_deliberately_skipped_path_is_not_protected() -> None:
    skipped = SkippedFile("/r/a.md", "symlink points outside the roots", unreadable=False)
    plan = _plan([skipped], _vanished("/r/a.md"))
    assert (plan.protected, plan.deleted) == ([], ["/r/a.md"])


def test_allow_root_deletion_lifts_every_guard() -> None:
    stored = _vanished("/r/a.md", "/q/locked/b.md")
    skipped = SkippedFile("/q/locked", "permission denied", unreadable=True)
    plan = _plan([skipped], stored, [RootProblem("/r", "empty")], allow_root_deletion=True)
    assert sorted(plan.deleted) == ["/q/locked/b.md", "/r/a.md"]
    assert plan.protected == []
    assert plan.root_problems == [RootProblem("/r", "empty")]  # still reported
