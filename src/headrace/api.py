"""The Python API: ``Index(path).ingest(roots)``, ``.search(query)``, ``.status()``.

``Index`` wires the stages together for one index file; the CLI is a thin layer
over it. Heavy things (the model, the ONNX runtime) load only when a run has text
to embed or a search has a query to embed, so a no-op sync stays fast.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from headrace.chunking.base import Chunker
from headrace.chunking.chars import CharChunker
from headrace.chunking.token import TokenChunker
from headrace.config.settings import Settings, load_settings
from headrace.embedding.base import Embedder
from headrace.embedding.registry import make_embedder
from headrace.errors import ConfigError, RootUnavailableError, StoreError, UnreadableFileError
from headrace.ids import chunk_id
from headrace.ledger.cursors import CursorStore
from headrace.ledger.db import connect, transaction
from headrace.ledger.ledger import DeadLetter, Ledger
from headrace.parsers import PARSERS, ClaudeCodeParser
from headrace.parsers.base import Parser
from headrace.pipeline.plan import Plan, make_plan
from headrace.pipeline.switch import CHUNKING_KEY, ModelSwitch, SwitchReport, chunking_key
from headrace.records import FileRef
from headrace.runtime.durable import DurableOffsets
from headrace.runtime.embed import EmbedStage
from headrace.runtime.produce import FileProcessor, parser_signature
from headrace.runtime.replicate import REPLICA_STAGE, ReconcileReport, Replicator, replica_letter
from headrace.runtime.runner import KEYWORD_ONLY, Runner
from headrace.runtime.stats import RunStats
from headrace.runtime.write import WriteStage
from headrace.sinks.base import Hit
from headrace.sinks.filters import SearchFilters
from headrace.sinks.qdrant_search import replica_search
from headrace.sinks.sqlite import SqliteSink
from headrace.sinks.sqlite_gc import CachePruner, PruneReport, cache_size
from headrace.sinks.sqlite_search import hybrid_search
from headrace.sources.base import SkippedFile
from headrace.sources.fingerprint import content_hash
from headrace.sources.folder import FolderSource

CHUNKER_VERSION = "2"  # 2: chunk positions clamped to their section (JSONL, transcripts)


class Index:
    """A searchable index kept in sync with folders.

    ``path`` is the index file (default: the ``index`` setting, a named index under
    the data directory). ``embedder`` is a registry name (``"minilm"``, ``"none"`` …)
    or an ``Embedder`` instance; by default the index's own model, else the setting.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        settings: Settings | None = None,
        embedder: str | Embedder | None = None,
    ) -> None:
        self.settings = settings or load_settings()
        self.path = Path(path) if path is not None else self.settings.index_path()
        self.conn = connect(self.path)
        self.ledger = Ledger(self.conn)
        self.embedder = self._resolve_embedder(embedder)
        model_id = self.embedder.model_id if self.embedder else None
        self.sink = SqliteSink(self.conn, model_id, self.embedder.dim if self.embedder else None)
        self._runner: Runner | None = None
        self._chunker_built: Chunker | None = None
        self.stopped = False
        self._replica: Any = None  # QdrantReplica when store = qdrant (loaded lazily)
        self.reconciled: ReconcileReport | None = None
        self._pruner: CachePruner | None = None

    def _resolve_embedder(self, embedder: str | Embedder | None) -> Embedder | None:
        """An instance as given; else a name: given, the index's own, or the setting."""
        if embedder is not None and not isinstance(embedder, str):
            self._embedder_label: str | None = None  # an instance has no registry name
            return embedder
        name = embedder or self.ledger.meta("embedder") or self.settings.embedder
        self._embedder_label = name
        return make_embedder(name)

    # -- syncing ------------------------------------------------------------------

    def plan(self, roots: Sequence[str]) -> Plan:
        """What ``ingest(roots)`` would do; reads the tree and the ledger, writes nothing."""
        source = self._source(roots)
        stored = self.ledger.files_under(source.roots)
        return make_plan(
            source.discover(),
            stored,
            source.check_roots(),
            self._signature,
            allow_root_deletion=self.settings.allow_root_deletion,
        )

    def ingest(self, roots: Sequence[str], *, stats: RunStats | None = None) -> RunStats:
        """Sync ``roots`` into the index: add, update, move and delete as needed.

        Raises ``RootUnavailableError`` when a root is missing, unreadable or empty and
        the index holds files under it (unless root deletion is allowed).
        """
        stats = stats or RunStats()
        with self._writer_lock():
            plan = self.plan(roots)
            self._refuse_unsafe(plan)
            self._bind_model()
            self._apply_cheap(plan, stats)
            self._run(plan.to_process, plan.hashes, stats)
            if not self.stopped:  # after the run: nothing in flight needs the cache
                started = time.perf_counter()
                pruned = self._prune_cache()
                stats.add(cache_evicted=pruned.entries, prune_seconds=time.perf_counter() - started)
        return stats

    def ingest_paths(
        self, roots: Sequence[str], paths: Iterable[str], *, stats: RunStats | None = None
    ) -> RunStats:
        """Sync only ``paths`` under ``roots``: live mode's unit of work.

        Each path is added, updated, moved (a vanished path and a new one with its
        content in the same call) or deleted exactly as ``ingest(roots)`` would do it;
        other files are not looked at. Discovery descends only those paths'
        directories (``FolderSource.discover_paths``; the whole roots, stat only, when a
        wanted file vanished and might have moved), so ignore files, globs and the
        symlink guard decide as in a full sync, and the deletion guard holds. No
        ``runs`` row is written: a watcher makes many calls.
        """
        stats = stats or RunStats()
        with self._writer_lock():
            plan = self._plan_paths(roots, {os.path.abspath(p) for p in paths})
            self._refuse_unsafe(plan)
            self._bind_model()
            self._apply_cheap(plan, stats)
            self._run(plan.to_process, plan.hashes, stats, record_run=False)
        return stats

    def _plan_paths(self, roots: Sequence[str], wanted: set[str]) -> Plan:
        """``plan(roots)`` restricted to ``wanted``, plus what a rename needs.

        A rename is only seen when its vanished and its new path are planned
        together, and a watcher may hand them over in separate calls. So a new
        wanted file brings in stored files of the same content that vanished, and
        a vanished wanted file brings in new (unindexed) files of its size.
        """
        source = self._source(roots)
        stored = {p: f for p in wanted if (f := self.ledger.get(p)) is not None}
        hashes: dict[str, str] = {}
        for path in [p for p in wanted if p not in stored and os.path.isfile(p)]:
            with contextlib.suppress(UnreadableFileError):  # processing reports it
                hashes[path] = content_hash(path)
                for old in self.ledger.by_hash(hashes[path]):
                    if old.path not in stored and not os.path.exists(old.path):
                        stored[old.path] = old
        gone = {f.size for f in stored.values() if not os.path.exists(f.path)}

        def keep(item: FileRef | SkippedFile) -> bool:
            if item.path in wanted or item.path in stored:
                return True
            if isinstance(item, SkippedFile):
                return item.unreadable  # protects what is stored under it
            return item.size in gone and self.ledger.get(item.path) is None

        # Only a vanished wanted file needs the whole tree (new files of its size may be
        # its new path); otherwise descend the wanted and stored paths alone, so a
        # watcher's batch costs what its files cost, not what the tree does.
        found = source.discover() if gone else source.discover_paths([*wanted, *stored])
        plan = make_plan(
            (item for item in found if keep(item)),
            {p: f for p, f in stored.items() if any(_within(p, r) for r in source.roots)},
            source.check_roots(),
            self._signature,
            allow_root_deletion=self.settings.allow_root_deletion,
        )
        plan.hashes.update((p, h) for p, h in hashes.items() if p not in plan.hashes)
        return plan

    def retry(self, *, stats: RunStats | None = None) -> RunStats:
        """Process every failed file or file with dead letters again, changed or not."""
        stats = stats or RunStats()
        refs = [ref for p in self.ledger.failed_paths() if (ref := _stat_ref(p, self.ledger))]
        with self._writer_lock():
            self.reconciled = None  # a replica's refused deletes are retried too
            self._bind_model()
            self._run(refs, {}, stats)
        return stats

    def reembed(self, *, stats: RunStats | None = None, reprocess: bool = True) -> SwitchReport:
        """Switch the index to this ``Index``'s embedder (see ``pipeline.switch``).

        Never mixes two models' vectors: chunks made for the new model too are
        embedded in place (cached vectors reused, only missing texts embedded) and
        swapped in one transaction; otherwise the old vectors are dropped first and
        the files re-read (``reprocess``; else a later ``ingest`` of their roots does
        it). Safe to interrupt and run again.
        """
        stats = stats or RunStats()
        if self.settings.store != "sqlite":
            raise ConfigError(
                "reembed supports store = sqlite only (the Qdrant replica is not switched)"
            )
        with self._writer_lock():
            switch = ModelSwitch(
                self.conn,
                self.embedder,
                self._embedder_label,
                stats,
                batch_tokens=self.settings.batch_tokens,
            )
            report = switch.run()
            self._bind_model()
            refs = self._stale_refs() if reprocess else []
            report.files_reprocessed = len(refs)
            if refs:
                self._run(refs, {}, stats)
        return report

    def _stale_refs(self) -> list[FileRef]:
        """Files on disk whose chunks were made for another model (a model switch)."""
        suffix = f"|{self.sink.model_id}"
        rows = list(self.conn.execute("SELECT path, signature FROM files"))
        refs = [_stat_ref(p, self.ledger) for p, sig in rows if not sig.endswith(suffix)]
        return [ref for ref in refs if ref is not None]

    def prune_cache(
        self, *, full: bool = False, other_models: bool = False, max_steps: int | None = None
    ) -> PruneReport:
        """Keep the embedding cache within ``embed_cache_max_mb`` (``sinks.sqlite_gc``).

        By default a pass starts only when the cache is over its bound and evicts vectors
        no chunk or staged row uses, oldest first, then other models' vectors. ``full``:
        every vector no chunk uses, now (``headrace gc``); ``other_models`` adds other
        models' vectors of current texts. ``max_steps`` bounds this call's work (a
        watcher's idle step); an unfinished pass goes on at the next call. Takes the
        writer lock: ``StoreError`` while another process writes the index.
        """
        with self._writer_lock():
            return self._prune_cache(full=full, other_models=other_models, max_steps=max_steps)

    def _prune_cache(
        self, *, full: bool = False, other_models: bool = False, max_steps: int | None = None
    ) -> PruneReport:
        if self._pruner is None:
            self._pruner = CachePruner(self.conn, self.settings.embed_cache_max_mb << 20)
        pruner = self._pruner
        if full:
            pruner.start(full=True, other_models=other_models)
        elif not pruner.active:
            if not pruner.due():
                return PruneReport()
            pruner.start()
        steps = 0
        while (max_steps is None or steps < max_steps) and pruner.step():
            steps += 1
        return pruner.report

    def compact(self, *, vacuum: bool = False) -> None:
        """Fold the write-ahead log into the file; ``vacuum``: first rewrite the file
        without its free pages (deleting rows only frees pages for reuse inside the
        file). Takes the writer lock; a vacuum rewrites the whole file."""
        with self._writer_lock():
            if vacuum:
                self.conn.execute("VACUUM")
            self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def request_stop(self) -> None:
        """Ask a running ``ingest`` to stop gracefully (safe from a signal handler)."""
        self.stopped = True
        if self._runner is not None:
            self._runner.request_stop()

    def _run(
        self,
        refs: Sequence[FileRef],
        hashes: dict[str, str],
        stats: RunStats,
        *,
        record_run: bool = True,
    ) -> None:
        stats.files_total = len(refs)
        stats.bytes_total = sum(r.size for r in refs)
        if not record_run:
            if refs and not self.stopped:
                with transaction(self.conn):
                    self.sink.clear_stale()  # leftovers of a stopped call
                self._runner = self._make_runner(stats)
                try:
                    self._runner.run(refs, hashes)
                finally:
                    self._runner = None
            return
        run_id = self._record_run_start()
        status = "failed"
        try:
            if refs and not self.stopped:
                self._runner = self._make_runner(stats)
                self._runner.run(refs, hashes)
                status = "stopped" if self.stopped else "ok"
            else:
                status = "ok"
        finally:
            self._runner = None
            with transaction(self.conn):
                self.ledger.finish_run(run_id, status, stats.snapshot())

    def _record_run_start(self) -> int:
        with transaction(self.conn):
            self.sink.clear_stale()  # leftovers of a crashed run (cursors resume)
            return self.ledger.start_run()

    def _make_runner(self, stats: RunStats) -> Runner:
        s = self.settings
        processor = FileProcessor(
            self._chunker(),
            self._signature,
            s.max_line_bytes,
            s.max_section_chars,
            # It only reads (resume points, occurrence lookups): a 2 MB page cache keeps
            # a huge file's lookups from growing the process (flat RSS, issue 3).
            cursors=CursorStore(connect(self.path, readonly=True)),
            segment_bytes=s.segment_bytes,
            durable=(durable := DurableOffsets()),
            make_parser=self._configured_parser(),
        )
        # Read-only, with a small page cache: it only probes embed_cache by hash.
        lookup = SqliteSink(connect(self.path, readonly=True), self.sink.model_id, self.sink.dim)
        embed = EmbedStage(self.embedder, lookup.cached, stats, s.batch_tokens)
        write = WriteStage(
            self.conn, self.sink, self.ledger, stats, self._replicator(), durable=durable
        )
        lean: dict[str, int] = {}
        if self.embedder is None:  # keyword-only: flat RSS under 100 MB (runner.KEYWORD_ONLY)
            self.conn.execute("PRAGMA cache_size=-8000")
            lean = KEYWORD_ONLY
        return Runner(processor, embed, write, workers=s.workers, queue_bytes=s.queue_bytes, **lean)

    def _apply_cheap(self, plan: Plan, stats: RunStats) -> None:
        """Deletions, renames and touches: ledger-only or row moves, one transaction."""
        with transaction(self.conn):
            letters = 0
            for path in plan.deleted:
                old = self.ledger.get(path)
                if old is not None:
                    refused = None
                    if (replicator := self._replicator()) is not None:
                        refused = replicator.drop(replicator.snapshot(old.id))
                    self.sink.remove(old.id)
                    self.ledger.forget(path)
                    if refused is not None:  # the index follows the source regardless
                        self.ledger.replace_dead_letters(path, [replica_letter(path, refused)])
                        letters += 1
            for old_path, ref in plan.renamed:
                letters += self._move(old_path, ref)
            for ref in plan.touched:
                self.ledger.touch(ref)
        stats.add(
            deleted=len(plan.deleted),
            renamed=len(plan.renamed),
            touched=len(plan.touched),
            unchanged=plan.unchanged,
            dead_letters=letters,
        )

    def _move(self, old_path: str, ref: FileRef) -> int:
        """Rename a file's rows and chunk ids; the number of dead letters it left (0/1)."""
        old = self.ledger.get(old_path)
        if old is None:
            return 0
        seen: dict[str, int] = {}
        new_ids: dict[int, str] = {}
        for rowid, text_hash in self.conn.execute(
            "SELECT rowid, text_hash FROM chunks WHERE file_id = ? ORDER BY ordinal", (old.id,)
        ):
            occurrence = seen.get(text_hash, 0)
            seen[text_hash] = occurrence + 1
            new_ids[rowid] = chunk_id(ref.path, text_hash, occurrence)
        replicator = self._replicator()
        before = replicator.snapshot(old.id) if replicator else {}
        self.sink.rekey(old.id, new_ids)
        self.ledger.move(old_path, ref)
        if replicator is not None:
            # New ids: re-sent, the old points deleted. A refusal leaves the rename
            # standing; reconciliation repairs the replica later.
            refused = replicator.move(old.id, before)
            if refused is not None:
                self.ledger.replace_dead_letters(ref.path, [replica_letter(ref.path, refused)])
                return 1
        return 0

    def _refuse_unsafe(self, plan: Plan) -> None:
        if plan.protected and not self.settings.allow_root_deletion:
            problems = "; ".join(f"{p.root}: {p.reason}" for p in plan.root_problems)
            if problems:
                raise RootUnavailableError(
                    f"refusing to delete {len(plan.protected)} indexed files under roots that"
                    f" look unavailable ({problems}); pass --allow-root-deletion if intended"
                )

    def _bind_model(self) -> None:
        with transaction(self.conn):
            self.sink.bind_model()
            if self.ledger.meta("embedder") is None and self._embedder_label is not None:
                # Lets later commands (search, status) load the index's own model.
                self.ledger.set_meta("embedder", self._embedder_label)
            if self.ledger.meta(CHUNKING_KEY) is None:  # lets a model switch skip re-reading
                self.ledger.set_meta(CHUNKING_KEY, chunking_key(self.embedder))
        replicator = self._replicator()
        if replicator is not None and self.reconciled is None:
            # Once per Index (and on retry): repair what a crash, a refused delete or
            # an outside change left different.
            self.reconciled = replicator.reconcile()
            if self.reconciled.refused == 0:
                with transaction(self.conn):
                    self.ledger.clear_dead_letters(REPLICA_STAGE)

    def _replicator(self) -> Replicator | None:
        """The Qdrant replica's writer when ``store = qdrant``, else ``None``."""
        s = self.settings
        if s.store == "sqlite":
            return None
        if s.store != "qdrant":
            raise ConfigError(f"unknown store {s.store!r}: use sqlite or qdrant")
        if self.embedder is None:
            raise ConfigError("store = qdrant needs an embedder (vectors), not --embedder none")
        if self._replica is None:
            from headrace.sinks.qdrant import QdrantReplica, config_from

            config = config_from(
                url=s.qdrant_url,
                api_key=s.qdrant_api_key,
                path=s.qdrant_path,
                collection=s.qdrant_collection,
                timeout_s=s.qdrant_timeout_s,
            )
            self._replica = QdrantReplica(
                config, dim=self.embedder.dim, model_id=self.embedder.model_id, owner=self._owner()
            )
        return Replicator(self.conn, self._replica, self.embedder.model_id)

    def _owner(self) -> str:
        """This index's id in a shared collection (created once, kept in ``meta``)."""
        owner = self.ledger.meta("replica_owner")
        if owner is None:
            owner = uuid.uuid4().hex
            with transaction(self.conn):
                self.ledger.set_meta("replica_owner", owner)
        return owner

    def _configured_parser(self) -> Callable[[], Parser] | None:
        """The ``parser`` setting as a factory (every file gets it), else ``None``."""
        s = self.settings
        if s.parser is None:
            return None
        if s.parser not in PARSERS:
            raise ConfigError(f"unknown parser {s.parser!r}; known: {', '.join(PARSERS)}")
        if s.parser == ClaudeCodeParser.name:
            return functools.partial(
                ClaudeCodeParser, max_section_chars=s.max_section_chars, concepts=s.concepts
            )
        return functools.partial(PARSERS[s.parser], max_section_chars=s.max_section_chars)

    def _source(self, roots: Sequence[str]) -> FolderSource:
        s = self.settings
        return FolderSource(roots, include=s.include, exclude=s.exclude)

    def _chunker(self) -> Chunker:
        # Built once per Index: cloning the tokenizer costs ~30 ms, paid by every run
        # (a watcher runs once per batch). Chunkers keep no state between files.
        if self._chunker_built is None:
            self._chunker_built = self._build_chunker()
        return self._chunker_built

    def _build_chunker(self) -> Chunker:
        if self.embedder is None:
            # Keyword-only: sized in characters, no tokenizer (measured ~1 MB/s with
            # the tokenizer; README, "Large and growing files"). Binding a model
            # later changes the signature, so such files are re-chunked then.
            return CharChunker()
        tokenizer, limit = self._tokenizer()
        return TokenChunker(
            tokenizer, max_tokens=limit, overlap_tokens=self.settings.overlap_tokens
        )

    def _tokenizer(self) -> tuple[Any, int]:
        if self.embedder is not None:
            return self.embedder.tokenizer(), self.embedder.max_tokens
        from headrace.embedding.minilm import MiniLMEmbedder

        # A keyword-only index still sizes chunks as the default model would, so that
        # it can later be embedded without re-chunking.
        fallback = MiniLMEmbedder()
        return fallback.tokenizer(), fallback.max_tokens

    def _signature(self, ref: FileRef) -> str:
        s = self.settings
        forced = self._configured_parser()
        parser = f"{(p := forced()).name}@{p.version}" if forced else parser_signature(ref.path)
        return (
            f"{parser}|chunker{CHUNKER_VERSION}{'' if self.embedder else ':chars'}"
            f":o{s.overlap_tokens}"
            f":s{s.max_section_chars}:l{s.max_line_bytes}|{self.sink.model_id}"
        )

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a+") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as exc:
                raise StoreError(f"{self.path}: another headrace process is writing") from exc
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- reading ------------------------------------------------------------------

    def search(
        self,
        query: str,
        k: int = 10,
        *,
        mode: str = "hybrid",
        filters: SearchFilters | None = None,
    ) -> list[Hit]:
        """Top ``k`` chunks for ``query`` meeting ``filters`` (see ``SearchFilters``).

        Vector and keyword results fused by RRF (``mode="hybrid"``); with ``store =
        qdrant`` the vectors are Qdrant's (filters as payload conditions) and the
        keyword half is the embedded full-text index (``sinks.qdrant_search``).
        """
        embedder = self.embedder if self.sink.has_vectors and mode != "keyword" else None
        if embedder is not None:
            self.sink.check_model()  # another model's query vector would rank nonsense
        if embedder is not None and self.settings.store == "qdrant":
            self._replicator()
            vector = embedder.embed([query])[0]
            return replica_search(
                self._replica, self.conn, query, vector, k, mode=mode, filters=filters
            )
        return hybrid_search(self.conn, query, k, embedder=embedder, mode=mode, filters=filters)

    def status(self) -> dict[str, Any]:
        """Files by state, chunks, dead letters, model, last run and size on disk."""
        size = sum(p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists())
        return {
            "index": str(self.path),
            "model": self.ledger.meta("model"),
            "files": self.ledger.counts(),
            "embedding_cache": (cached := cache_size(self.conn)).entries,
            "embedding_cache_bytes": cached.bytes,
            "free_bytes": _pragma(self.conn, "freelist_count") * _pragma(self.conn, "page_size"),
            "last_run": self.ledger.last_run(),
            "size_bytes": size,
        }

    def failed(self) -> list[DeadLetter]:
        """Dead letters: every failure with its stage, reason and location."""
        return self.ledger.dead_letters()

    def export(self) -> Iterator[dict[str, Any]]:
        """A canonical dump: one dict per chunk, ordered by source and position."""
        from headrace.sinks.sqlite_export import export_rows

        return export_rows(self.conn, has_vectors=self.sink.has_vectors)

    def close(self) -> None:
        if self._replica is not None:
            self._replica.close()
            self._replica = None
        self.conn.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pragma(conn: Any, name: str) -> int:
    return int(conn.execute(f"PRAGMA {name}").fetchone()[0])


def _within(path: str, root: str) -> bool:
    return path.startswith(root.rstrip("/") + "/")


def _stat_ref(path: str, ledger: Ledger) -> FileRef | None:
    stored = ledger.get(path)
    try:
        st = os.stat(path)
    except OSError:
        return None
    root = stored.root if stored else os.path.dirname(path)
    return FileRef(root, os.path.relpath(path, root), path, st.st_size, st.st_mtime_ns, st.st_ino)


__all__ = ["Index"]
