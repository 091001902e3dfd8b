"""The SQL statement splitter: terminators only where they really end a statement."""

from __future__ import annotations

from pathlib import Path

from headrace.parsers.sql import split
from headrace.parsers.sql.split import split_statements, statement_head


def texts(sql: str, **kw: bool) -> list[str]:
    return [s.text for s in split_statements(sql, **kw)]


def test_semicolons_inside_strings_comments_and_quotes_do_not_split() -> None:
    sql = (
        "CREATE TABLE a (x TEXT DEFAULT 'a;b', \"we;ird\" INT); -- c;d\n"
        "/* e; f */ CREATE VIEW v AS SELECT [x;y] FROM a;\n"
        "CREATE FUNCTION f() RETURNS int AS $body$ BEGIN; RETURN 1; END $body$ LANGUAGE plpgsql;\n"
    )
    out = texts(sql)
    assert len(out) == 3
    assert out[0].endswith(")")
    assert out[1].startswith("CREATE VIEW")  # leading comment is not part of the statement
    assert "RETURN 1;" in out[2]


def test_line_numbers_point_at_the_first_significant_line() -> None:
    sql = "-- header\n\nCREATE TABLE a (\n  x INT\n);\n\n\nCREATE TABLE b (y INT);\n"
    stmts = split_statements(sql)
    assert [(s.line, s.end_line, s.head) for s in stmts] == [
        (3, 5, "CREATE TABLE"),
        (8, 8, "CREATE TABLE"),
    ]


def test_mysql_delimiter_and_hash_comments() -> None:
    sql = (
        "# a comment; with a semicolon\n"
        "DELIMITER ;;\n"
        "CREATE TRIGGER t AFTER INSERT ON film FOR EACH ROW BEGIN\n"
        "  INSERT INTO film_text VALUES (new.film_id);\n"
        "END;;\n"
        "DELIMITER ;\n"
        "CREATE TABLE x (a INT);\n"
    )
    stmts = split_statements(sql, mysql=True)
    assert [s.head for s in stmts] == ["CREATE TRIGGER", "CREATE TABLE"]
    assert stmts[0].line == 3
    assert "INSERT INTO film_text" in stmts[0].text
    assert stmts[1].line == 7


def test_mysql_backslash_escapes_in_strings() -> None:
    sql = "INSERT INTO t VALUES ('it\\'s; fine');\nCREATE TABLE u (a INT);\n"
    assert [s.head for s in split_statements(sql, mysql=True)] == ["INSERT", "CREATE TABLE"]


def test_tsql_go_lines_end_batches_and_routines() -> None:
    sql = (
        "CREATE TABLE a (x INT)\nGO\n"
        "CREATE PROCEDURE p AS\nBEGIN\n  SELECT 1;\n  SELECT 2;\nEND\nGO\n"
        "CREATE INDEX i ON a(x)\ngo\n"
    )
    stmts = split_statements(sql)
    assert [s.head for s in stmts] == ["CREATE TABLE", "CREATE PROCEDURE", "CREATE INDEX"]
    assert "SELECT 2;" in stmts[1].text


def test_oracle_slash_ends_plsql_blocks_with_inner_semicolons() -> None:
    sql = (
        "CREATE OR REPLACE PROCEDURE p IS\n  v NUMBER;\nBEGIN\n  IF v > 0 THEN v := 1; END IF;\n"
        "END;\n/\n"
        "CREATE TABLE t (a NUMBER);\n"
    )
    stmts = split_statements(sql)
    assert [s.head for s in stmts] == ["CREATE PROCEDURE", "CREATE TABLE"]
    assert "END IF;" in stmts[0].text


def test_begin_end_depth_for_sqlite_triggers() -> None:
    sql = (
        "CREATE TRIGGER t AFTER UPDATE ON a\nBEGIN\n"
        "  UPDATE a SET x = CASE WHEN y THEN 1 ELSE 2 END WHERE rowid = new.rowid;\n"
        "END;\nCREATE TABLE b (c INT);\n"
    )
    stmts = split_statements(sql)
    assert [s.head for s in stmts] == ["CREATE TRIGGER", "CREATE TABLE"]
    assert stmts[1].line == 5


def test_insert_statements_are_cut_without_being_kept_whole() -> None:
    rows = ",\n".join(f"({i}, 'name;{i}', 'it''s')" for i in range(2000))
    sql = f"CREATE TABLE t (a INT);\nINSERT INTO t VALUES\n{rows};\nCREATE TABLE u (b INT);\n"
    stmts = split_statements(sql)
    assert [s.head for s in stmts] == ["CREATE TABLE", "INSERT", "CREATE TABLE"]
    assert len(stmts[1].text) <= 200  # only a prefix of a data statement is kept
    assert stmts[1].line == 2
    assert stmts[1].end_line == 2002  # line 2 is the head, rows take lines 3..2002
    assert stmts[2].line == 2003


def test_copy_from_stdin_data_is_skipped() -> None:
    sql = "COPY t (a) FROM stdin;\n1\tx;y\n2\tz\n\\.\nCREATE TABLE t2 (a INT);\n"
    stmts = split_statements(sql)
    assert [s.head for s in stmts] == ["COPY", "CREATE TABLE"]
    assert stmts[1].line == 5


