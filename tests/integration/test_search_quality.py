"""Search quality smoke: on the bundled handbook, known questions find their passage.

Uses the real model (all-MiniLM-L6-v2 through the default runtime). The index is
built once per module; each question must return a chunk of the right file that
contains the answering phrase within the top 3.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from headrace import Index, Settings

REPO = Path(__file__).resolve().parents[2]
QUESTIONS = json.loads((REPO / "tests/fixtures/quality/questions.json").read_text())
CORPUS = REPO / "samples" / "handbook"

pytestmark = pytest.mark.model


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    path = tmp_path_factory.mktemp("quality") / "handbook.sqlite"
    idx = Index(path, settings=Settings(embedder="minilm"))
    idx.ingest([str(CORPUS)])
    yield idx
    idx.close()


def _found(index: Index, q: dict[str, str], k: int = 3, mode: str = "hybrid") -> bool:
    hits = index.search(q["query"], k, mode=mode)
    return any(h.path.endswith(q["path"]) and q["contains"] in h.text for h in hits)


@pytest.mark.parametrize("q", QUESTIONS, ids=[q["query"][:40] for q in QUESTIONS])
def test_question_finds_its_passage_in_top3(index: Index, q: dict[str, str]) -> None:
    assert _found(index, q), [(h.path, h.text[:80]) for h in index.search(q["query"], 3)]


def test_hybrid_is_at_least_as_good_as_either_ranker(index: Index) -> None:
    hybrid = sum(_found(index, q) for q in QUESTIONS)
    vector = sum(_found(index, q, mode="vector") for q in QUESTIONS)
    keyword = sum(_found(index, q, mode="keyword") for q in QUESTIONS)
    assert hybrid >= max(vector, keyword) - 1, (hybrid, vector, keyword)
