"""The batch writer: poisoned rows isolated by bisection, transient failures retried."""

from __future__ import annotations

from collections.abc import Sequence

import pytest

from headrace.errors import StoreError, TransientError
from headrace.graph.writer import BatchWriter, GraphUnavailableError, RetryPolicy


class Store:
    """Refuses any batch holding a poisoned row; fails transiently ``flaky`` times."""

    def __init__(self, poison: set[int], flaky: int = 0) -> None:
        self.poison = poison
        self.flaky = flaky
        self.written: list[int] = []
        self.calls = 0

    def write(self, rows: Sequence[int]) -> None:
        self.calls += 1
        if self.flaky:
            self.flaky -= 1
            raise TransientError("busy")
        bad = self.poison.intersection(rows)
        if bad:
            raise StoreError(f"constraint violated by {sorted(bad)}")
        self.written.extend(rows)


@pytest.mark.parametrize("poison", [0, 37, 63, 99])
def test_one_poison_in_a_batch_of_100_is_isolated_within_15_calls(poison: int) -> None:
    store = Store({poison})
    writer = BatchWriter(batch_size=100, sleep=lambda _s: None)
    failures = writer.write(store.write, list(range(100)))
    assert [f.row for f in failures] == [poison]
    assert failures[0].error_type == "StoreError"
    assert str(poison) in failures[0].message
    assert sorted(store.written) == [i for i in range(100) if i != poison]
    assert store.calls <= 15
    assert writer.stats.calls == store.calls


def test_several_poisons_across_batches() -> None:
    store = Store({5, 150, 151})
    writer = BatchWriter(batch_size=100, sleep=lambda _s: None)
    failures = writer.write(store.write, list(range(250)))
    assert sorted(f.row for f in failures) == [5, 150, 151]
    assert sorted(store.written) == [i for i in range(250) if i not in {5, 150, 151}]
    assert writer.stats.rows_written == 247


def test_a_clean_batch_is_one_call() -> None:
    store = Store(set())
    writer = BatchWriter(batch_size=100, sleep=lambda _s: None)
    assert writer.write(store.write, list(range(100))) == []
    assert store.calls == 1


def test_transient_failures_retry_with_exponential_backoff_and_jitter() -> None:
    waits: list[float] = []
    store = Store(set(), flaky=3)
    policy = RetryPolicy(attempts=5, initial_wait_s=1.0, max_wait_s=16.0, jitter_s=1.0)
    writer = BatchWriter(batch_size=10, retry=policy, sleep=waits.append)
    assert writer.write(store.write, list(range(10))) == []
    assert store.written == list(range(10))
    assert writer.stats.retries == 3
    assert len(waits) == 3
    for wait, base in zip(waits, (1.0, 2.0, 4.0), strict=True):
        assert base <= wait <= base + 1.0


def test_retries_are_capped_and_then_the_store_is_unavailable() -> None:
    waits: list[float] = []
    store = Store(set(), flaky=100)
    policy = RetryPolicy(attempts=6, initial_wait_s=1.0, max_wait_s=16.0, jitter_s=0.0)
    writer = BatchWriter(batch_size=10, retry=policy, sleep=waits.append)
    with pytest.raises(GraphUnavailableError):
        writer.write(store.write, list(range(10)))
    assert waits == [1.0, 2.0, 4.0, 8.0, 16.0]
    assert store.written == []


def test_isolation_cost_is_at_most_15_calls_wherever_the_poison_sits() -> None:
    costs = []
    for poison in range(100):
        store = Store({poison})
        BatchWriter(batch_size=100, sleep=lambda _s: None).write(store.write, list(range(100)))
        costs.append(store.calls)
    assert max(costs) <= 15
    assert min(costs) >= 1 + 2 * 6  # bisection: two calls per level, ceil(log2 100) = 7 levels
