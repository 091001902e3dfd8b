"""Statements that differ only in integer literals share one parse (the shape cache).

The shape path writes integers back into the facts as text; these tests are what
keeps that exact: every fixture statement and a grid of types, defaults and checks
in every dialect must give the facts of parsing the statement itself.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from headrace.parsers.cache import ParseCache
from headrace.parsers.sql.dialect import detect_dialect
from headrace.parsers.sql.extract import StatementError, extract
from headrace.parsers.sql.script import ScriptParser
from headrace.parsers.sql.split import split_statements

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "sql"
SQL_FILES = sorted(FIXTURES.glob("*/*.sql"))
_INT = re.compile(r"(?<![\w.$@#:'])([1-9][0-9]*)(?![\w.'])")


def perturbed(text: str) -> str:
    """``text`` with its integers changed: the same shapes, other values."""
    return _INT.sub(lambda m: str(int(m.group(1)) + 7), text)


def test_every_fixture_statement_gets_its_own_facts_through_a_sibling_shape(
    tmp_path: Path,
) -> None:
    shaped = 0
    for path in SQL_FILES:
        data = path.read_bytes()
        dialect = detect_dialect(path.name, data.decode("utf-8", "replace"))
        expected, _ = ScriptParser(dialect).parse(data)  # no cache: every statement parsed
        with ParseCache(tmp_path / f"{path.stem}.sqlite") as cache:
            parser = ScriptParser(dialect, cache)
            parser.parse(perturbed(data.decode("utf-8")).encode(), whole_entry=False)  # shapes
            got, hit = parser.parse(data, whole_entry=False)
        assert not hit
        assert got.statements == expected.statements, path.name
        assert got.issues == expected.issues, path.name
        shaped += got.counts.get("shaped", 0)
        # every statement served or parsed (a name shape's check parses once more)
        served = got.counts.get("cached", 0)
        assert served <= expected.counts.get("parsed", 0), path.name
        assert served + got.counts.get("parsed", 0) >= expected.counts.get("parsed", 0)
    assert shaped >= 100  # the path was taken (111 statements with integers today)


DIALECTS = ["mysql", "postgres", "tsql", "sqlite", "oracle", ""]
COLUMNS = [
    "FLOAT({})",
    "REAL({})",
    "DOUBLE PRECISION({})",
    "NUMBER({},2)",
    "DECIMAL({},2)",
    "DECIMAL(10,{})",
    "VARCHAR({})",
    "NVARCHAR({})",
    "VARCHAR2({})",
    "TINYINT({})",
    "BIT({})",
    "INT({})",
    "TIMESTAMP({})",
    "DATETIME2({})",
    "VARBINARY({})",
    "INTERVAL DAY({}) TO SECOND",
    "INT DEFAULT {}",
    "INT DEFAULT -{}",
    "INT CHECK (x > {})",
    "INT IDENTITY({},1)",
]
VALUES = [0, 1, 24, 25, 53, 255, 4000, 65536, 2147483648]


def _facts_or_error(sql: str, dialect: str) -> object:
    (stmt,) = split_statements(sql.encode(), mysql=dialect == "mysql")
    try:
        return extract(stmt, dialect)
    except StatementError as exc:
        return ("error", str(exc))


@pytest.mark.parametrize("dialect", DIALECTS)
def test_integers_never_change_facts_other_than_verbatim(tmp_path: Path, dialect: str) -> None:
    """Thresholds (``FLOAT(24)`` vs ``FLOAT(53)``), signs, huge values: the shape's
    facts with the value written back equal the statement's own, errors included."""
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser(dialect, cache)
        for column in COLUMNS:
            sql = f"CREATE TABLE t (x {column});"
            parser.parse(sql.format(987).encode())  # the shape, learnt from another value
            for value in VALUES:
                got, _ = parser.parse(sql.format(value).encode())
                want = _facts_or_error(sql.format(value), dialect)
                if isinstance(want, tuple):
                    assert [msg for _, msg in got.issues] == [want[1]], (column, value)
                else:
                    assert got.statements == [(1, want)] if want else [], (column, value)
                    assert got.counts.get("shaped") == 1, (column, value)


def test_a_widened_column_is_not_parsed_again(tmp_path: Path) -> None:
    v1 = b"CREATE TABLE a (id INT PRIMARY KEY, name VARCHAR(45) DEFAULT 'x 1');\n"
    v2 = b"\n\nCREATE TABLE a (id INT PRIMARY KEY, name VARCHAR(46) DEFAULT 'x 1');\n"
    with ParseCache(tmp_path / "c.sqlite") as cache:
        first, _ = ScriptParser("postgres", cache).parse(v1, whole_entry=False)
        # the shape from the cache file (a new parser: not from its memory)
        second, _ = ScriptParser("postgres", cache).parse(v2, whole_entry=False)
        third, _ = ScriptParser("postgres", cache).parse(v2, whole_entry=False)
    assert first.counts.get("parsed") == 1
    assert second.counts.get("parsed") is None
    assert second.counts.get("shaped") == 1
    assert third.counts.get("shaped") is None
    assert third.counts.get("cached") == 1
    (line, (fact,)) = second.statements[0]
    assert line == 3
    assert fact["line"] == 3
    assert [c["type"] for c in fact["columns"]] == ["INT", "VARCHAR(46)"]
    assert fact["columns"][1]["default"] == "'x 1'"  # digits inside quotes are kept
    assert second.statements == ScriptParser("postgres").parse(v2)[0].statements


