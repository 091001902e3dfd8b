"""Change detection: what a sync of some roots would add, change, move and delete.

Cheap facts decide first: a path whose size, mtime_ns and inode match the ledger
(and whose pipeline signature is unchanged) is unchanged without being read.
Only then is content hashed: a same-size file with a new stat is hashed to tell a
touch from an edit, and a new path is hashed only when a vanished file of the same
size could make it a rename. Both outcomes cost no parsing and no embedding.

Deletion is guarded: paths under a root that is missing, unreadable or suddenly
empty, and paths in unreadable directories or files that could not be read, are
*protected*, never deleted, unless the user allows root deletion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from headrace.errors import UnreadableFileError
from headrace.ledger.ledger import StoredFile
from headrace.records import FileRef
from headrace.sources.base import RootProblem, SkippedFile
from headrace.sources.fingerprint import content_hash


@dataclass(slots=True)
class Plan:
    """The outcome of change detection; applying it is the runtime's job."""

    added: list[FileRef] = field(default_factory=list)
    changed: list[FileRef] = field(default_factory=list)
    touched: list[FileRef] = field(default_factory=list)
    renamed: list[tuple[str, FileRef]] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    protected: list[str] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    root_problems: list[RootProblem] = field(default_factory=list)
    unchanged: int = 0
    hashes: dict[str, str] = field(default_factory=dict)

    @property
    def to_process(self) -> list[FileRef]:
        """Files whose content must be read, parsed, chunked and embedded."""
        return self.added + self.changed

    def summary(self) -> dict[str, int]:
        return {
            "added": len(self.added),
            "changed": len(self.changed),
            "touched": len(self.touched),
            "renamed": len(self.renamed),
            "deleted": len(self.deleted),
            "protected": len(self.protected),
            "skipped": len(self.skipped),
            "unchanged": self.unchanged,
        }


@dataclass
class _Builder:
    stored: Mapping[str, StoredFile]
    signature_of: Callable[[FileRef], str]
    plan: Plan = field(default_factory=Plan)

    def hash_of(self, ref: FileRef) -> str | None:
        try:
            digest = content_hash(ref.path, ref.size)  # as planned, even if growing
        except UnreadableFileError:
            return None  # the processing stage reports it as a dead letter
        self.plan.hashes[ref.path] = digest
        return digest

    def classify(self, ref: FileRef) -> None:
        old = self.stored.get(ref.path)
        if old is None:
            self.plan.added.append(ref)
        elif old.signature != self.signature_of(ref) or (
            old.state == "failed" and (old.stat() != (ref.size, ref.mtime_ns, ref.inode))
        ):
            self.plan.changed.append(ref)
        elif old.stat() == (ref.size, ref.mtime_ns, ref.inode):
            self.plan.unchanged += 1
        elif (
            old.size == ref.size
            and old.content_hash is not None
            and (self.hash_of(ref) == old.content_hash)
        ):
            self.plan.touched.append(ref)
        else:
            self.plan.changed.append(ref)

    def match_renames(self, vanished: list[str]) -> list[str]:
        """Turn (vanished, added) pairs with identical content into renames."""
        by_size: dict[int, list[StoredFile]] = {}
        for path in vanished:
            old = self.stored[path]
            if old.state == "indexed" and old.content_hash:
                by_size.setdefault(old.size, []).append(old)
        still_added: list[FileRef] = []
        for ref in self.plan.added:
            match = self._rename_source(ref, by_size.get(ref.size, []))
            if match is None:
                still_added.append(ref)
            else:
                self.plan.renamed.append((match.path, ref))
                by_size[ref.size].remove(match)
        self.plan.added[:] = still_added
        moved = {old for old, _ in self.plan.renamed}
        return [p for p in vanished if p not in moved]

    def _rename_source(self, ref: FileRef, candidates: list[StoredFile]) -> StoredFile | None:
        if not candidates:
            return None
        digest = self.hash_of(ref)
        sig = self.signature_of(ref)
        return next(
            (c for c in candidates if c.content_hash == digest and c.signature == sig), None
        )


def _protected_paths(
    problems: Iterable[RootProblem], skipped: Iterable[SkippedFile]
) -> tuple[frozenset[str], tuple[str, ...]]:
    """Exact paths and directory prefixes (ending in "/") whose stored files are kept."""
    prefixes = [p.root.rstrip("/") + "/" for p in problems]
    exact: set[str] = set()
    for s in skipped:
        if s.unreadable:
            # The path itself exactly, never as a bare prefix: "/r/locked" must not
            # protect "/r/lockedness.md".
            exact.add(s.path)
            prefixes.append(s.path.rstrip("/") + "/")
    return frozenset(exact), tuple(prefixes)


def make_plan(
    discovered: Iterable[FileRef | SkippedFile],
    stored: Mapping[str, StoredFile],
    root_problems: list[RootProblem],
    signature_of: Callable[[FileRef], str],
    *,
    allow_root_deletion: bool = False,
) -> Plan:
    """Compare what the sources show with what the ledger holds."""
    builder = _Builder(stored, signature_of)
    plan = builder.plan
    plan.root_problems.extend(root_problems)
    seen: set[str] = set()
    for item in discovered:
        if isinstance(item, SkippedFile):
            plan.skipped.append(item)
            continue
        seen.add(item.path)
        builder.classify(item)
    vanished = [p for p in stored if p not in seen]
    exact, prefixes = (
        (frozenset(), ()) if allow_root_deletion else _protected_paths(root_problems, plan.skipped)
    )
    for path in builder.match_renames(vanished):
        if path in exact or path.startswith(prefixes):
            plan.protected.append(path)
        else:
            plan.deleted.append(path)
    return plan
