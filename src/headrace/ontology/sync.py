"""One sync of a git repository into the ontology store.

The order of effects is what makes it resumable:

1. the target commit is resolved (a remote is fetched first, with retries);
2. the change list is the diff from the stored cursor to the target, or, on the
   first run, after a history rewrite or a parser upgrade, a reconcile of the
   target tree against what is stored (by blob id);
3. each file is then written in its own transaction (``replace``, ``rename``,
   ``remove`` or a dead letter). A file whose stored blob id and parser version
   already match is skipped, so a run that was killed resumes where it stopped;
4. only when every file of the change list is stored (or dead-lettered) does the
   cursor move to the target commit. A transient failure that survives its
   retries leaves the cursor where it was: the next run retries that file.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import blake3
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from headrace.errors import InputError, RootUnavailableError, StoreError, TransientError
from headrace.parsers.ontology import PARSER_VERSION, parse_ontology, same_parse, syntax_for
from headrace.sinks.ontology_sqlite import OntologyStore, StoredOntology
from headrace.sources.git import BlobReader, Change, GitRepo, PathFilter, filter_changes

T = TypeVar("T")
log = logging.getLogger(__name__)


@dataclass(slots=True)
class SyncReport:
    """What one sync did; ``complete`` is True when the cursor reached ``commit``.

    ``dangling`` counts the source's references that resolve to no stored term
    (kept, reported, never fatal); it is counted only when the run changed files.
    """

    source: str
    commit: str = ""
    previous: str | None = None
    mode: str = "full"
    files: int = 0
    stored: int = 0
    renamed: int = 0
    deleted: int = 0
    documents: int = 0
    skipped: int = 0
    failed: int = 0
    transient_failures: list[str] = field(default_factory=list)
    retries: int = 0
    complete: bool = False
    dangling: int | None = None
    elapsed_s: float = 0.0

    @property
    def outcome(self) -> str:
        """``complete``; ``partial`` (complete, some files dead-lettered); ``incomplete``."""
        if not self.complete:
            return "incomplete"
        return "partial" if self.failed else "complete"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"outcome": self.outcome}


@dataclass(slots=True)
class _Pass:
    """The state of one pass over a change list."""

    target: str
    blobs: BlobReader
    stored: dict[str, StoredOntology]
    failed: dict[str, str | None]
    report: SyncReport


class OntologySync:
    """Syncs one repository location into one ontology database.

    ``include``/``exclude`` are gitignore-style globs over repository paths; by
    default every file with an ontology extension counts. ``attempts`` bounds the
    retries of a transient failure (exponential backoff from ``backoff_s``); a file
    over ``max_bytes`` is a dead letter, never read into memory.
    """

    def __init__(
        self,
        store: OntologyStore,
        location: str,
        *,
        ref: str = "HEAD",
        include: list[str] | None = None,
        exclude: list[str] | None = None,
        cache_dir: Path | None = None,
        attempts: int = 4,
        max_bytes: int = 64 << 20,
        backoff_s: float = 0.05,
        on_file: Callable[[SyncReport], None] | None = None,
    ) -> None:
        self.store = store
        self.repo = GitRepo(location, cache_dir=cache_dir)
        self.ref = ref
        self.filter = PathFilter(include or [], exclude or [])
        self.filter_spec = json.dumps([sorted(include or []), sorted(exclude or [])])
        self.attempts = attempts
        self.max_bytes = max_bytes
        self.backoff_s = backoff_s
        self.on_file = on_file
        self.stopped = False

    @property
    def source(self) -> str:
        return self.repo.source_id

    def request_stop(self) -> None:
        """Stop after the current file (safe from a signal handler); the cursor stays."""
        self.stopped = True

    def run(self) -> SyncReport:
        report = SyncReport(self.source)
        started = time.perf_counter()
        with self._writer_lock():
            try:
                self._retry(self.repo.fetch, report)
            except TransientError as exc:
                raise RootUnavailableError(f"{self.repo.location}: unreachable: {exc}") from exc
            target = self.repo.resolve(self.ref)
            report.commit = target
            changes = self._changes(target, report)
            report.files = len(changes)
            with self.repo.blobs() as blobs:
                self._apply(changes, target, blobs, report)
            if not report.transient_failures and not self.stopped:
                self._retry(
                    lambda: self.store.set_cursor(
                        self.source,
                        self.repo.location,
                        self.ref,
                        target,
                        PARSER_VERSION,
                        filters=self.filter_spec,
                    ),
                    report,
                )
                report.complete = True
            if report.files:
                report.dangling = self.store.dangling_count(self.source)
        report.elapsed_s = time.perf_counter() - started
        return report

    # -- what changed ------------------------------------------------------------------

    def _counts(self, path: str) -> bool:
        return syntax_for(path) is not None and self.filter(path)

    def _changes(self, target: str, report: SyncReport) -> list[Change]:
        cursor = self.store.cursor(self.source)
        report.previous = cursor.commit_sha if cursor else None
        if (
            cursor is not None
            and cursor.parser_version == PARSER_VERSION
            and cursor.filters == self.filter_spec
            and self.repo.has_commit(cursor.commit_sha)
            and self.repo.is_ancestor(cursor.commit_sha, target)
        ):
            report.mode = "incremental" if cursor.commit_sha != target else "up-to-date"
            # Seen through the same test as a full tree: a rename from ``a.ttl`` to
            # ``a.txt`` is a deletion, exactly as a fresh sync of the target would see it.
            return filter_changes(self.repo.diff(cursor.commit_sha, target), self._counts)
        report.mode = "full" if cursor is None else "reconcile"
        tree = {p: b for p, b in self.repo.tree(target).items() if self._counts(p)}
        changes = reconcile(tree, self.store.stored(self.source))
        failed = self.store.failed_blobs(self.source)
        return changes + [Change("delete", p, None) for p in failed if p not in tree]

    # -- applying ----------------------------------------------------------------------

    def _apply(
        self, changes: list[Change], target: str, blobs: BlobReader, report: SyncReport
    ) -> None:
        run = _Pass(
            target,
            blobs,
            self.store.stored(self.source),
            self.store.failed_blobs(self.source),
            report,
        )
        # Renames first: a path freed by a rename may be re-used by an added file.
        order = {"rename": 0, "delete": 1, "add": 2, "modify": 2}
        for ch in sorted(changes, key=lambda c: order[c.kind]):
            if self.stopped:
                return
            try:
                self._one(ch, run)
            except TransientError as exc:
                report.transient_failures.append(f"{ch.path}: {exc}")
            if self.on_file is not None:
                self.on_file(report)

    def _one(self, ch: Change, run: _Pass) -> None:
        report = run.report
        if ch.kind == "delete":
            if ch.path in run.stored or ch.path in run.failed:
                self._retry(lambda: self.store.remove(self.source, ch.path), report)
                report.deleted += 1
            return
        if ch.kind == "rename" and ch.old_path is not None:
            old_path = ch.old_path
            old = run.stored.get(old_path)
            if (
                old is not None
                and old.blob_sha == ch.blob
                and old.parser_version == PARSER_VERSION
                and same_parse(
                    old_path, ch.path, uses_base=self.store.mentions_base(self.source, old_path)
                )
            ):
                self._retry(
                    lambda: self.store.rename(self.source, old_path, ch.path, run.target), report
                )
                report.renamed += 1
                return
            if old_path in run.stored or old_path in run.failed:
                self._retry(lambda: self.store.remove(self.source, old_path), report)
                report.deleted += 1
        if ch.blob is not None:
            self._store_file(ch.path, ch.blob, run)

    def _store_file(self, path: str, blob: str, run: _Pass) -> None:
        report = run.report
        known = run.stored.get(path)
        if known is not None and known.blob_sha == blob and known.parser_version == PARSER_VERSION:
            report.skipped += 1  # stored by an earlier, interrupted run
            return
        if run.failed.get(path) == blob:
            report.skipped += 1
            return
        try:
            data = self._retry(lambda: run.blobs.read(blob, max_bytes=self.max_bytes), report)
            doc = parse_ontology(path, data)
        except InputError as exc:
            self._dead_letter(
                path, blob, run, stage=exc.stage, exc=exc, message=exc.message, line=exc.line
            )
            return
        except TransientError:
            raise
        except Exception as exc:
            # A parser's own failure on one hostile or unforeseen file (a library error,
            # deep recursion, a bug of ours) must not stop the rest of the corpus: it is
            # that file's dead letter, with the exception type to report the defect.
            log.warning("parser failure on %s", path, exc_info=True)
            self._dead_letter(
                path, blob, run, stage="parse", exc=exc, message=f"{exc!r}"[:500], line=None
            )
            return
        if doc is None:
            if known is not None or path in run.failed:
                self._retry(lambda: self.store.remove(self.source, path), report)
            report.documents += 1
            return
        digest = blake3.blake3(data).hexdigest()
        try:
            self._retry(
                lambda: self.store.replace(
                    self.source,
                    path,
                    doc,
                    commit_sha=run.target,
                    blob_sha=blob,
                    content_hash=digest,
                    parser_version=PARSER_VERSION,
                ),
                report,
            )
        except StoreError as exc:
            self._dead_letter(path, blob, run, stage="store", exc=exc, message=str(exc), line=None)
            return
        report.stored += 1

    def _dead_letter(
        self,
        path: str,
        blob: str,
        run: _Pass,
        *,
        stage: str,
        exc: BaseException,
        message: str,
        line: int | None,
    ) -> None:
        self._retry(
            lambda: self.store.fail(
                self.source,
                path,
                commit_sha=run.target,
                blob_sha=blob,
                stage=stage,
                error_type=type(exc).__name__,
                message=message,
                line=line,
            ),
            run.report,
        )
        run.report.failed += 1

    def _retry(self, fn: Callable[[], T], report: SyncReport) -> T:
        def count(_: object) -> None:
            report.retries += 1

        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(self.attempts),
            wait=wait_exponential(multiplier=self.backoff_s, max=5),
            before_sleep=count,
            reraise=True,
        )
        return retrying(fn)

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        lock_path = self.store.path.with_name(self.store.path.name + ".lock")
        with open(lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(f"{self.store.path}: another sync is writing") from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def reconcile(tree: dict[str, str], stored: dict[str, StoredOntology]) -> list[Change]:
    """Changes that turn ``stored`` into ``tree``; equal blobs at new paths are renames."""
    gone = {p: s.blob_sha for p, s in stored.items() if p not in tree}
    by_blob: dict[str, list[str]] = {}
    for p, b in gone.items():
        by_blob.setdefault(b, []).append(p)
    changes: list[Change] = []
    for path, blob in tree.items():
        old = stored.get(path)
        if old is not None:
            if old.blob_sha != blob or old.parser_version != PARSER_VERSION:
                changes.append(Change("modify", path, blob))
            continue
        sources = by_blob.get(blob)
        if sources:
            old_path = sources.pop()
            del gone[old_path]
            changes.append(Change("rename", path, blob, old_path, blob))
        else:
            changes.append(Change("add", path, blob))
    changes.extend(Change("delete", p, None, old_blob=b) for p, b in gone.items())
    return changes
