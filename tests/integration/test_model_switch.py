"""Switching an index between models (issue 3): ``Index.reembed`` / ``headrace reembed``.

Two hash test embedders of different dimensions stand for two models (their
``model_id`` differ, their tokenizer and limit do not, so they chunk alike and the
switch is done in place). Checked: the switched index equals a clean build with the
new model (ids, texts, positions, vector digests); vectors of two models never sit
in one index, also after a failure in the middle of the switch; switching back to a
model whose vectors are cached calls it 0 times; ``none`` <-> a model re-reads the
files; search works after every switch; ``kill -9`` at random points of a switch
leaves the index wholly on one model.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import apsw
import pytest
from tests.conftest import write_corpus

from headrace import Index, Settings
from headrace.embedding.base import Embedder
from headrace.errors import ModelError, ModelMismatchError, StoreError
from headrace.pipeline import switch
from headrace.testing.embedders import FailingEmbedder, HashEmbedder

LINES = "\n".join(
    f'{{"id": {n}, "msg": "shard {n % 7} replay {n % 3} ledger entry number {n}"}}'
    for n in range(60)
)
CORPUS = {
    "keys.md": "# Keys\n\nRotate the signing keys every ninety days.\n\n## Where\n\nA vault.\n",
    "backups.md": "# Backups\n\nBackups run nightly and are restored weekly.\n",
    "dup.txt": "same words\n\nsame words\n\nother words\n",  # a text twice: occurrences
    "log.jsonl": LINES + "\n",
}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "c", CORPUS)


def _build(path: Path, root: Path, embedder: Embedder | str) -> None:
    with Index(path, settings=Settings(), embedder=embedder) as idx:
        idx.ingest([str(root)])


def _export(path: Path, embedder: Embedder | str) -> list[dict[str, Any]]:
    with Index(path, settings=Settings(), embedder=embedder) as idx:
        return list(idx.export())


def _model(path: Path) -> str:
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'model'").fetchone()
        return str(row[0])
    finally:
        conn.close()


def _clean(tmp_path: Path, root: Path, embedder: Embedder | str, name: str) -> list[dict[str, Any]]:
    path = tmp_path / f"clean-{name}.sqlite"
    _build(path, root, embedder)
    return _export(path, embedder)


def _distinct_texts(rows: list[dict[str, Any]]) -> int:
    return len({r["text"] for r in rows})


def test_switch_in_place_equals_a_clean_build_and_back_costs_no_model_call(
    tmp_path: Path, root: Path
) -> None:
    a, b = HashEmbedder(384), HashEmbedder(64)
    clean_a = _clean(tmp_path, root, HashEmbedder(384), "a")
    clean_b = _clean(tmp_path, root, HashEmbedder(64), "b")
    assert {r["vector_digest"] for r in clean_a}.isdisjoint({r["vector_digest"] for r in clean_b})
    path = tmp_path / "idx.sqlite"
    _build(path, root, a)

    with Index(path, settings=Settings(), embedder=b) as idx:
        report = idx.reembed()
        assert (report.old_model, report.new_model, report.mode) == (
            a.model_id,
            b.model_id,
            "in-place",
        )
        assert report.files_reprocessed == 0  # nothing re-read
        assert report.chunks == len(clean_b)
        assert b.texts_embedded == report.embeddings_computed == _distinct_texts(clean_b)
        hits = idx.search("rotate the signing keys", 3, mode="vector")
        assert hits[0].path.endswith("keys.md")
        # The next sync sees nothing to do: signatures name the new model.
        assert idx.ingest([str(root)]).unchanged == len(CORPUS)
    assert _model(path) == b.model_id
    assert _export(path, b) == clean_b

    back = HashEmbedder(384)
    with Index(path, settings=Settings(), embedder=back) as idx:
        report = idx.reembed()
        assert report.mode == "in-place"
        assert back.calls == 0  # every vector of the first model is still cached
        assert report.embeddings_cached == _distinct_texts(clean_a)
        assert idx.search("backups nightly", 3)[0].path.endswith("backups.md")
    assert _export(path, HashEmbedder(384)) == clean_a


def test_a_failure_mid_switch_never_mixes_models_and_resumes_from_the_cache(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(switch, "READ_ROWS", 8)  # many phase-1 batches
    clean_a = _clean(tmp_path, root, HashEmbedder(384), "a")
    clean_b = _clean(tmp_path, root, HashEmbedder(64), "b")
    path = tmp_path / "idx.sqlite"
    _build(path, root, HashEmbedder(384))

    failing = FailingEmbedder(fail_on_call=3, times=None, dim=64)
    with Index(path, settings=Settings(), embedder=failing) as idx, pytest.raises(ModelError):
        idx.reembed()
    done_before = failing.texts_embedded
    assert done_before > 0
    # Still wholly the old model: its vectors, its search.
    assert _model(path) == "headrace-testing/hash-384"
    assert _export(path, HashEmbedder(384)) == clean_a
    with Index(path, settings=Settings(), embedder=HashEmbedder(384)) as idx:
        assert idx.search("signing keys", 3, mode="vector")[0].path.endswith("keys.md")
    # The other model is refused until the switch completes.
    other = Index(path, settings=Settings(), embedder=HashEmbedder(64))
    with other, pytest.raises(ModelMismatchError, match="reembed"):
        other.ingest([str(root)])

    resumed = HashEmbedder(64)
    with Index(path, settings=Settings(), embedder=resumed) as idx:
        report = idx.reembed()
    assert resumed.texts_embedded == _distinct_texts(clean_b) - done_before  # only the rest
    assert report.embeddings_computed == resumed.texts_embedded
    assert _export(path, HashEmbedder(64)) == clean_b


def test_a_flip_that_cannot_complete_rolls_back_to_the_old_model(
    tmp_path: Path, root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "idx.sqlite"
    _build(path, root, HashEmbedder(384))
    before = _export(path, HashEmbedder(384))
    # Phase 1 skipped: the flip finds no cached vector of the new model and must refuse.
    monkeypatch.setattr(switch.ModelSwitch, "_fill_cache", lambda self, report: None)
    idx = Index(path, settings=Settings(), embedder=HashEmbedder(64))
    with idx, pytest.raises(StoreError, match="no cached vector"):
        idx.reembed()
    assert _model(path) == "headrace-testing/hash-384"
    assert _export(path, HashEmbedder(384)) == before


def test_keyword_only_to_a_model_and_back(tmp_path: Path, root: Path) -> None:
    clean_none = _clean(tmp_path, root, "none", "none")
    clean_hash = _clean(tmp_path, root, HashEmbedder(384), "hash")
    path = tmp_path / "idx.sqlite"
    _build(path, root, "none")

    # From none the chunks must change (characters -> tokens): re-read, then embed.
    first = HashEmbedder(384)
    with Index(path, settings=Settings(), embedder=first) as idx:
        report = idx.reembed(reprocess=False)  # as if killed right after the flip
        assert report.mode == "re-chunk"
        rows = list(idx.export())
        assert rows
        assert all(r["vector_digest"] is None for r in rows)
        assert idx.search("signing keys", 3, mode="vector") == []  # nothing mixed in
        assert idx.search("signing keys", 3, mode="keyword")[0].path.endswith("keys.md")
        first.reset_counts()  # (the searches embedded their queries)
        report = idx.reembed()  # resumes: the files still chunked for "none"
        assert report.mode == "current"
        assert report.files_reprocessed == len(CORPUS)
        assert first.texts_embedded == _distinct_texts(clean_hash)
        assert idx.search("signing keys", 3, mode="vector")[0].path.endswith("keys.md")
    assert _export(path, HashEmbedder(384)) == clean_hash

    with Index(path, settings=Settings(), embedder="none") as idx:
        report = idx.reembed()
        assert (report.mode, report.files_reprocessed) == ("drop", len(CORPUS))
        assert idx.search("backups nightly", 3)[0].path.endswith("backups.md")
    assert _model(path) == "none"
    assert _export(path, "none") == clean_none

    again = HashEmbedder(384)
    with Index(path, settings=Settings(), embedder=again) as idx:
        report = idx.reembed()
        assert (report.mode, report.files_reprocessed) == ("re-chunk", len(CORPUS))
    assert again.calls == 0  # re-chunked alike: every vector came from the cache
    assert _export(path, HashEmbedder(384)) == clean_hash


CHILD = """
import sys, time
from headrace import Index, Settings
from headrace.pipeline import switch
from headrace.testing.embedders import HashEmbedder

