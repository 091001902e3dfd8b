"""The scheduler: de-duplication, debounce and settle, ordering, the bound and deferral."""

from __future__ import annotations

from headrace.live.scheduler import Scheduler, Stat


class Fake:
    """A clock and a stat table the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.stats: dict[str, Stat] = {}

    def clock(self) -> float:
        return self.now

    def stat(self, path: str) -> Stat:
        return self.stats.get(path)


def _scheduler(fake: Fake, **kw: object) -> Scheduler:
    options: dict[str, object] = {"max_pending": 100, "debounce_s": 1.0, "max_wait_s": 10.0}
    options.update(kw)
    return Scheduler(clock=fake.clock, wall=fake.clock, stat=fake.stat, **options)  # type: ignore[arg-type]


def test_a_burst_of_events_is_one_change_taken_after_the_quiet_period() -> None:
    fake = Fake()
    s = _scheduler(fake)
    fake.stats["/r/a"] = (10, 1)
    for _ in range(50):
        assert s.note("/r/a")
        fake.now += 0.1
    assert len(s) == 1
    assert s.take(10, 1 << 30) == []  # last event 0.1 s ago
    assert s.next_due() is not None
    assert 0 < s.next_due() <= 0.9
    fake.now += 1.0
    (change,) = s.take(10, 1 << 30)
    assert change.path == "/r/a"
    assert change.since == 1000.0
    assert len(s) == 0
    assert s.next_due() is None


def test_a_file_still_being_written_waits_for_another_quiet_period() -> None:
    fake = Fake()
    s = _scheduler(fake)
    fake.stats["/r/a"] = (10, 1)
    s.note("/r/a")
    fake.now += 1.5
    fake.stats["/r/a"] = (20, 2)  # grew without an event (a notification was lost)
    assert s.take(10, 1 << 30) == []
    fake.now += 1.5
    assert [c.path for c in s.take(10, 1 << 30)] == ["/r/a"]


def test_a_file_that_never_settles_is_taken_after_max_wait() -> None:
    fake = Fake()
    s = _scheduler(fake, max_wait_s=3.0)
    for n in range(40):
        fake.stats["/r/log"] = (n, n)
        s.note("/r/log")
        fake.now += 0.1
        if n == 35:
            break
    assert [c.path for c in s.take(10, 1 << 30)] == ["/r/log"]


def test_realtime_takes_at_once() -> None:
    fake = Fake()
    s = _scheduler(fake, debounce_s=0.0)
    s.note("/r/a")
    assert [c.path for c in s.take(10, 1 << 30)] == ["/r/a"]


def test_oldest_first_with_marked_files_ahead() -> None:
    fake = Fake()
    s = _scheduler(fake, priority=["*.urgent"])
    s.note("/r/new", since=900.0)
    s.note("/r/old", since=100.0)
    s.note("/r/x.urgent", since=950.0)
    s.note("/r/mid", since=500.0)
    fake.now += 2
    assert [c.path for c in s.take(10, 1 << 30)] == ["/r/x.urgent", "/r/old", "/r/mid", "/r/new"]


def test_batches_respect_files_and_bytes_but_always_take_one() -> None:
    fake = Fake()
    s = _scheduler(fake)
    for n in range(5):
        fake.stats[f"/r/{n}"] = (100, n)
        s.note(f"/r/{n}", since=float(n))
    fake.now += 2
    assert len(s.take(2, 1 << 30)) == 2
    assert len(s.take(10, 250)) == 2
    assert len(s.take(10, 10)) == 1  # bigger than the budget alone: still taken


def test_overflow_is_deferred_counted_and_flagged_never_silently_lost() -> None:
    fake = Fake()
    s = _scheduler(fake, max_pending=3)
    accepted = [s.note(f"/r/{n}") for n in range(5)]
    assert accepted == [True, True, True, False, False]
    assert s.deferred_total == 2
    assert s.overflowed
    assert s.note("/r/0")  # an already pending path is never refused


def test_restore_puts_a_batch_back_keeping_the_oldest_time() -> None:
    fake = Fake()
    s = _scheduler(fake)
    s.note("/r/a", since=10.0)
    fake.now += 2
    batch = s.take(10, 1 << 30)
    s.note("/r/a", since=50.0)
    s.restore(batch)
    assert len(s) == 1
    assert s.oldest_age() == fake.now - 10.0
