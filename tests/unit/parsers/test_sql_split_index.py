"""The splitter's index of statements seen before (``SplitIndex``): a split with it
is the split without it, whatever the index learned from."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.parsers.sql import split
from headrace.parsers.sql.split import SplitIndex, Statement, split_statements

FIXTURES = sorted((Path(__file__).parents[2] / "fixtures" / "sql").glob("*/*.sql"))
LONG = ", ".join(f"'{i:03d}'" for i in range(80))  # a data statement over 200 characters
_VARCHAR = re.compile(r"(?i)\b(varchar2?|character varying)\s*\((\d+)\)")


def cut(stmts: list[Statement]) -> list[tuple[str, int, int, str]]:
    return [(s.text, s.line, s.end_line, s.head) for s in stmts]


def variant(text: str, k: int) -> str:
    """As bench/sql_ingest.py: one VARCHAR widened, one table appended; and, for
    line numbers that move, ``k`` comment lines put in front."""
    widened = _VARCHAR.sub(lambda m: f"{m.group(1)}({int(m.group(2)) + 1 + k})", text, count=1)
    extra = f"\nCREATE TABLE variant_{k:05d} (id INTEGER NOT NULL PRIMARY KEY);"
    return "-- moved\n" * k + widened + extra + "\n"


def warm_and_cold(target: str | bytes, *learn: str | bytes, mysql: bool) -> SplitIndex:
    index = SplitIndex()
    for text in learn:
        split_statements(text, mysql=mysql, index=index)
    cold = cut(split_statements(target, mysql=mysql))
    hits = index.hits
    assert cut(split_statements(target, mysql=mysql, index=index)) == cold
    index.hits -= hits  # the target's hits
    return index


def test_every_fixture_splits_alike_with_an_index_warmed_by_itself() -> None:
    assert len(FIXTURES) >= 12
    for path in FIXTURES:
        data = path.read_bytes()
        for mysql in (False, True):
            for text in (data, data.decode("utf-8")):
                index = warm_and_cold(text, text, mysql=mysql)
                stmts = split_statements(text, mysql=mysql)
                # every statement reused, but those with a DEFINER head (never learned)
                definer = [s for s in stmts if re.match(r"CREATE\s+DEFINER", s.text, re.I)]
                assert index.hits == len(stmts) - len(definer), path.name


def test_every_fixture_splits_alike_with_an_index_warmed_by_a_sibling_variant() -> None:
    for path in FIXTURES:
        base = path.read_text(encoding="utf-8")
        mysql = "mysql" in path.name.lower()
        for k in (0, 3):
            target = variant(base, k).encode()
            index = warm_and_cold(target, variant(base, 1).encode(), mysql=mysql)
            assert index.hits > 0, path.name
            # and the other way round, from the base file plus every other fixture
            others = [p.read_bytes() for p in FIXTURES]
            warm_and_cold(base.encode(), target, *others, mysql=mysql)


def test_statements_that_ended_the_text_are_reused_only_at_the_end() -> None:
    cases = [
        ("CREATE TABLE a (x INT)", "CREATE TABLE a (x INT);\nCREATE TABLE b (y INT);"),
        ("CREATE TABLE a (x INT)\nGO", "CREATE TABLE a (x INT)\nGO\nCREATE TABLE b (y INT)\nGO\n"),
        ("CREATE TABLE a (x INT)\nGO", "CREATE TABLE a (x INT)\nGOX\nCREATE TABLE b (y INT)\n"),
        (
            "CREATE PROCEDURE p AS\nBEGIN SELECT 1; END",
            "CREATE PROCEDURE p AS\nBEGIN SELECT 1; END;\nx;",
        ),
        ("INSERT INTO t VALUES ('a;b')", "INSERT INTO t VALUES ('a;b');\nCREATE TABLE u (a INT);"),
        ("SELECT 'open", "SELECT 'open';\nSELECT 2;"),
    ]
    for learned, target in cases:
        for mysql in (False, True):
            warm_and_cold(target, learned, mysql=mysql)
            warm_and_cold(learned, target, mysql=mysql)


def test_what_follows_a_statement_decides_nothing_the_index_skips() -> None:
    """Pairs of scripts whose statements are alike but where the scanner's decision
    depends on what comes after them, or on the whole script."""
    pairs = [
        # a routine ends at ``;`` without separator lines in the script, at ``/`` with
        (
            "CREATE PROCEDURE p IS BEGIN x; END;\nCREATE TABLE a (b INT);\n",
            "CREATE PROCEDURE p IS BEGIN x; END;\nCREATE TABLE a (b INT);\n/\n",
        ),
        ("BEGIN\n  x := 1;\nEND;\nSELECT 1;\n", "BEGIN\n  x := 1;\nEND;\nSELECT 1;\n/\n"),
        # GO only as a whole line
        ("CREATE TABLE a (x INT)\nGO\n", "CREATE TABLE a (x INT)\nGO x\nGO\n"),
        ("CREATE TABLE a (x INT)\n/\n", "CREATE TABLE a (x INT)\n/*x*/\n/\n"),
        # DELIMITER lines, a delimiter made of letters and one that is a keyword
        (
            "DELIMITER //\nCREATE TRIGGER t BEGIN x; END//\nDELIMITER ;\nSELECT 1;\n",
            "DELIMITER //\nCREATE TRIGGER t BEGIN x; END//\nSELECT 1;\n",
        ),
        ("DELIMITER x\nSELECT $ab x\nSELECT 1x", "DELIMITER x\nSELECT $ab$ x\nSELECT 1x"),
        (
            "DELIMITER GIN\nCREATE TABLE x BEGIN GIN a GIN",
            "DELIMITER GIN\nCREATE TABLE x BEGIN GINa GIN",
        ),
        ("CREATE TRIGGER t BEGIN x; END\nx;\n/\n", "CREATE TRIGGER t BEGIN x; END\nIF;\n/\n"),
        # a DELIMITER line that holds the terminator
        ("CREATE TRIGGER t x\ndelimiter a;b c\n;\n", "CREATE TRIGGER t x\ndelimiter a;b\n;\n"),
        # a DEFINER head whose value runs across the ``;``
        ("CREATE DEFINER=x; SELECT 1;\n/\n", "CREATE DEFINER=x;\nTRIGGER t BEGIN y; END;\n/\n"),
        # a data statement whose ``/*`` is closed only after its ``;`` (found by Hypothesis)
        ("INSERT INTO t/*COPY x FROM stdin;", "INSERT INTO t/*COPY x FROM stdin;*/"),
        ("INSERT INTO t VALUES ('\\'', /* ;", "INSERT INTO t VALUES ('\\'', /* ; */ 1);"),
        # COPY data follows the statement
        ("COPY t FROM stdin;\n1\t2\n\\.\nSELECT 1;\n", "COPY t FROM stdin;\nSELECT 1;\n\\.\n"),
        # the same data statement after a terminator (a prefix kept) and after a GO line
        (
            f"INSERT INTO t VALUES ({LONG});\nSELECT 1;\n",
            f"SELECT 1\nGO\nINSERT INTO t VALUES ({LONG});\nGO\n",
        ),
        # GO at the start of a statement: a separator line only where a line starts
        ("SELECT 1\nGO\n/* c */GO\nSELECT 2\nGO\n", "SELECT 1\nGO\nGO\nSELECT 2\nGO\n"),
        # a keyword (or not) right after a delimiter that ends in a letter
        (
            "DELIMITER egin\nSELECT 1 egin\nbegin 2egin\n",
            "DELIMITER egin\nSELECT 1eginbegin 2egin\n",
        ),
        # a keyword right after the previous statement's last character
        (
            "DELIMITER x\nCREATE TRIGGER t xbegin ; end; a x",
            "DELIMITER x\nCREATE TRIGGER t x;begin ; end; a x",
        ),
        (
            "CREATE TABLE a (x INT);;;CREATE TABLE b (y INT);",
            "CREATE TABLE a (x INT);CREATE TABLE b (y INT);",
        ),
    ]
    for one, other in pairs:
        for mysql in (False, True):
            for a, b in ((one, other), (other, one)):
                warm_and_cold(b, a, mysql=mysql)
                warm_and_cold(b.encode(), a.encode(), mysql=mysql)


def test_the_index_stays_within_its_bounds_and_still_cuts_alike() -> None:
    texts = [p.read_bytes() for p in FIXTURES]
    index = SplitIndex(max_chars=20_000, max_entries=50)
    for data in texts:
        for _ in range(2):  # the second time from what the first left
            cold = cut(split_statements(data))
            assert cut(split_statements(data, index=index)) == cold
            assert index.chars <= 20_000
            assert index.entries <= 50
    assert index.hits > 0
    total = 0
    for table in index._tables.values():
        for key, entries in table.items():
            for entry in entries:
                stmt = entry[2] if len(entry) == 5 else entry[6]
                assert entry[-1] == len(key) + len(entry[0]) + len(stmt.text)
                total += entry[-1]
    assert total == index.chars
    assert sum(len(e) for t in index._tables.values() for e in t.values()) == index.entries


def test_chains_of_statements_are_followed_where_the_text_is_theirs_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Statements cut one after the other become a chain: where the first is reused,
    the following ones that are there again come without a scan or a lookup — up to
    an edited one, after which the chain is taken up again; lines may have moved."""
    lookups = [0]
    seen = split._seen

    def counted(*args: Any) -> Any:
        lookups[0] += 1
        return seen(*args)

    monkeypatch.setattr(split, "_seen", counted)
    base = "".join(f"CREATE TABLE t{i} (a INT, b VARCHAR(10));\n-- c {i}\n" for i in range(30))
    edited = base.replace("t12 (a INT", "t12 (a BIGINT").replace("t25 (a", "t25 (z")
    for learned, target in ((base, edited), (edited, base), (base, "-- x\n\n" + edited)):
        for mysql in (False, True):
            for conv in (_same, _encode):
                index = warm_and_cold(conv(target), conv(learned), mysql=mysql)
                assert index.links
                assert index.chain_chars > 0
                assert index.hits == 28  # every statement but the two edited ones reused
                lookups[0] = 0
                assert cut(split_statements(conv(target), mysql=mysql, index=index))
                # the first statement, the two edited ones, the one after each (in the
                # index, and its chain's), the end: not one lookup per statement
                assert lookups[0] <= 6


