"""``--embedder none``: a full-text-only index that never loads a model."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.conftest import write_corpus

from headrace import Index, Settings
from headrace.errors import ModelMismatchError


def test_keyword_only_index_ingests_and_searches(tmp_path: Path) -> None:
    root = write_corpus(
        tmp_path / "c",
        {
            "a.md": "# Keys\n\nRotate the signing keys every ninety days.\n",
            "b.txt": "Backups run nightly and are restored weekly.\n",
        },
    )
    idx = Index(tmp_path / "kw.sqlite", settings=Settings(embedder="none"))
    stats = idx.ingest([str(root)])
    assert (stats.files_done, stats.embeddings_computed) == (2, 0)
    hits = idx.search("signing keys", 3)
    assert hits[0].path.endswith("a.md")
    assert hits[0].vector_rank is None
    assert all(r["vector_digest"] is None for r in idx.export())
    assert idx.status()["model"] == "none"
    idx.close()


def test_index_refuses_a_second_model(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "c", {"a.md": "# one\n\ntext\n"})
    Index(tmp_path / "kw.sqlite", settings=Settings(embedder="none")).ingest([str(root)])
    other = Index(tmp_path / "kw.sqlite", settings=Settings(), embedder="hash")
    with pytest.raises(ModelMismatchError):
        other.ingest([str(root)])
