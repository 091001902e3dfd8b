"""The content-addressed parse cache: hits, misses, LRU eviction, TTL, stats, clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.parsers.cache import ParseCache
from headrace.parsers.sql.script import ScriptParser


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_hit_and_miss_are_counted(tmp_path: Path) -> None:
    with ParseCache(tmp_path / "c.sqlite") as cache:
        assert cache.get("p@1", b"a") is None
        cache.put("p@1", b"a", b"value-a")
        cache.flush()
        assert cache.get("p@1", b"a") == b"value-a"
        assert cache.get("p@2", b"a") is None  # another parser version never reads it
        stats = cache.stats()
    assert (stats["entries"], stats["hits"], stats["misses"]) == (1, 1, 2)
    assert stats["bytes"] == len(b"value-a")
    assert stats["hit_rate"] == pytest.approx(1 / 3)


def test_entries_and_counters_persist_across_instances(tmp_path: Path) -> None:
    with ParseCache(tmp_path / "c.sqlite") as cache:
        cache.put("p", b"k", b"v")
    with ParseCache(tmp_path / "c.sqlite") as cache:
        assert cache.get("p", b"k") == b"v"
        assert cache.stats()["hits"] == 1


def test_a_listed_parser_looks_up_only_keys_stored_before_or_put_here(tmp_path: Path) -> None:
    """``listed``: keys stored when it was called and this instance's puts are found
    (flushed or not); a key another instance stored meanwhile reads as a miss, of
    ``listed`` parsers only, and again after ``clear``."""
    with ParseCache(tmp_path / "c.sqlite") as other:
        other.put("p", b"old", b"v-old")
        other.flush()
        with ParseCache(tmp_path / "c.sqlite") as cache:
            cache.listed("p", at_most=5)
            other.put("p", b"new", b"v-new")
            other.put("q", b"new", b"q-new")
            other.flush()
            assert cache.get("p", b"old") == b"v-old"
            assert cache.get("p", b"new") is None  # stored after the listing
            assert cache.get("q", b"new") == b"q-new"  # not listed: looked up
            cache.put("p", b"mine", b"v-mine")
            assert cache.get("p", b"mine") == b"v-mine"
            cache.flush()
            assert cache.get("p", b"mine") == b"v-mine"
            cache.clear()
            other.put("p", b"new", b"v-new")
            other.flush()
            assert cache.get("p", b"new") == b"v-new"  # the listing went with the clear


def test_a_parser_with_more_entries_than_asked_is_not_listed(tmp_path: Path) -> None:
    with ParseCache(tmp_path / "c.sqlite") as other:
        for k in range(3):
            other.put("p", bytes([k]), b"v")
        other.flush()
        with ParseCache(tmp_path / "c.sqlite") as cache:
            cache.listed("p", at_most=2)  # three entries: not listed, looked up
            other.put("p", b"new", b"v-new")
            other.flush()
            cache.listed("p", at_most=10)  # (not tried again)
            assert cache.get("p", b"new") == b"v-new"


def test_lru_eviction_drops_the_least_recently_used(tmp_path: Path) -> None:
    clock = Clock()
    with ParseCache(tmp_path / "c.sqlite", max_entries=3, clock=clock, touch_after_s=0) as cache:
        for key in (b"a", b"b", b"c"):
            clock.now += 1
            cache.put("p", key, key.upper())
            cache.flush()
        clock.now += 1
        assert cache.get("p", b"a") == b"A"  # a is now the most recently used
        cache.flush()
        clock.now += 1
        cache.put("p", b"d", b"D")
        cache.flush()
        assert cache.get("p", b"b") is None  # the oldest use is evicted
        assert [cache.get("p", k) for k in (b"a", b"c", b"d")] == [b"A", b"C", b"D"]
        stats = cache.stats()
    assert stats["entries"] == 3
    assert stats["evictions"] == 1


def test_a_use_is_recorded_only_when_the_recorded_one_is_old(tmp_path: Path) -> None:
    """Recording a use rewrites the entry's row: within ``touch_after_s`` of the
    recorded use a hit records nothing (the LRU order has that resolution)."""
    clock = Clock()
    with ParseCache(tmp_path / "c.sqlite", max_entries=2, clock=clock, touch_after_s=100) as cache:
        cache.put("p", b"a", b"A")
        cache.flush()
        clock.now += 10
        cache.put("p", b"b", b"B")
        cache.flush()
        clock.now += 10
        assert cache.get("p", b"a") == b"A"  # used 20 s after its recorded use: not recorded
        assert cache.take_log()[1] == {}
        clock.now += 100
        assert cache.get("p", b"b") == b"B"  # 110 s after: recorded
        assert cache.take_log()[1] == {("p", b"b"): clock.now}
    with ParseCache(tmp_path / "c.sqlite", max_entries=2, clock=clock, touch_after_s=100) as cache:
        assert cache.get("p", b"b") == b"B"
        cache.flush()
        clock.now += 1
        cache.put("p", b"c", b"C")
        cache.flush()
        assert cache.get("p", b"a") is None  # its last recorded use is the oldest
        assert cache.get("p", b"b") == b"B"


def test_ttl_expires_entries_by_age(tmp_path: Path) -> None:
    clock = Clock()
    with ParseCache(tmp_path / "c.sqlite", ttl_s=100, clock=clock) as cache:
        cache.put("p", b"old", b"1")
        cache.flush()
        clock.now += 60
        cache.put("p", b"new", b"2")
        cache.flush()
        clock.now += 50  # old is 110 s old, new is 50 s old
        assert cache.get("p", b"old") is None
        assert cache.get("p", b"new") == b"2"
        stats = cache.stats()
    assert stats["entries"] == 1  # the expired entry was deleted on lookup
    assert stats["expired"] == 1


def test_clear_removes_everything(tmp_path: Path) -> None:
    with ParseCache(tmp_path / "c.sqlite") as cache:
        for i in range(5):
            cache.put("p", bytes([i]), b"x")
        cache.flush()
        assert cache.clear() == 5
        assert cache.get("p", b"\x00") is None
        assert cache.stats()["entries"] == 0


def test_unusable_cache_is_never_fatal(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with ParseCache(blocker / "c.sqlite") as cache:
        cache.put("p", b"k", b"v")
        assert cache.get("p", b"k") is None
        assert cache.stats()["available"] is False


SCRIPT_A = b"CREATE TABLE a (x INT PRIMARY KEY);\nCREATE TABLE b (y INT REFERENCES a(x));\n"
SCRIPT_B = b"CREATE TABLE a (x INT PRIMARY KEY, z TEXT);\nCREATE TABLE b (y INT REFERENCES a(x));\n"


def _count_parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    from headrace.parsers.sql import script

    seen: list[str] = []
    real = script.extract

    def counting(stmt, dialect):  # type: ignore[no-untyped-def]
        seen.append(stmt.text)
        return real(stmt, dialect)

    monkeypatch.setattr(script, "extract", counting)
    return seen


def test_same_content_and_flip_back_are_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parsed = _count_parses(monkeypatch)
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("postgres", cache)
        first, hit = parser.parse(SCRIPT_A)
        assert not hit
        assert len(parsed) == 2
        again, hit = parser.parse(SCRIPT_A)  # same content (another path: same key)
        assert hit
        assert again.statements == first.statements
        assert len(parsed) == 2
        _, hit = parser.parse(SCRIPT_B)  # an edit: only the changed statement is parsed
        assert not hit
        assert parsed[2:] == [SCRIPT_B.decode().split(";")[0]]
        back, hit = parser.parse(SCRIPT_A)  # flips back to the earlier content
        assert hit
        assert back.statements == first.statements
        assert len(parsed) == 3
        _, hit = ScriptParser("mysql", cache).parse(SCRIPT_A)  # the dialect is in the key
        assert not hit


def test_without_whole_entries_none_is_looked_up_or_stored(tmp_path: Path) -> None:
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("postgres", cache)
        parser.parse(SCRIPT_A)  # a whole-file entry exists now
        first, hit = parser.parse(SCRIPT_A, whole_entry=False)
        assert not hit  # not looked up: the statements came from their own entries
        assert first.counts["cached"] == 2
        before = cache.stats()["entries"]
        parser.parse(SCRIPT_B, whole_entry=False)
        assert cache.stats()["entries"] == before + 1  # the changed statement only


def test_cached_statement_facts_move_with_their_line(tmp_path: Path) -> None:
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("sqlite", cache)
        parser.parse(b"CREATE TABLE t (a INT);\n")
        result, hit = parser.parse(b"-- moved\n\n\nCREATE TABLE t (a INT);\n")
    assert not hit  # a different file, but its one statement came from the cache
    assert [line for line, _facts in result.statements] == [4]
    assert result.statements[0][1][0]["line"] == 4


def test_a_cached_statement_at_the_same_line_shares_its_facts(tmp_path: Path) -> None:
    """Variants of a schema hold most statements at the same lines: their facts are
    shifted once per (statement, line) and shared (facts are never changed)."""
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("sqlite", cache)
        parser.parse(b"CREATE TABLE t (a INT);\n", whole_entry=False)
        one, _ = parser.parse(b"CREATE TABLE t (a INT);\n-- one\n", whole_entry=False)
        two, _ = parser.parse(b"CREATE TABLE t (a INT);\n-- two\n", whole_entry=False)
        moved, _ = parser.parse(b"\nCREATE TABLE t (a INT);\n", whole_entry=False)
    assert one.statements[0][1] is two.statements[0][1]
    assert moved.statements[0][1] is not one.statements[0][1]
    assert moved.statements[0][1][0]["line"] == 2
    assert one.statements[0][1][0]["line"] == 1
