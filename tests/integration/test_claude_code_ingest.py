"""Claude Code transcripts end to end: SQLite ledger + Qdrant replica (client local mode).

No Qdrant server can run here; the client's local mode (in memory, or a folder
for the restart tests) stands in, and the server path differs only in the
connection. Embeddings come from the shipped HashEmbedder.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from qdrant_client import QdrantClient
from qdrant_client.http import models

from headrace.api import Index
from headrace.config.settings import load_settings
from headrace.errors import StoreError
from headrace.presets import apply_settings, get_preset
from headrace.runtime.replicate import Diff, Replicator
from headrace.sinks.filters import SearchFilters
from headrace.sinks.qdrant import QdrantConfig, QdrantReplica, point_id
from headrace.testing.embedders import HashEmbedder
from headrace.testing.qdrant import FlakyQdrantClient

FIXTURES = Path(__file__).parents[1] / "fixtures" / "claude_code"
PROJECT = "-home-marco-projects-spotter"
SESSION = "4d5611e5-241a-462a-8d15-5122611a9569"


@pytest.fixture
def projects(tmp_path: Path) -> Path:
    root = tmp_path / "projects"
    shutil.copytree(FIXTURES / PROJECT, root / PROJECT)
    return root


@pytest.fixture
def inner() -> Iterator[QdrantClient]:
    client = QdrantClient(location=":memory:")
    yield client
    client.close()


def open_index(path: Path, client: Any = None, store: str = "qdrant") -> Index:
    settings = apply_settings(
        load_settings(index=str(path), store=store, qdrant_path=":memory:"),
        get_preset("claude-code"),
    )
    idx = Index(settings=settings, embedder=HashEmbedder())
    if client is not None:
        embedder = idx.embedder
        assert embedder is not None
        idx._replica = QdrantReplica(
            QdrantConfig(path=":memory:", batch_size=16),
            dim=embedder.dim,
            model_id=embedder.model_id,
            owner=idx._owner(),
            client=client,
            sleep=lambda _s: None,
        )
    return idx


def sqlite_ids(idx: Index) -> set[str]:
    return {row[0] for row in idx.conn.execute("SELECT id FROM chunks")}


def qdrant_ids(idx: Index) -> set[str]:
    replicator = idx._replicator()
    assert replicator is not None
    found = list(replicator.replica.ids())
    assert len(found) == len(set(found))
    return set(found)


def assert_mirrored(idx: Index) -> None:
    ids = sqlite_ids(idx)
    assert ids
    assert qdrant_ids(idx) == ids
    assert idx._replica.count() == len(ids)  # nothing duplicated


def test_ingest_mirrors_every_chunk_and_both_stores_filter_alike(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    with open_index(tmp_path / "i.sqlite", inner) as idx:
        stats = idx.ingest([str(projects)]).snapshot()
        assert stats["files_done"] == 4
        assert stats["dead_letters"] == 0
        assert_mirrored(idx)
        metas = [json.loads(row[0]) for row in idx.conn.execute("SELECT metadata FROM chunks")]
        for f in every_filter(metas):
            assert 0 < sum(meets(m, f) for m in metas) < len(metas), f  # each one narrows
            for mode, k in (("vector", 10), ("hybrid", 10), ("keyword", 10)):
                query = "phoenix server in background"
                in_qdrant = idx.search(query, k, mode=mode, filters=f)
                idx.settings = idx.settings.model_copy(update={"store": "sqlite"})
                in_sqlite = idx.search(query, k, mode=mode, filters=f)
                idx.settings = idx.settings.model_copy(update={"store": "qdrant"})
                assert in_qdrant, (f, mode)
                # Texts, not ids: a text repeated in a session ties exactly, in any order.
                assert [h.text for h in in_qdrant] == [h.text for h in in_sqlite], (f, mode)
                assert all(meets(h.metadata, f) for h in in_qdrant), (f, mode)


def every_filter(metas: list[dict[str, Any]]) -> list[SearchFilters]:
    """One filter per flag (values taken from the data), plus combinations."""
    stamps = sorted(m["ts"] for m in metas)
    path = next(f for m in metas for f in m["files"])
    concept = next(c for m in metas for c in m["concepts"])
    middle = stamps[len(stamps) // 2]
    rich = next(m for m in metas if m["tools"] and m["concepts"] and m["file_names"])
    return [
        SearchFilters(project="spotter"),  # the real name, not the mangled folder
        SearchFilters(session=SESSION),
        SearchFilters(tool="Bash"),
        SearchFilters(file="app.js"),
        SearchFilters(file=path),
        SearchFilters(concept=concept),
        SearchFilters(since=middle),
        SearchFilters(until=middle),
        SearchFilters(since=stamps[1], until=stamps[-2]),
        SearchFilters(
            project=rich["project"],
            session=rich["session"],
            tool=rich["tools"][0],
            concept=rich["concepts"][0],
            file=rich["file_names"][0],
            since=rich["ts"],
            until=rich["ts"] + 86400,
        ),
    ]


def meets(meta: Mapping[str, Any], f: SearchFilters) -> bool:
    return (
        (f.project is None or meta["project"] == f.project)
        and (f.session is None or meta["session"] == f.session)
        and (f.tool is None or f.tool in meta["tools"])
        and (f.concept is None or f.concept in meta["concepts"])
        and (f.file is None or f.file in meta[f.file_field])
        and (f.since is None or meta["ts"] >= f.since)
        and (f.until is None or meta["ts"] <= f.until)
    )


def test_a_transcript_growing_line_by_line_ends_as_a_one_shot_ingest(
    tmp_path: Path, inner: QdrantClient
) -> None:
    source = (FIXTURES / PROJECT / "tool_heavy.jsonl").read_bytes().splitlines(keepends=True)
    root = tmp_path / "projects"
    live = root / PROJECT / "d6e0bada.jsonl"
    live.parent.mkdir(parents=True)
    live.write_bytes(b"")
    with open_index(tmp_path / "grown.sqlite", inner) as idx:
        for line in source:
            with live.open("ab") as handle:
                handle.write(line)
            idx.ingest([str(root)])
            assert qdrant_ids(idx) == sqlite_ids(idx)
        grown = list(idx.export())
    with open_index(tmp_path / "once.sqlite", QdrantClient(location=":memory:")) as idx:
        idx.ingest([str(root)])
        once = list(idx.export())
        assert_mirrored(idx)
    assert grown == once
    assert len(once) >= 2


def test_deleting_a_session_removes_its_points(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    with open_index(tmp_path / "i.sqlite", inner) as idx:
        idx.ingest([str(projects)])
        gone = {
            h.chunk_id for h in idx.search("summary", 200, filters=SearchFilters(session=SESSION))
        }
        assert gone
        (projects / PROJECT / f"{SESSION}.jsonl").unlink()
        shutil.rmtree(projects / PROJECT / SESSION)
        assert idx.ingest([str(projects)]).snapshot()["deleted"] == 2
        assert_mirrored(idx)
        assert not gone & qdrant_ids(idx)
        assert idx.search("summary", 10, filters=SearchFilters(session=SESSION)) == []
        ids = [point_id(c) for c in gone]
        assert inner.retrieve(idx.settings.qdrant_collection, ids=ids) == []


def test_a_refused_delete_leaves_a_dead_letter_not_a_stopped_run(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    flaky = FlakyQdrantClient(inner)
    with open_index(tmp_path / "i.sqlite", flaky) as idx:
        idx.ingest([str(projects)])
        kept = heavy_ids(idx)
        gone = {
            h.chunk_id for h in idx.search("summary", 200, filters=SearchFilters(session=SESSION))
        }
        assert gone
        session = [projects / PROJECT / f"{SESSION}.jsonl"]
        session += sorted((projects / PROJECT / SESSION).rglob("*.jsonl"))
        session[0].unlink()
        shutil.rmtree(projects / PROJECT / SESSION)
        # Every delete refused (HTTP 400): the points stay behind in Qdrant.
        flaky.failures["delete"] = {n: "bad-request" for n in range(1, 50)}
        stats = idx.ingest([str(projects)]).snapshot()  # no exception: the run goes on
        assert (stats["deleted"], stats["dead_letters"]) == (2, 2)
        letters = idx.failed()
        assert sorted(d.path for d in letters) == sorted(str(p) for p in session)
        assert {(d.stage, d.error_type) for d in letters} == {("replica", "ReplicaRejectedError")}
        assert all("reconciliation" in d.message for d in letters)
        assert gone <= qdrant_ids(idx)  # orphans in Qdrant …
        assert not gone & sqlite_ids(idx)  # … but not in the index,
        for mode in ("vector", "hybrid"):  # and never in a result
            hits = idx.search("summary", 200, mode=mode)
            assert hits
            assert not gone & {h.chunk_id for h in hits}, mode
        assert kept <= sqlite_ids(idx)
    flaky.failures.clear()  # the cause is gone; the next start reconciles
    with open_index(tmp_path / "i.sqlite", flaky) as idx:
        idx.ingest([str(projects)])
        assert idx.reconciled is not None
        assert (idx.reconciled.orphaned, idx.reconciled.refused) == (len(gone), 0)
        assert idx.failed() == []
        assert_mirrored(idx)


def test_injected_timeouts_and_errors_lose_nothing_and_duplicate_nothing(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    failures = {
        "upsert": {1: "timeout", 3: "unavailable", 4: "ack-lost", 7: "timeout", 9: "ack-lost"},
        "delete": {1: "unavailable"},
        "scroll": {1: "timeout"},
    }
    flaky = FlakyQdrantClient(inner, failures)
    with open_index(tmp_path / "i.sqlite", flaky) as idx:
        idx.ingest([str(projects)])
        assert_mirrored(idx)
        assert idx._replica.retries >= 5
        (projects / PROJECT / "short.jsonl").write_text("", encoding="utf-8")  # shrunk to nothing
        idx.ingest([str(projects)])
        assert_mirrored(idx)


def test_a_store_refusing_everything_stops_the_run_and_the_next_run_repairs(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    broken = FlakyQdrantClient(inner, {"upsert": {3: "forbidden"}})  # 403: not one file's data
    with open_index(tmp_path / "i.sqlite", broken) as idx:
        with pytest.raises(StoreError, match="permanent"):
            idx.ingest([str(projects)])
        assert sqlite_ids(idx) == set()  # the window rolled back: no file is recorded
        assert idx.ledger.counts().get("indexed", 0) == 0
        assert qdrant_ids(idx)  # but batches 1-2 reached Qdrant
    with open_index(tmp_path / "i.sqlite", inner) as idx:
        idx.ingest([str(projects)])
        assert idx.reconciled is not None
        assert idx.reconciled.orphaned > 0
        assert_mirrored(idx)


def test_a_crash_after_the_acknowledgement_replays_idempotently(
    tmp_path: Path, projects: Path, inner: QdrantClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    original = Replicator.send

    def send_then_crash(self: Replicator, diff: Diff) -> None:
        original(self, diff)
        raise RuntimeError("killed between the acknowledgement and the commit")

    with open_index(tmp_path / "i.sqlite", inner) as idx:
        monkeypatch.setattr(Replicator, "send", send_then_crash)
        with pytest.raises(RuntimeError):
            idx.ingest([str(projects)])
        monkeypatch.setattr(Replicator, "send", original)
        assert sqlite_ids(idx) == set()
        assert qdrant_ids(idx)
    with open_index(tmp_path / "i.sqlite", inner) as idx:
        idx.ingest([str(projects)])
        assert_mirrored(idx)


def test_reconcile_on_start_repairs_missing_and_orphaned_points(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    with open_index(tmp_path / "i.sqlite", inner) as idx:
        idx.ingest([str(projects)])
        ids = sorted(sqlite_ids(idx))
        owner, collection = idx._owner(), idx.settings.qdrant_collection
    lost = ids[:5]
    inner.delete(
        collection, points_selector=models.PointIdsList(points=[point_id(c) for c in lost])
    )
    orphan = "ab" * 16
    inner.upsert(
        collection,
        points=[
            models.PointStruct(id=point_id(orphan), vector=[0.1] * 384, payload={"owner": owner})
        ],
    )
    with open_index(tmp_path / "i.sqlite", inner) as idx:
        idx.ingest([str(projects)])  # nothing changed on disk
        assert idx.reconciled is not None
        assert (idx.reconciled.missing, idx.reconciled.orphaned) == (5, 1)
        assert_mirrored(idx)


def test_the_local_mode_persists_across_processes_in_a_folder(
    tmp_path: Path, projects: Path
) -> None:
    def index() -> Index:
        settings = apply_settings(
            load_settings(
                index=str(tmp_path / "i.sqlite"), store="qdrant", qdrant_path=str(tmp_path / "q")
            ),
            get_preset("claude-code"),
        )
        return Index(settings=settings, embedder=HashEmbedder())

    (projects / PROJECT / SESSION).mkdir(exist_ok=True)
    shutil.rmtree(projects / PROJECT / SESSION)  # a small corpus: the folder mode is slow
    with index() as idx:
        idx.ingest([str(projects)])
        expected = sqlite_ids(idx)
    with index() as idx:
        idx.ingest([str(projects)])
        assert idx.reconciled is not None
        assert (idx.reconciled.missing, idx.reconciled.orphaned) == (0, 0)
        assert qdrant_ids(idx) == expected


def test_appends_to_a_large_transcript_resume_at_the_last_turn(
    tmp_path: Path, inner: QdrantClient
) -> None:
    head = (FIXTURES / PROJECT / f"{SESSION}.jsonl").read_bytes()  # ~100 KB: gets cursors
    tail = (FIXTURES / PROJECT / "tool_heavy.jsonl").read_bytes().splitlines(keepends=True)
    live = tmp_path / "projects" / PROJECT / f"{SESSION}.jsonl"
    live.parent.mkdir(parents=True)
    live.write_bytes(head)
    resumed = 0
    with open_index(tmp_path / "grown.sqlite", inner) as idx:
        idx.ingest([str(live.parent.parent)])
        for line in tail[::3]:
            with live.open("ab") as handle:
                handle.write(line)
            resumed += idx.ingest([str(live.parent.parent)]).snapshot()["bytes_resumed"]
            assert qdrant_ids(idx) == sqlite_ids(idx)
        grown = list(idx.export())
    assert resumed > 0  # appends were read from the last turn's start, not from byte 0
    with open_index(tmp_path / "once.sqlite", QdrantClient(location=":memory:")) as idx:
        idx.ingest([str(live.parent.parent)])
        assert list(idx.export()) == grown


def test_a_renamed_transcript_moves_its_points(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    with open_index(tmp_path / "i.sqlite", inner) as idx:
        idx.ingest([str(projects)])
        before = qdrant_ids(idx)
        old = projects / PROJECT / "tool_heavy.jsonl"
        old.rename(old.with_name("moved.jsonl"))
        assert idx.ingest([str(projects)]).snapshot()["renamed"] == 1
        assert_mirrored(idx)
        assert qdrant_ids(idx) != before  # ids derive from the path: re-sent, old ones gone
        hits = idx.search("phoenix background", 50, filters=SearchFilters(file=None))
        assert all(not h.path.endswith("tool_heavy.jsonl") for h in hits)


# -- a point Qdrant refuses: that file's dead letter, never a stopped run -------------

HEAVY = "tool_heavy.jsonl"


def refuse_heavy(ordinal: int | None = None, text: str | None = None) -> Any:
    """A ``refuse`` predicate: points of tool_heavy.jsonl (one ordinal, or containing text)."""

    def bad(point: Any) -> bool:
        payload = point.payload or {}
        return str(payload.get("path", "")).endswith(HEAVY) and (
            (ordinal is not None and payload.get("ordinal") == ordinal)
            or (text is not None and text in str(payload.get("text", "")))
        )

    return bad


def heavy_ids(idx: Index) -> set[str]:
    rows = idx.conn.execute(
        "SELECT c.id FROM chunks c JOIN files f ON f.id = c.file_id WHERE f.path LIKE ?",
        (f"%{HEAVY}",),
    )
    return {row[0] for row in rows}


def test_a_refused_point_dead_letters_its_file_and_retry_reattempts_it(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    with open_index(tmp_path / "ref.sqlite", QdrantClient(location=":memory:")) as ref:
        ref.ingest([str(projects)])
        everything, heavy = sqlite_ids(ref), heavy_ids(ref)
    assert len(heavy) >= 2
    flaky = FlakyQdrantClient(inner, {"upsert": {2: "timeout"}}, refuse=refuse_heavy(ordinal=1))
    with open_index(tmp_path / "i.sqlite", flaky) as idx:
        stats = idx.ingest([str(projects)]).snapshot()  # no exception: the run goes on
        assert (stats["files_done"], stats["files_failed"]) == (3, 1)
        assert idx._replica.splits >= 1
        assert idx._replica.retries >= 1
        [letter] = idx.failed()
        assert letter.path == str(projects / PROJECT / HEAVY)
        assert (letter.stage, letter.error_type, letter.attempts) == (
            "sink",
            "ReplicaRejectedError",
            1,
        )
        assert "refused 1 of" in letter.message
        assert "400" in letter.message
        assert letter.line is not None  # where the refused chunk starts
        assert letter.offset is not None
        stored = idx.ledger.get(letter.path)
        assert stored is not None
        assert stored.state == "failed"
        # Nothing lost: every other file complete; the refused file's accepted points
        # were taken back, so both stores hold the same, once each.
        assert sqlite_ids(idx) == everything - heavy
        assert_mirrored(idx)
        for table in ("chunks_fts", "chunks_vec"):  # rolled back with the savepoint
            rows = idx.conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            assert rows == len(everything - heavy), table
        assert idx.search("Bash", 50, filters=SearchFilters(file=HEAVY)) == []

        assert idx.retry().snapshot()["files_failed"] == 1  # still refused: attempt 2
        assert [d.attempts for d in idx.failed()] == [2]
        assert_mirrored(idx)

        flaky.refuse = None  # the cause is fixed (a server limit raised, …)
        again = idx.retry().snapshot()
        assert (again["files_done"], again["files_failed"], again["dead_letters"]) == (1, 0, 0)
        assert idx.failed() == []
        assert sqlite_ids(idx) == everything
        assert_mirrored(idx)


def test_a_refused_new_version_keeps_the_old_one_in_both_stores(
    tmp_path: Path, projects: Path, inner: QdrantClient
) -> None:
    flaky = FlakyQdrantClient(inner)
    with open_index(tmp_path / "i.sqlite", flaky) as idx:
        idx.ingest([str(projects)])
        before = sqlite_ids(idx)
        heavy = projects / PROJECT / HEAVY
        line = next(
            r for r in heavy.read_text(encoding="utf-8").splitlines() if '"type":"user"' in r
        )
        # Long enough for several chunks; only the last one carries the refused word,
        # so the others are accepted first and must be taken back.
        words = " ".join(f"ferry{n} leaves at dawn." for n in range(900))
        prompt = f'"content":"{words} zebraquartz"'
        with heavy.open("a", encoding="utf-8") as handle:
            handle.write(_with_content(line, prompt) + "\n")
        flaky.refuse = refuse_heavy(text="zebraquartz")
        stats = idx.ingest([str(projects)]).snapshot()
        assert stats["files_failed"] == 1
        assert idx._replica.splits >= 1
        assert sqlite_ids(idx) == before  # the old version stays, in SQLite …
        assert_mirrored(idx)  # … and in Qdrant (the touched points restored)
        assert idx.search("zebraquartz", 5, mode="keyword") == []
        flaky.refuse = None
        assert idx.retry().snapshot()["files_done"] == 1
        assert_mirrored(idx)
        assert idx.search("zebraquartz", 5, mode="keyword")


def _with_content(record: str, content: str) -> str:
    data = json.loads(record)
    assert data["type"] == "user", data["type"]
    data["message"] = {"role": "user", **json.loads("{" + content + "}")}
    data["uuid"] = "0f0f0f0f-0000-4000-8000-000000000001"
    return json.dumps(data, separators=(",", ":"))


def test_headrace_retry_reattempts_a_refused_file(tmp_path: Path, projects: Path) -> None:
    folder = tmp_path / "q"
    shutil.rmtree(projects / PROJECT / SESSION)  # small: the folder mode is slow
    (projects / PROJECT / f"{SESSION}.jsonl").unlink()
    client = QdrantClient(path=str(folder))
    with open_index(
        tmp_path / "i.sqlite", FlakyQdrantClient(client, refuse=refuse_heavy(1))
    ) as idx:
        assert idx.ingest([str(projects)]).snapshot()["files_failed"] == 1
        expected = len(sqlite_ids(idx))
    client.close()
    env = {**os.environ, "HEADRACE_EMBEDDER": "hash", "HF_HUB_OFFLINE": "1"}
    args = ["--index", str(tmp_path / "i.sqlite"), "--preset", "claude-code"]
    args += ["--store", "qdrant", "--qdrant-path", str(folder), "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "headrace", "--quiet", "retry", *args],
        env=env, cwd=tmp_path, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["files_done"] == 1
    client = QdrantClient(path=str(folder))
    try:
        with open_index(tmp_path / "i.sqlite", client) as idx:
            assert idx.failed() == []
            assert len(sqlite_ids(idx)) > expected
            assert_mirrored(idx)
    finally:
        client.close()