def _same(text: str) -> str | bytes:
    return text


def _encode(text: str) -> str | bytes:
    return text.encode()


def test_a_chain_stops_before_a_data_statement_after_a_separator_line() -> None:
    """After a ``GO`` line a data statement is not reused (``_seen``), so a chain
    through it stops there; the split is the split without the index."""
    learned = "SELECT 1;\nSELECT 2;\nINSERT INTO t VALUES (1);\nSELECT 3;\n"
    for target in (f"SELECT 0\nGO\n{learned}", f"SELECT 0\nGO\n{learned}GO\n{learned}"):
        for mysql in (False, True):
            warm_and_cold(target, learned, mysql=mysql)
            warm_and_cold(target.encode(), learned.encode(), mysql=mysql)


def test_chains_stay_within_the_bound_with_the_entries() -> None:
    texts = [p.read_bytes() for p in FIXTURES]
    index = SplitIndex(max_chars=30_000, max_entries=200)
    for data in texts * 2:
        cold = cut(split_statements(data))
        assert cut(split_statements(data, index=index)) == cold
        assert index.chars + index.chain_chars <= 30_000
        assert index.entries + index.chain_items <= 200
        # the chains the links hold are counted (the bound holds them too)
        held = {id(chain): chain for _, chain, _ in index.links.values()}
        assert sum(len(chain.text) for chain in held.values()) <= index.chain_chars