class Slow(HashEmbedder):
    def _before_embed(self, call):
        time.sleep(0.03)

switch.READ_ROWS = 4
dim = int(sys.argv[2])
with Index(sys.argv[1], settings=Settings(batch_tokens=256), embedder=Slow(dim)) as idx:
    print("go", flush=True)
    idx.reembed()
print("done", flush=True)
"""


def test_kill_9_during_switches_leaves_one_model(tmp_path: Path, root: Path) -> None:
    clean = {
        384: _clean(tmp_path, root, HashEmbedder(384), "a"),
        64: _clean(tmp_path, root, HashEmbedder(64), "b"),
    }
    path = tmp_path / "idx.sqlite"
    _build(path, root, HashEmbedder(384))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = 0
    # Each target twice: the second run resumes a killed switch (or finds it done).
    plan = [(64, 0.2), (64, 0.5), (384, 0.35), (384, 0.7), (64, 0.1), (64, 0.45)]
    for target, delay in plan:
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(path), str(target)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "go"
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.communicate()
        model = int(_model(path).rsplit("-", 1)[1])
        assert model in (384, 64)
        assert _export(path, HashEmbedder(model)) == clean[model]  # never mixed
    assert killed >= 1
    final = HashEmbedder(64)
    with Index(path, settings=Settings(), embedder=final) as idx:
        idx.reembed()
    assert _export(path, HashEmbedder(64)) == clean[64]


def test_cli_reembed_and_ingest_reembed(tmp_path: Path, root: Path) -> None:
    index = tmp_path / "cli.sqlite"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "HF_HUB_OFFLINE": "1"}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "headrace", "--quiet", *args, "--index", str(index)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )

    assert cli("ingest", str(root), "--embedder", "none").returncode == 0
    refused = cli("ingest", str(root), "--embedder", "hash")
    assert refused.returncode == 3
    assert "'none'" in refused.stderr
    assert "headrace-testing/hash-384" in refused.stderr
    assert "reembed" in refused.stderr
    switched = cli("ingest", str(root), "--embedder", "hash", "--reembed")
    assert switched.returncode == 0, switched.stderr
    assert "none -> headrace-testing/hash-384 (re-chunk)" in switched.stderr
    found = cli("search", "signing keys", "--mode", "vector", "-k", "1")
    assert "keys.md" in found.stdout
    dropped = cli("reembed", "--embedder", "none")
    assert dropped.returncode == 0, dropped.stderr
    assert "(drop)" in dropped.stderr
    assert "keys.md" in cli("search", "signing keys", "-k", "1").stdout
