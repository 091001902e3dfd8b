"""A git repository for the text pipeline: a folder kept equal to a filtered tree.

The text pipeline (``FolderSource`` → ``Index.ingest``) reads files from disk and
decides what changed by stat and hash. ``GitMirror`` writes the files of a commit
that pass a filter into a folder, applying only the diff from the commit it
mirrored last (rewritten history: a full comparison), so ingesting that folder
re-reads exactly the files git says changed: docs in a repository become
searchable through the same source as its ontologies.

The mirrored commit is stored in a state file (by default ``<folder>.commit``) written
only after every change is applied; a crash means the next run applies the same
diff again, and every write is idempotent (temp → fsync → rename, skipped when the
bytes on disk already match).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from headrace.sources.git import BlobReader, Change, GitRepo


@dataclass(slots=True)
class MirrorReport:
    mode: str = "full"
    written: int = 0
    deleted: int = 0
    unchanged: int = 0


class GitMirror:
    """Mirror the files of ``repo`` accepted by ``accept`` (a POSIX path test) into ``folder``."""

    def __init__(
        self,
        repo: GitRepo,
        folder: Path,
        accept: Callable[[str], bool],
        *,
        signature: str = "",
        state: Path | None = None,
    ) -> None:
        """``signature`` names what ``accept`` accepts (its settings): when it changes, the
        next sync compares the whole tree. ``state`` holds the mirrored commit and
        signature (default ``<folder>.commit``); keep it out of any ingested folder."""
        self.repo = repo
        self.folder = folder
        self.accept = accept
        self.signature = signature
        self.state = state or folder.with_name(folder.name + ".commit")

    def sync(self, commit: str) -> MirrorReport:
        report = MirrorReport()
        saved = self.state.read_text().split("\n", 1) if self.state.exists() else [""]
        last = saved[0].strip()
        same_filter = len(saved) == 2 and saved[1] == self.signature
        if (
            last
            and same_filter
            and self.repo.has_commit(last)
            and self.repo.is_ancestor(last, commit)
        ):
            report.mode = "incremental"
            changes = self._filtered(self.repo.diff(last, commit))
        else:
            changes = self._full(commit)
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.repo.blobs() as blobs:
            for ch in changes:
                self._apply(ch, blobs, report)
        _write_atomic(self.state, f"{commit}\n{self.signature}".encode())
        return report

    def _filtered(self, changes: list[Change]) -> list[Change]:
        out: list[Change] = []
        for change in changes:
            ch = change
            if ch.kind == "rename" and ch.old_path is not None:
                out.append(Change("delete", ch.old_path, None))
                ch = Change("add", ch.path, ch.blob)
            if self.accept(ch.path):
                out.append(ch)
        return out

    def _full(self, commit: str) -> list[Change]:
        tree = {p: b for p, b in self.repo.tree(commit).items() if self.accept(p)}
        changes = [Change("add", p, b) for p, b in tree.items()]
        if self.folder.exists():
            for dirpath, _, names in os.walk(self.folder):
                for name in names:
                    rel = (Path(dirpath) / name).relative_to(self.folder).as_posix()
                    if rel not in tree:
                        changes.append(Change("delete", rel, None))
        return changes

    def _apply(self, ch: Change, blobs: BlobReader, report: MirrorReport) -> None:
        target = self._target(ch.path)
        if ch.kind == "delete" or ch.blob is None:
            if target.exists():
                target.unlink()
                report.deleted += 1
            return
        data = blobs.read(ch.blob)
        if target.exists() and target.stat().st_size == len(data) and target.read_bytes() == data:
            report.unchanged += 1
            return
        _write_atomic(target, data)
        report.written += 1

    def _target(self, rel: str) -> Path:
        parts = PurePosixPath(rel).parts
        if not parts or ".." in parts or PurePosixPath(rel).is_absolute():
            raise ValueError(f"refusing to mirror a path outside the folder: {rel!r}")
        return self.folder.joinpath(*parts)


def _write_atomic(target: Path, data: bytes) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


__all__ = ["GitMirror", "MirrorReport"]
