"""Occurrence counts: the bounded counter equals the exact one whatever the horizon."""

from __future__ import annotations

import random

import pytest

from headrace.chunking.occurrences import BoundedOccurrences, OccurrenceCounter
from headrace.ids import text_hash
from headrace.runtime.produce import OCCURRENCE_HORIZON
from headrace.runtime.runner import PRODUCER_BATCH, WINDOW_ITEMS, Runner


def _stream(seed: int, n: int, distinct: int) -> list[str]:
    rng = random.Random(seed)
    return [text_hash(f"t{rng.randrange(distinct)}") for _ in range(n)]


class _Store:
    """What the index holds: every chunk older than ``lag`` chunks."""

    def __init__(self, lag: int, rows: list[str] | None = None) -> None:
        self.rows: list[str] = list(rows or [])
        self.durable = len(self.rows)  # a resumed file's prefix is committed
        self.lag = lag
        self.queries = 0

    def count(self, digest: str, below: int) -> int:
        self.queries += 1
        committed = max(self.durable, len(self.rows) - self.lag)
        assert below <= committed, "looked up a chunk that may still be in flight"
        return self.rows[:below].count(digest)


@pytest.mark.parametrize(("seed", "distinct"), [(1, 5), (2, 300), (3, 5000)])
def test_bounded_equals_exact(seed: int, distinct: int) -> None:
    hashes = _stream(seed, 6000, distinct)
    exact = OccurrenceCounter()
    store = _Store(lag=40)
    bounded = BoundedOccurrences(store.count, horizon=64, bloom_bytes=64)
    for digest in hashes:
        assert bounded.next(digest) == exact.next(digest)
        store.rows.append(digest)


def test_resumed_counter_continues_the_stored_prefix() -> None:
    hashes = _stream(4, 3000, 200)
    cut = 1700
    exact = OccurrenceCounter()
    expected = [exact.next(h) for h in hashes]
    store = _Store(lag=10, rows=hashes[:cut])
    bounded = BoundedOccurrences(store.count, horizon=32, ordinal=cut, bloom_bytes=128)
    bounded.preload(hashes[:cut])
    got = []
    for digest in hashes[cut:]:
        got.append(bounded.next(digest))
        store.rows.append(digest)
    assert got == expected[cut:]


def test_floor_lookups_equal_a_preloaded_counter() -> None:
    hashes = _stream(5, 3000, 200)
    cut = 1700
    exact = OccurrenceCounter()
    expected = [exact.next(h) for h in hashes]
    store = _Store(lag=10, rows=hashes[:cut])
    bounded = BoundedOccurrences(
        store.count, horizon=32, ordinal=cut, bloom_bytes=128, lookup_floor=True
    )
    got = []
    for digest in hashes[cut:]:
        got.append(bounded.next(digest))
        store.rows.append(digest)
    assert got == expected[cut:]
    assert store.queries >= 200  # no preload: each text new to the run was looked up


def test_a_stored_filter_replaces_the_preload() -> None:
    hashes = _stream(6, 3000, 2000)
    cut = 1700
    exact = OccurrenceCounter()
    expected = [exact.next(h) for h in hashes]
    first = BoundedOccurrences(_Store(lag=0).count, horizon=4096, bloom_bytes=4096)
    for digest in hashes[:cut]:
        first.next(digest)
    assert first.complete
    store = _Store(lag=10, rows=hashes[:cut])
    resumed = BoundedOccurrences(
        store.count, horizon=4096, ordinal=cut, bloom_bytes=4096, lookup_floor=True
    )
    assert not resumed.complete
    assert resumed.load_filter(first.filter_bytes())
    assert resumed.complete
    got = []
    for digest in hashes[cut:]:
        got.append(resumed.next(digest))
        store.rows.append(digest)
    assert got == expected[cut:]
    seen_before = len(set(hashes[cut:]) & set(hashes[:cut]))
    assert len(set(hashes[cut:])) - seen_before > 300  # many texts new to the file …
    assert store.queries <= seen_before + 5  # … and not one asked (but false positives)
    wrong = BoundedOccurrences(store.count, horizon=32, ordinal=cut, bloom_bytes=64)
    assert not wrong.load_filter(first.filter_bytes())  # another size: not taken


def test_unique_texts_need_no_lookup() -> None:
    store = _Store(lag=0)
    bounded = BoundedOccurrences(store.count, horizon=16, bloom_bytes=1 << 16)
    for i in range(2000):
        digest = text_hash(f"unique {i}")
        assert bounded.next(digest) == 0
        store.rows.append(digest)
    assert store.queries < 20  # only Bloom false positives reach the index


def test_horizon_exceeds_what_the_runner_holds_in_flight() -> None:
    # Q1's items, Q2's windows, one window in the embed and one in the write stage,
    # and what a producer has batched but not yet put (runner.py).
    runner = Runner(None, None, None)  # type: ignore[arg-type]
    window = WINDOW_ITEMS + PRODUCER_BATCH  # a window may end one batch past WINDOW_ITEMS
    in_flight = runner.q1.max_items + (runner.q2.max_items + 2) * window + PRODUCER_BATCH
    assert in_flight < OCCURRENCE_HORIZON
