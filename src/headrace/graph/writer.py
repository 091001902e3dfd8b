"""Batched graph writes: retry what is transient, isolate what is poisoned.

Rows go to the store in batches of ``batch_size`` (one ``UNWIND`` transaction
each). A batch that fails with ``TransientError`` is retried with exponential
backoff and jitter (tenacity: ``initial_wait_s`` doubling up to ``max_wait_s``,
``attempts`` tries); when retries run out the store is taken as unavailable and
the run stops (``StoreError``): nothing is recorded for unfinished files, so the
next run redoes them. A batch that fails with ``StoreError`` is bisected until
the failing rows stand alone; those become ``WriteFailure``s (dead letters of their
files) and every other row is written.

Isolating one poisoned row in a batch of 100 costs 1 + 2·⌈log₂ 100⌉ = 15 calls at
most (the seed's 100 → 50 → 10 → 1 schedule needs 18).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from headrace.errors import StoreError, TransientError

log = logging.getLogger(__name__)

Row = TypeVar("Row")


class GraphUnavailableError(StoreError):
    """Transient failures outlasted the retry policy: the run stops, nothing is lost."""


@dataclass(frozen=True, slots=True)
class WriteFailure(Generic[Row]):
    """A row the store refused on its own, with the store's reason."""

    row: Row
    error_type: str
    message: str


@dataclass(slots=True)
class WriteStats:
    calls: int = 0  # store calls, retries and split halves included
    retries: int = 0
    splits: int = 0
    rows_written: int = 0
    rows_failed: int = 0
    failures: list[WriteFailure[object]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    attempts: int = 5
    initial_wait_s: float = 1.0
    max_wait_s: float = 16.0
    jitter_s: float = 1.0


class BatchWriter:
    """Writes rows through ``write`` (a store method) as described above."""

    def __init__(
        self,
        batch_size: int = 100,
        retry: RetryPolicy | None = None,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.batch_size = batch_size
        self.retry = retry or RetryPolicy()
        self.stats = WriteStats()
        self._sleep = sleep

    def write(
        self, write: Callable[[Sequence[Row]], None], rows: Sequence[Row]
    ) -> list[WriteFailure[Row]]:
        """Write every row; returns the rows isolated as failing (the rest is written)."""
        failures: list[WriteFailure[Row]] = []
        for start in range(0, len(rows), self.batch_size):
            self._write_or_split(write, rows[start : start + self.batch_size], failures)
        self.stats.rows_failed += len(failures)
        self.stats.failures.extend(failures)  # type: ignore[arg-type]
        return failures

    def write_whole(self, write: Callable[[Sequence[Row]], None], rows: Sequence[Row]) -> bool:
        """Write ``rows`` in one call (transient failures retried as in ``write``);
        False if the store refused it (it wrote nothing: the caller then writes the
        rows with ``write``, which isolates the bad ones)."""
        try:
            self._with_retry(write, rows)
        except GraphUnavailableError:
            raise
        except StoreError as exc:
            log.debug("whole write refused, writing rows: %s", exc)
            return False
        self.stats.rows_written += len(rows)
        return True

    def _write_or_split(
        self,
        write: Callable[[Sequence[Row]], None],
        batch: Sequence[Row],
        failures: list[WriteFailure[Row]],
    ) -> None:
        try:
            self._with_retry(write, batch)
        except GraphUnavailableError:
            raise
        except StoreError as exc:
            if len(batch) == 1:
                log.warning("graph write refused: %s", exc)
                failures.append(WriteFailure(batch[0], type(exc).__name__, str(exc)))
                return
            self.stats.splits += 1
            middle = len(batch) // 2
            self._write_or_split(write, batch[:middle], failures)
            self._write_or_split(write, batch[middle:], failures)
            return
        self.stats.rows_written += len(batch)

    def _with_retry(self, write: Callable[[Sequence[Row]], None], batch: Sequence[Row]) -> None:
        policy = self.retry
        retrying = Retrying(
            retry=retry_if_exception_type(TransientError),
            stop=stop_after_attempt(policy.attempts),
            # exponential (initial, 2x, 4x ... capped at max) plus uniform jitter; the
            # composition works on tenacity 8 and 9 alike (9 renamed jitter's arguments)
            wait=wait_exponential(multiplier=policy.initial_wait_s, max=policy.max_wait_s)
            + wait_random(0, policy.jitter_s),
            sleep=self._sleep,
            before_sleep=self._count_retry,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self.stats.calls += 1
                    write(batch)
        except RetryError as exc:
            last = exc.last_attempt.exception()
            raise GraphUnavailableError(
                f"graph store still failing after {policy.attempts} attempts: {last}"
            ) from last

    def _count_retry(self, _state: object) -> None:
        self.stats.retries += 1
