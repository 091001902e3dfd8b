"""Incremental semantics: add, change, delete, rename, touch, no-op.

Each scenario is checked in the store (the canonical export) and in the number of
embeddings computed, and the final index must equal a fresh ingest of the final tree.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from tests.conftest import write_corpus

from headrace import Index, Settings
from headrace.testing.embedders import HashEmbedder

PARA = "Paragraph {n} explains topic {n} with enough words to be its own unit of meaning."


def _doc(title: str, paragraphs: int, *, edit: int | None = None) -> str:
    body = []
    for n in range(paragraphs):
        text = " ".join([PARA.format(n=f"{title}-{n}")] * 12)
        if n == edit:
            text += " An edited sentence appears here."
        body.append(text)
    return f"# {title}\n\n" + "\n\n".join(body) + "\n"


def _open(tmp: Path, name: str = "idx") -> tuple[Index, HashEmbedder]:
    emb = HashEmbedder()
    return Index(tmp / f"{name}.sqlite", settings=Settings(), embedder=emb), emb


def _export(idx: Index) -> list[dict[str, object]]:
    return list(idx.export())


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(
        tmp_path / "docs",
        {
            "a.md": _doc("alpha", 8),
            "b.md": _doc("beta", 3),
            "sub/c.txt": "plain text file\n\nwith two paragraphs\n",
            "d.jsonl": '{"title": "one", "body": "first record"}\n'
            '{"title": "two", "body": "second"}\n',
        },
    )


def _fresh_export(tmp_path: Path, corpus: Path) -> list[dict[str, object]]:
    idx, _ = _open(tmp_path, "fresh")
    idx.ingest([str(corpus)])
    rows = _export(idx)
    idx.close()
    return rows


def _consistent(idx: Index) -> None:
    c = idx.conn
    n = c.execute("SELECT count(*) FROM chunks").fetchone()[0]
    assert c.execute("SELECT sum(chunk_count) FROM files").fetchone()[0] == n
    assert c.execute("SELECT count(*) FROM chunks_vec").fetchone()[0] == n
    assert c.execute("SELECT count(*) FROM pending").fetchone()[0] == 0
    dup = c.execute(
        "SELECT count(*) FROM (SELECT file_id, ordinal FROM chunks"
        " GROUP BY 1, 2 HAVING count(*) > 1)"
    ).fetchone()[0]
    assert dup == 0


def test_first_run_indexes_everything_and_noop_embeds_nothing(tmp_path: Path, corpus: Path) -> None:
    idx, emb = _open(tmp_path)
    first = idx.ingest([str(corpus)])
    assert first.files_done == 4
    assert first.embeddings_computed == emb.texts_embedded > 0
    before = emb.texts_embedded
    again = idx.ingest([str(corpus)])
    assert (again.files_done, again.unchanged, again.embeddings_computed) == (0, 4, 0)
    assert emb.texts_embedded == before
    _consistent(idx)


def test_touch_is_not_reparsed(tmp_path: Path, corpus: Path) -> None:
    idx, _emb = _open(tmp_path)
    idx.ingest([str(corpus)])
    rows = _export(idx)
    st = (corpus / "a.md").stat()
    os.utime(corpus / "a.md", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    stats = idx.ingest([str(corpus)])
    assert (stats.touched, stats.files_done, stats.embeddings_computed) == (1, 0, 0)
    assert _export(idx) == rows


def test_edit_reembeds_only_changed_chunks(tmp_path: Path, corpus: Path) -> None:
    idx, _emb = _open(tmp_path)
    idx.ingest([str(corpus)])
    old_ids = {r["id"] for r in _export(idx) if str(r["source"]).endswith("a.md")}
    (corpus / "a.md").write_text(_doc("alpha", 8, edit=6))
    stats = idx.ingest([str(corpus)])
    assert stats.files_done == 1
    new_ids = {r["id"] for r in _export(idx) if str(r["source"]).endswith("a.md")}
    changed = len(new_ids - old_ids)
    assert 1 <= changed < len(new_ids)
    assert stats.embeddings_computed == changed
    assert _export(idx) == _fresh_export(tmp_path, corpus)
    _consistent(idx)


def test_rename_moves_without_embedding(tmp_path: Path, corpus: Path) -> None:
    idx, _emb = _open(tmp_path)
    idx.ingest([str(corpus)])
    os.rename(corpus / "b.md", corpus / "sub" / "b2.md")
    stats = idx.ingest([str(corpus)])
    assert (stats.renamed, stats.files_done, stats.embeddings_computed) == (1, 0, 0)
    assert _export(idx) == _fresh_export(tmp_path, corpus)
    _consistent(idx)


def test_delete_removes_chunks(tmp_path: Path, corpus: Path) -> None:
    idx, _ = _open(tmp_path)
    idx.ingest([str(corpus)])
    (corpus / "sub" / "c.txt").unlink()
    stats = idx.ingest([str(corpus)])
    assert stats.deleted == 1
    assert not [r for r in _export(idx) if str(r["source"]).endswith("c.txt")]
    assert _export(idx) == _fresh_export(tmp_path, corpus)
    _consistent(idx)


def test_add_file(tmp_path: Path, corpus: Path) -> None:
    idx, _ = _open(tmp_path)
    idx.ingest([str(corpus)])
    write_corpus(corpus, {"new.md": _doc("gamma", 2)})
    stats = idx.ingest([str(corpus)])
    assert (stats.files_done, stats.unchanged) == (1, 4)
    assert _export(idx) == _fresh_export(tmp_path, corpus)


def test_other_roots_are_left_alone(tmp_path: Path, corpus: Path) -> None:
    other = write_corpus(tmp_path / "other", {"x.md": _doc("other", 1)})
    idx, _ = _open(tmp_path)
    idx.ingest([str(corpus)])
    idx.ingest([str(other)])
    sources = {str(r["source"]) for r in _export(idx)}
    assert any(s.startswith(str(corpus)) for s in sources)
    assert any(s.startswith(str(other)) for s in sources)


def test_missing_root_refuses_mass_deletion(tmp_path: Path, corpus: Path) -> None:
    from headrace.errors import RootUnavailableError

    idx, _ = _open(tmp_path)
    idx.ingest([str(corpus)])
    rows = _export(idx)
    corpus.rename(tmp_path / "unmounted")
    with pytest.raises(RootUnavailableError):
        idx.ingest([str(corpus)])
    assert _export(idx) == rows