def test_unterminated_string_runs_to_the_end() -> None:
    stmts = split_statements("CREATE TABLE a (x INT);\nCREATE TABLE b (y TEXT DEFAULT 'oops);\n")
    assert len(stmts) == 2
    assert stmts[1].line == 2


def test_statement_head() -> None:
    assert statement_head("create or replace view v as select 1") == "CREATE VIEW"
    assert statement_head("CREATE UNIQUE INDEX i ON t(a)") == "CREATE INDEX"
    assert statement_head("CREATE TABLE IF NOT EXISTS t (a int)") == "CREATE TABLE"
    assert statement_head("CREATE DEFINER=`root`@`%` SQL SECURITY INVOKER VIEW v AS SELECT 1") == (
        "CREATE VIEW"
    )
    assert statement_head("insert into t values (1)") == "INSERT"


def test_split_from_bytes_equals_split_from_text_on_every_fixture() -> None:
    """The bytes path (Latin-1 scan, statements decoded as UTF-8) cuts every fixture
    where the decoded text is cut, with the same lines and heads."""
    fixtures = sorted((Path(__file__).parents[2] / "fixtures" / "sql").glob("*/*.sql"))
    assert len(fixtures) >= 12
    for path in fixtures:
        data = path.read_bytes()
        for mysql in (False, True):
            text = split_statements(data.decode("utf-8"), mysql=mysql)
            raw = split_statements(data, mysql=mysql)
            assert [(s.text, s.line, s.end_line, s.head) for s in raw] == [
                (s.text, s.line, s.end_line, s.head) for s in text
            ], path.name


def test_invalid_utf8_in_a_statement_becomes_replacement_characters() -> None:
    data = b"CREATE TABLE t (a TEXT DEFAULT '\xff');\nINSERT INTO t VALUES ('\xfe;');\n"
    stmts = split_statements(data)
    assert [s.head for s in stmts] == ["CREATE TABLE", "INSERT"]
    assert "\ufffd" in stmts[0].text
    assert stmts[1].line == 2


def test_the_lower_cased_scanner_cuts_every_fixture_as_the_re_i_scanner() -> None:
    fixtures = sorted((Path(__file__).parents[2] / "fixtures" / "sql").glob("*/*.sql"))
    assert len(fixtures) >= 12
    for path in fixtures:
        for mysql in (False, True):
            got = []
            for lowerable in (False, True):
                splitter = split._Splitter(path.read_bytes().decode("latin-1"), mysql=mysql)
                splitter._lowerable = lowerable
                got.append([(s.text, s.line, s.end_line, s.head) for s in splitter.run()])
            assert got[0] == got[1], path.name
            assert got[0], path.name


def test_the_lower_cased_scanner_on_the_cases_it_must_not_get_wrong() -> None:
    """Keywords inside names, a delimiter made of letters, separator lines met at
    the start of a search, and case: both scanners agree, and on what is right."""
    cases = {
        "CREATE TRIGGER t xbegin ; a ;": ["CREATE TRIGGER t xbegin", "a"],
        "CREATE TRIGGER t begin_x ; a ;": ["CREATE TRIGGER t begin_x", "a"],
        "CREATE TRIGGER t Begin x; eNd; a;": ["CREATE TRIGGER t Begin x; eNd", "a"],
        "DELIMITER GIN\nCREATE TABLE x BEGIN GIN a GIN": ["CREATE TABLE x BEGIN", "a"],
        "DELIMITER //\nCREATE PROCEDURE p() BEGIN SELECT 1; END//\ndelimiter ;\nSELECT 2;": [
            "CREATE PROCEDURE p() BEGIN SELECT 1; END",
            "SELECT 2",
        ],
        "CREATE TABLE a (x int)\ngo\nCREATE TABLE b (y int)\n  Go  \n": [
            "CREATE TABLE a (x int)",
            "CREATE TABLE b (y int)",
        ],
        "BEGIN\n  x := 1;\nEND;\n/\nCREATE TYPE t AS OBJECT (a int);\n/\n": [
            "BEGIN\n  x := 1;\nEND;",
            "CREATE TYPE t AS OBJECT (a int);",
        ],
        "CREATE FUNCTION f() AS $Body$ select ';' $body$ x; $Body$;": [
            "CREATE FUNCTION f() AS $Body$ select ';' $body$ x; $Body$"
        ],
    }
    for script, expected in cases.items():
        for data in (script, script.encode()):
            assert texts(data) == expected, script  # type: ignore[arg-type]
    # (the bytes path sees a UTF-8 letter as two non-word characters: a boundary)
    for script in [*cases, "CREATE TRIGGER t ÉBegin ; a ;", "CREATE TRIGGER t Begin ; a ;"]:
        text = script.encode().decode("latin-1")
        got = []
        for lowerable in (False, True):
            splitter = split._Splitter(text, mysql=False)
            splitter._lowerable = lowerable
            got.append([s.text for s in splitter.run()])
        assert got[0] == got[1], script