def test_statements_a_shape_cannot_serve_are_parsed_as_themselves(tmp_path: Path) -> None:
    # A number like the sentinels, a failing statement, no integers at all.
    scripts = [
        b"CREATE TABLE s (x NUMERIC(9876500001));",
        b"CREATE TABLE s (x NUMERIC(9876500002));",
        b"CREATE TABLE f (x INT(3) CHECK ());",
        b"CREATE TABLE f (x INT(4) CHECK ());",
        b"CREATE TABLE n (x TEXT);",
    ]
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("postgres", cache)
        for script in scripts:
            got, _ = parser.parse(script)
            want, _ = ScriptParser("postgres").parse(script)
            assert got.counts.get("shaped") is None, script
            assert (got.statements, got.issues) == (want.statements, want.issues)
    assert want.statements
    assert any(ScriptParser("postgres").parse(scripts[3])[0].issues)


_NAME_DIGITS = re.compile(r"(?<=[A-Za-z_])([0-9]+)")


def renamed(text: str, k: int) -> str:
    """``text`` with the digits inside names changed (``payment_p2007_01`` ->
    ``payment_p2010_04``); type names with digits change too where they occur, which
    the name shapes must then not serve wrongly."""
    return _NAME_DIGITS.sub(lambda m: str(int(m.group(1)) + k).zfill(len(m.group(1))), text)


def test_every_fixture_statement_gets_its_own_facts_through_a_name_shape(
    tmp_path: Path,
) -> None:
    """Two renamed copies teach the name shapes (seen, then checked); a third copy is
    served by them and must give the facts of parsing it directly."""
    served = 0
    for path in SQL_FILES:
        text = path.read_text(encoding="utf-8")
        dialect = detect_dialect(path.name, text)
        third = renamed(text, 3).encode()
        expected, _ = ScriptParser(dialect).parse(third)
        with ParseCache(tmp_path / f"{path.stem}.sqlite") as cache:
            parser = ScriptParser(dialect, cache)
            parser.parse(renamed(text, 1).encode(), whole_entry=False)
            parser.parse(renamed(text, 2).encode(), whole_entry=False)
            got, _ = parser.parse(third, whole_entry=False)
        assert got.statements == expected.statements, path.name
        assert got.issues == expected.issues, path.name
        served += got.counts.get("shaped", 0)
    assert served >= 50  # the path was taken (64 statements today)


def test_name_shapes_leave_keywords_and_calls_and_check_what_they_learn(
    tmp_path: Path,
) -> None:
    scripts = [
        # a keyword with a digit is not a name: INT4 and INT8 differ
        [b"CREATE TABLE t1 (a INT4);", b"CREATE TABLE t2 (a INT8);", b"CREATE TABLE t3 (a INT4);"],
        # a function's digits are not a name's
        [
            b"CREATE TABLE f1 (a TEXT DEFAULT md5('x'));",
            b"CREATE TABLE f2 (a TEXT DEFAULT sha1('x'));",
            b"CREATE TABLE f3 (a TEXT DEFAULT sha2('x'));",
        ],
        # names with digits, no integer literal at all
        [
            b"ALTER TABLE p2007_01 ADD CONSTRAINT p2007_01_fk FOREIGN KEY (c) REFERENCES c1(id);",
            b"ALTER TABLE p2007_02 ADD CONSTRAINT p2007_02_fk FOREIGN KEY (c) REFERENCES c2(id);",
            b"ALTER TABLE p2007_03 ADD CONSTRAINT p2007_03_fk FOREIGN KEY (c) REFERENCES c3(id);",
        ],
    ]
    with ParseCache(tmp_path / "c.sqlite") as cache:
        for group in scripts:
            parser = ScriptParser("postgres", cache)
            for script in group:
                got, _ = parser.parse(script, whole_entry=False)
                want, _ = ScriptParser("postgres").parse(script)
                assert (got.statements, got.issues) == (want.statements, want.issues), script
    # the last group's third statement came from its name shape
    assert got.counts.get("shaped") == 1
    (fact,) = got.statements[0][1]
    assert fact["name"][2] == "p2007_03"
    assert fact["fks"][0]["ref"][2] == "c3"


def test_a_name_shape_is_kept_only_if_it_gives_the_statements_own_facts(
    tmp_path: Path,
) -> None:
    """Were type names with digits treated as names, ``INT8`` (BIGINT) would teach a
    shape that gives ``INT4`` the wrong type: the check at the second sighting refuses it."""
    scripts = [
        b"CREATE TABLE t1 (a INT4);",
        b"CREATE TABLE t2 (a INT8);",
        b"CREATE TABLE t3 (a INT4);",
    ]
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("postgres", cache)
        parser._keywords = frozenset()  # no keyword protection: the check must hold alone
        for script in scripts:
            got, _ = parser.parse(script, whole_entry=False)
            want, _ = ScriptParser("postgres").parse(script)
            assert got.statements == want.statements, script
    assert got.counts.get("shaped") is None
    assert got.statements[0][1][0]["columns"][0]["type"] == "INT"
