"""Schema migrations, one test per step, and the ledger's own bookkeeping rules.

Migrations: each step applies on an empty database and is recorded; migrating
again is a no-op; a schema newer than the code is refused; a failing step leaves
the database as it was. Ledger: dead-letter attempts and first-seen times survive
a replacement, ``files_under`` matches whole path components, and a failed
attempt never forgets an indexed file's content hash.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from headrace.errors import StoreError
from headrace.ledger import ledger as ledger_module
from headrace.ledger import migrations
from headrace.ledger.db import connect
from headrace.ledger.ledger import DeadLetter, Ledger
from headrace.ledger.migrations import LATEST, MIGRATIONS, current_version, migrate
from headrace.records import FileRef

# What each step must have created; add an entry with every new step.
STEP_TABLES = {
    1: {
        "meta",
        "files",
        "chunks",
        "chunks_fts",
        "embed_cache",
        "pending",
        "dead_letters",
        "runs",
    },
    2: {"cursors"},
    3: set(),  # an index only: pending_chunk
    4: {"staging"},
    5: set(),  # columns only: cursors.chain_offset, chain_state
    6: set(),  # a column only: cursors.bloom
    7: {"embed_cache_size"},  # + index embed_cache_age, triggers keeping the sizes
    8: set(),  # embed_cache rebuilt as a rowid table (same name)
}


def _tables(conn: apsw.Connection) -> set[str]:
    rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {row[0] for row in rows}


def _versions(conn: apsw.Connection) -> list[int]:
    return [row[0] for row in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


@pytest.fixture
def raw(tmp_path: Path) -> Iterator[apsw.Connection]:
    conn = apsw.Connection(str(tmp_path / "raw.sqlite"))
    yield conn
    conn.close()


def test_every_step_has_expectations() -> None:
    assert sorted(STEP_TABLES) == list(range(1, LATEST + 1))
    assert len(MIGRATIONS) == LATEST


@pytest.mark.parametrize("step", range(1, LATEST + 1))
def test_each_step_applies_and_is_recorded(raw: apsw.Connection, step: int) -> None:
    assert migrate(raw, target=step - 1) == step - 1
    before = _tables(raw)
    assert migrate(raw, target=step) == step
    assert _versions(raw) == list(range(1, step + 1))
    assert STEP_TABLES[step] <= _tables(raw) - before
    assert current_version(raw) == step


def test_empty_database_migrates_to_latest(raw: apsw.Connection) -> None:
    assert current_version(raw) == 0
    assert migrate(raw) == LATEST
    assert _versions(raw) == list(range(1, LATEST + 1))


def test_migrating_twice_is_a_no_op(raw: apsw.Connection) -> None:
    migrate(raw)
    recorded = list(raw.execute("SELECT version, applied_at FROM schema_migrations"))
    schema = list(raw.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name"))
    assert migrate(raw) == LATEST
    assert list(raw.execute("SELECT version, applied_at FROM schema_migrations")) == recorded
    assert list(raw.execute("SELECT type, name, sql FROM sqlite_master ORDER BY name")) == schema


def test_newer_schema_is_refused(raw: apsw.Connection, tmp_path: Path) -> None:
    migrate(raw)
    raw.execute("INSERT INTO schema_migrations VALUES (?, 0)", (LATEST + 1,))
    with pytest.raises(StoreError, match="newer"):
        migrate(raw)
    with pytest.raises(StoreError, match="newer"):
        connect(tmp_path / "raw.sqlite")


def test_a_failing_step_rolls_back(raw: apsw.Connection, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(conn: apsw.Connection) -> None:
        conn.execute("CREATE TABLE half_done(x)")
        raise RuntimeError("step failed midway")

    monkeypatch.setattr(migrations, "MIGRATIONS", [*MIGRATIONS, broken])
    monkeypatch.setattr(migrations, "LATEST", LATEST + 1)
    with pytest.raises(RuntimeError, match="midway"):
        migrations.migrate(raw, target=LATEST + 1)
    assert current_version(raw) == LATEST
    assert "half_done" not in _tables(raw)


# -- ledger ---------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    conn = connect(tmp_path / "index.sqlite")
    yield Ledger(conn)
    conn.close()


def _ref(path: str, size: int = 10, mtime_ns: int = 1, inode: int = 1) -> FileRef:
    root = path.rsplit("/", 1)[0]
    return FileRef(root, path.rsplit("/", 1)[1], path, size, mtime_ns, inode)


def _letter(line: int | None, at: float, stage: str = "parse") -> DeadLetter:
    return DeadLetter("/r/f.jsonl", stage, "ParseError", "bad", line, 0, 1, at, at)


def test_replace_dead_letters_keeps_attempts_and_first_seen(ledger: Ledger) -> None:
    ledger.replace_dead_letters("/r/f.jsonl", [_letter(2, 100.0), _letter(None, 100.0)])
    ledger.replace_dead_letters("/r/f.jsonl", [_letter(2, 200.0), _letter(None, 200.0)])
    ledger.replace_dead_letters(
        "/r/f.jsonl", [_letter(2, 300.0), _letter(None, 300.0), _letter(5, 300.0)]
    )
    got = {
        (d.line, d.stage): (d.attempts, d.first_seen, d.last_seen) for d in ledger.dead_letters()
    }
    assert got == {
        (2, "parse"): (3, 100.0, 300.0),
        (None, "parse"): (3, 100.0, 300.0),
        (5, "parse"): (1, 300.0, 300.0),
    }


def test_replace_dead_letters_counts_per_stage(ledger: Ledger) -> None:
    ledger.replace_dead_letters("/r/f.jsonl", [_letter(2, 100.0, stage="parse")])
    ledger.replace_dead_letters("/r/f.jsonl", [_letter(2, 200.0, stage="read")])
    [letter] = ledger.dead_letters()
    assert (letter.stage, letter.attempts, letter.first_seen) == ("read", 1, 200.0)


def test_replace_dead_letters_with_none_clears_the_file(ledger: Ledger) -> None:
    ledger.replace_dead_letters("/r/f.jsonl", [_letter(2, 100.0)])
    ledger.replace_dead_letters("/r/f.jsonl", [])
    assert ledger.dead_letters() == []


def test_files_under_matches_whole_path_components(ledger: Ledger) -> None:
    inside = ["/a/b/x.md", "/a/b/c/d.md"]
    outside = ["/a/bc/x.md", "/a/b.md", "/a/b0/x.md", "/a/x.md", "/z/b/x.md"]
    for path in inside + outside:
        ledger.upsert(_ref(path), content_hash="h", state="indexed", signature="s")
    assert sorted(ledger.files_under(["/a/b"])) == sorted(inside)
    assert sorted(ledger.files_under(["/a/b/"])) == sorted(inside)
    assert sorted(ledger.files_under(["/a/b", "/z"])) == sorted([*inside, "/z/b/x.md"])


def test_files_under_is_a_lazy_view_paged_and_deduplicated(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ledger_module, "_PAGE", 3)  # several pages per root
    inside = [f"/a/b/f{i:02d}.md" for i in range(8)]
    for path in [*inside, "/a/bc/x.md", "/z/y.md"]:
        ledger.upsert(_ref(path), content_hash="h", state="indexed", signature="s")
    view = ledger.files_under(["/a/b", "/a/b/f0", "/a/b/"])  # nested roots: listed once
    assert list(view) == inside  # in path order, each once, across pages
    assert len(view) == 8
    assert view["/a/b/f03.md"].path == "/a/b/f03.md"
    assert "/a/bc/x.md" not in view
    assert "/z/y.md" not in view
    with pytest.raises(KeyError):
        view["/a/bc/x.md"]
    ledger.forget("/a/b/f00.md")  # it reads the ledger at each call
    assert "/a/b/f00.md" not in view
    assert len(view) == 7


def test_mark_failed_keeps_an_indexed_files_content_hash(ledger: Ledger) -> None:
    ledger.upsert(_ref("/r/f.md"), content_hash="h1", state="indexed", signature="s")
    ledger.mark_failed(_ref("/r/f.md", size=20, mtime_ns=2, inode=3), "unreadable", "s")
    stored = ledger.get("/r/f.md")
    assert stored is not None
    assert (stored.state, stored.content_hash) == ("failed", "h1")
    assert stored.stat() == (20, 2, 3)


def test_mark_failed_on_a_new_file_records_no_hash(ledger: Ledger) -> None:
    ledger.mark_failed(_ref("/r/new.md"), "unreadable", "s")
    stored = ledger.get("/r/new.md")
    assert stored is not None
    assert (stored.state, stored.content_hash, stored.signature) == ("failed", None, "s")
