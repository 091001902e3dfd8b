"""An index bound to one model refuses another before doing anything.

The index is built with the hash test double; ``Index(path, embedder="minilm")`` is
cheap to construct (the model loads lazily), but its ``ingest`` and ``retry`` must
raise ``ModelMismatchError`` before any deletion, rename or embedding, and its vector
search must not rank the index's vectors with a query vector of another model.
The real model's ``embed`` is replaced by a recorder, so a regression shows up as
a call instead of loading (or exporting) the model.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from tests.conftest import write_corpus

from headrace import Index, Settings
from headrace.embedding.base import Vectors
from headrace.embedding.minilm import MODEL_ID, MiniLMEmbedder
from headrace.errors import ModelMismatchError

HASH_MODEL = "headrace-testing/hash-384"


@pytest.fixture
def model_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Sizes of every batch the real model was asked to embed (must stay empty)."""
    calls: list[int] = []

    def recording(self: MiniLMEmbedder, texts: Sequence[str]) -> Vectors:
        calls.append(len(texts))
        return np.full((len(texts), self.dim), self.dim**-0.5, dtype=np.float32)

    monkeypatch.setattr(MiniLMEmbedder, "embed", recording)
    return calls


@pytest.fixture
def hash_index(tmp_path: Path) -> tuple[Path, Path]:
    root = write_corpus(
        tmp_path / "c",
        {
            "a.md": "# Keys\n\nRotate the signing keys every ninety days.\n",
            "b.md": "# Backups\n\nBackups run nightly and are restored weekly.\n",
            "bad.jsonl": '{"x": "fine"}\nnot json\n',
        },
    )
    path = tmp_path / "hash.sqlite"
    with Index(path, settings=Settings(), embedder="hash") as idx:
        idx.ingest([str(root)])
    return path, root


def _snapshot(path: Path) -> tuple[list[dict[str, object]], dict[str, object]]:
    with Index(path, settings=Settings()) as idx:  # the index's own model
        return list(idx.export()), idx.status()


def test_ingest_with_another_model_is_refused_before_any_change(
    hash_index: tuple[Path, Path], model_calls: list[int]
) -> None:
    path, root = hash_index
    before = _snapshot(path)
    # Work that must not happen: a deletion, a rename, an edit.
    (root / "b.md").unlink()
    os.rename(root / "a.md", root / "a2.md")
    (root / "new.md").write_text("# New\n\nA fresh note to embed.\n", encoding="utf-8")

    idx = Index(path, settings=Settings(), embedder="minilm")  # cheap: nothing loads
    assert idx.embedder is not None
    assert idx.embedder.model_id == MODEL_ID
    with pytest.raises(ModelMismatchError) as caught:
        idx.ingest([str(root)])
    assert HASH_MODEL in str(caught.value)
    assert MODEL_ID in str(caught.value)
    with pytest.raises(ModelMismatchError):
        idx.retry()
    idx.close()

    assert model_calls == []
    assert _snapshot(path) == before  # no chunk, ledger row or run record changed


def test_vector_search_with_another_model_is_refused(
    hash_index: tuple[Path, Path], model_calls: list[int]
) -> None:
    path, _ = hash_index
    with Index(path, settings=Settings(), embedder="minilm") as idx:
        with pytest.raises(ModelMismatchError):
            idx.search("signing keys", 3)
        with pytest.raises(ModelMismatchError):
            idx.search("signing keys", 3, mode="vector")
        # Keyword search uses no vectors, so any embedder may run it.
        hits = idx.search("signing keys", 3, mode="keyword")
        assert hits[0].path.endswith("a.md")
    assert model_calls == []


def test_the_index_keeps_working_with_its_own_model(
    hash_index: tuple[Path, Path], model_calls: list[int]
) -> None:
    path, root = hash_index
    with Index(path, settings=Settings()) as idx:  # embedder from the index's meta
        assert idx.embedder is not None
        assert idx.embedder.model_id == HASH_MODEL
        assert idx.search("signing keys", 3)[0].path.endswith("a.md")
        assert idx.ingest([str(root)]).unchanged == 3
    assert model_calls == []
