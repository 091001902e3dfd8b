"""The embed stage embeds each new text once and forgets only what is committed."""

from __future__ import annotations

from collections.abc import Sequence

from headrace.ids import chunk_id, text_hash
from headrace.records import Chunk
from headrace.runtime.embed import EmbedStage
from headrace.runtime.stats import RunStats
from headrace.testing.embedders import HashEmbedder


def _chunk(text: str, ordinal: int = 0) -> Chunk:
    h = text_hash(text)
    return Chunk(chunk_id("f.txt", h, ordinal), "f.txt", ordinal, text, h, 3, 1, 1, 0, 1)


class _Cache:
    """Stands in for the index's embed_cache: what the write stage has committed."""

    def __init__(self) -> None:
        self.stored: set[str] = set()

    def cached(self, hashes: Sequence[str]) -> set[str]:
        return self.stored & set(hashes)


def test_a_text_in_flight_is_not_embedded_again_and_is_forgotten_at_commit() -> None:
    embedder, cache = HashEmbedder(dim=8), _Cache()
    stage = EmbedStage(embedder, cache.cached, RunStats())
    first = stage.run([_chunk("alpha beta"), _chunk("gamma")])
    assert set(first.vectors) == {text_hash("alpha beta"), text_hash("gamma")}
    # Window 1 is not committed yet: the cache cannot see it, the stage remembers it.
    second = stage.run([_chunk("alpha beta", 1), _chunk("delta")])
    assert set(second.vectors) == {text_hash("delta")}
    assert embedder.texts_embedded == 3
    cache.stored |= set(first.vectors)
    stage.committed(first.vectors)
    stage.committed(second.vectors)  # rolled back in this story: not in the cache
    assert stage._recent == set()  # nothing kept beyond the windows in flight
    third = stage.run([_chunk("alpha beta", 2), _chunk("delta", 1)])
    assert set(third.vectors) == {text_hash("delta")}  # committed text comes from the cache
    assert embedder.texts_embedded == 4