_TOKENS = (
    "GO",
    "go",
    "/",
    "DELIMITER //",
    "DELIMITER ;",
    "BEGIN",
    "END",
    "END IF",
    "CASE",
    "$$",
    "'",
    '"',
    "--",
    "/*",
    "*/",
    ";",
    "CREATE TRIGGER t",
    "CREATE PROCEDURE p",
    "CREATE TABLE x (a int);",
    "CREATE DEFINER=u",
    "INSERT INTO t VALUES ('a;b');",
    "DECLARE",
    "COPY x FROM stdin;",
    "\\.",
    "SELECT 1;",
    "x",
    "\n",
    "\n",
    " ",
    "\nGO\n",
    "\n/\n",
)


def _without_hints(monkeypatch: pytest.MonkeyPatch) -> None:
    """The general scanner reads the text itself, not what ``_fast`` found."""
    fast = split._Splitter._fast

    def no_hint(self: Any, pos: int, data: bool = True) -> int:
        out = fast(self, pos, data)
        self._hint = None
        return out

    monkeypatch.setattr(split._Splitter, "_fast", no_hint)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from(_TOKENS), max_size=40), st.booleans(), st.booleans())
def test_what_the_fast_loop_found_where_it_stopped_is_what_the_scanner_finds(
    tokens: list[str], mysql: bool, as_bytes: bool
) -> None:
    """``_fast`` hands the general scanner the significant start, ``_SPECIAL_START``
    and ``_block_at`` where it stopped (``_hint``): the cut is the cut without."""
    text = " ".join(tokens)
    script: str | bytes = text.encode() if as_bytes else text
    with pytest.MonkeyPatch.context() as mp:
        _without_hints(mp)
        expected = cut(split_statements(script, mysql=mysql))
    assert cut(split_statements(script, mysql=mysql)) == expected
    index = SplitIndex()
    for _ in range(2):
        assert cut(split_statements(script, mysql=mysql, index=index)) == expected


def test_the_fixtures_cut_alike_with_and_without_the_fast_loops_hints(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cases = [(p.read_bytes(), mysql) for p in FIXTURES for mysql in (False, True)]
    hinted = [cut(split_statements(data, mysql=mysql)) for data, mysql in cases]
    _without_hints(monkeypatch)
    assert [cut(split_statements(data, mysql=mysql)) for data, mysql in cases] == hinted
