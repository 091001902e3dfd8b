"""SQL statements -> schema facts; dialect detection; unreadable statements and data skipping."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.errors import ConfigError
from headrace.parsers.cache import ParseCache
from headrace.parsers.sql.dialect import detect_dialect, resolve_dialect
from headrace.parsers.sql.extract import StatementError, classify, extract, head_kind
from headrace.parsers.sql.script import ScriptParser
from headrace.parsers.sql.split import split_statements


def facts(sql: str, dialect: str = "postgres") -> list[dict[str, object]]:
    (stmt,) = split_statements(sql, mysql=dialect == "mysql")
    return extract(stmt, dialect)


def test_table_columns_types_constraints_and_keys() -> None:
    (fact,) = facts(
        "CREATE TABLE s.film (\n"
        "  film_id SERIAL PRIMARY KEY,\n"
        "  title VARCHAR(255) NOT NULL,\n"
        "  language_id INT NOT NULL REFERENCES language (language_id) ON DELETE RESTRICT,\n"
        "  rating TEXT DEFAULT 'G' UNIQUE,\n"
        "  CONSTRAINT fk_orig FOREIGN KEY (orig_id) REFERENCES other.language (language_id)\n"
        ");"
    )
    assert fact["t"] == "table"
    assert fact["name"] == [None, "s", "film"]
    cols = {c["name"]: c for c in fact["columns"]}  # type: ignore[attr-defined]
    assert list(cols) == ["film_id", "title", "language_id", "rating"]
    assert cols["title"]["type"] == "VARCHAR(255)"
    assert cols["title"]["nullable"] is False
    assert cols["film_id"]["pk"] is True
    assert fact["pk"] == ["film_id"]
    assert cols["rating"]["unique"] is True
    assert cols["rating"]["default"] == "'G'"
    fks = fact["fks"]
    assert fks == [
        {
            "name": "",
            "cols": ["language_id"],
            "ref": [None, None, "language"],
            "ref_cols": ["language_id"],
            "on_delete": "RESTRICT",
        },
        {
            "name": "fk_orig",
            "cols": ["orig_id"],
            "ref": [None, "other", "language"],
            "ref_cols": ["language_id"],
        },
    ]


def test_mysql_keys_inside_create_table_and_index_statements() -> None:
    (table,) = facts(
        "CREATE TABLE `t` (`a` INT, `b` INT, PRIMARY KEY (`a`), KEY idx_b (`b`),"
        " UNIQUE KEY uq_ab (`a`, `b`)) ENGINE=InnoDB;",
        "mysql",
    )
    assert table["pk"] == ["a"]
    assert {"name": "idx_b", "cols": ["b"], "unique": False} in table["indexes"]  # type: ignore[operator]
    assert {"name": "uq_ab", "cols": ["a", "b"], "unique": True} in table["indexes"]  # type: ignore[operator]
    (index,) = facts("CREATE UNIQUE INDEX ix ON t (a, b);")
    assert index == {
        "t": "index",
        "name": "ix",
        "table": [None, None, "t"],
        "cols": ["a", "b"],
        "unique": True,
        "line": 1,
    }


def test_view_reads_its_tables_but_not_its_ctes() -> None:
    (view,) = facts(
        "CREATE VIEW v AS WITH x AS (SELECT * FROM a) SELECT * FROM x JOIN s.b ON x.i = b.i;"
    )
    assert view["t"] == "view"
    assert {tuple(n) for n in view["reads"]} == {(None, None, "a"), (None, "s", "b")}  # type: ignore[attr-defined]


def test_routines_are_read_by_token_patterns() -> None:
    (trigger,) = facts(
        "CREATE TRIGGER trg AFTER INSERT ON film FOR EACH ROW BEGIN\n"
        "  INSERT INTO film_text (id) SELECT film_id FROM film WHERE x = 'FROM nowhere';\n"
        "  SELECT EXTRACT(YEAR FROM now());\n"
        "END;",
        "mysql",
    )
    assert trigger["kind"] == "trigger"
    assert trigger["name"] == [None, None, "trg"]
    assert trigger["on"] == [None, None, "film"]
    assert trigger["writes"] == [[None, None, "film_text"]]
    assert trigger["reads"] == [[None, None, "film"]]


def test_alter_table_adds_constraints_and_drops_columns() -> None:
    (alter,) = facts(
        "ALTER TABLE ONLY film ADD CONSTRAINT fk FOREIGN KEY (lang) REFERENCES language(id);"
    )
    assert alter["t"] == "alter"
    assert alter["fks"][0]["ref"] == [None, None, "language"]
    (drop,) = facts("ALTER TABLE film DROP COLUMN rating;")
    assert drop["drop_columns"] == ["rating"]


def test_unreadable_create_raises_with_its_line() -> None:
    (stmt,) = split_statements("\n\nCREATE TABLE t (a INT,\n  b INT REFERENCES);")
    with pytest.raises(StatementError) as err:
        extract(stmt, "postgres")
    assert err.value.line == 4  # the line sqlglot stopped at, counted in the file
    assert "')'" in str(err.value)


def test_a_bad_statement_is_an_issue_and_the_rest_counts() -> None:
    script = (
        b"CREATE TABLE ok1 (a INT);\n"
        b"CREATE TABLE broken (a INT NOT NULL NOT);\n"
        b"INSERT INTO ok1 VALUES (1), (2);\n"
        b"CREATE TABLE ok2 (b INT REFERENCES ok1(a));\n"
    )
    result, _ = ScriptParser("postgres").parse(script)
    assert [line for line, _ in result.issues] == [2]
    assert "CREATE TABLE" in result.issues[0][1]
    names = [f["name"][2] for _, fs in result.statements for f in fs]
    assert names == ["ok1", "ok2"]
    assert result.counts["data"] == 1
    assert result.counts["failed"] == 1


def test_data_statements_never_reach_the_sql_parser(monkeypatch: pytest.MonkeyPatch) -> None:
    import sqlglot

    calls: list[str] = []
    real = sqlglot.parse_one
    monkeypatch.setattr(
        sqlglot, "parse_one", lambda sql, **kw: calls.append(sql) or real(sql, **kw)
    )
    rows = ",".join(f"({i}, 'x')" for i in range(5000))
    script = f"CREATE TABLE t (a INT, b TEXT);\nINSERT INTO t VALUES {rows};\n".encode()
    result, _ = ScriptParser("sqlite").parse(script)
    assert len(calls) == 1
    assert calls[0].startswith("CREATE TABLE")
    assert result.counts == {"statements": 2, "data": 1, "parsed": 1}


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("mysql-sakila-schema.sql", "", "mysql"),
        ("Chinook_PostgreSql.sql", "", "postgres"),
        ("sql-server-sakila-schema.sql", "", "tsql"),
        ("oracle-sakila-schema.sql", "", "oracle"),
        ("schema.sql", "CREATE TABLE `a` (x INT) ENGINE=InnoDB;", "mysql"),
        ("schema.sql", "CREATE TABLE [dbo].[a] (x NVARCHAR(3))\nGO\n", "tsql"),
        ("schema.sql", "CREATE TABLE a (x VARCHAR2(3), n NUMBER(4));", "oracle"),
        ("schema.sql", "CREATE TABLE a (id SERIAL, t text DEFAULT 'x'::text);", "postgres"),
        ("schema.sql", "CREATE TABLE a (x INT);", ""),
    ],
)
def test_dialect_detection(name: str, text: str, expected: str) -> None:
    assert detect_dialect(f"/data/{name}", text) == expected


def test_dialect_names_resolve_and_unknown_is_a_config_error() -> None:
    assert resolve_dialect("SQLServer") == "tsql"
    assert resolve_dialect("auto") is None
    with pytest.raises(ConfigError, match="unknown SQL dialect"):
        resolve_dialect("cobol")


@pytest.mark.parametrize("dialect", ["mysql", "postgres", "sqlite", "tsql", "oracle", ""])
def test_types_and_defaults_are_written_as_expression_sql_writes_them(dialect: str) -> None:
    """``extract`` writes types and defaults with one generator per dialect, reused:
    the same text as ``Expression.sql`` (a new generator per call), every time."""
    import sqlglot
    from sqlglot import exp

    sql = (
        "CREATE TABLE t (a VARCHAR(45) NOT NULL DEFAULT 'x', b DECIMAL(5, 2) DEFAULT 1.5,"
        " c TIMESTAMP DEFAULT CURRENT_TIMESTAMP, d INT, e TEXT DEFAULT (1 + 2))"
    )
    tree = sqlglot.parse_one(sql, read=dialect or None)
    expected = [
        (c.args["kind"].sql(dialect=dialect or None), c.find(exp.DefaultColumnConstraint))
        for c in tree.find_all(exp.ColumnDef)
    ]
    for _ in range(2):
        (fact,) = facts(sql + ";", dialect)
        got = [(col["type"], col["default"]) for col in fact["columns"]]  # type: ignore[index]
        want = [(t, d.this.sql(dialect=dialect or None)[:200] if d else None) for t, d in expected]
        assert got == want


def test_a_batch_read_as_pieces_is_not_parsed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SQL Server batch without terminators fails whole and is read cut where each
    statement starts; the same batch in the next file (the same parser) is neither
    parsed whole nor piece by piece again, and gives the same facts and issues."""
    import sqlglot

    from headrace.parsers.cache import ParseCache

    calls: list[str] = []
    real = sqlglot.parse_one
    monkeypatch.setattr(
        sqlglot, "parse_one", lambda sql, **kw: calls.append(sql) or real(sql, **kw)
    )
    batch = (
        b"CREATE TABLE a (x INT NOT NULL)\n"
        b"CREATE TABLE b (y INT REFERENCES a (x))\n"
        b"CREATE TABLE broken (z INT NOT NULL NOT)\n"
        b"GO\n"
    )
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("tsql", cache)
        first, _ = parser.parse(batch, whole_entry=False)
        parsed = len(calls)
        second, _ = parser.parse(b"\n" + batch, whole_entry=False)  # other content, one line down
    assert parsed > 3  # the batch (failing), then each piece
    assert len(calls) == parsed
    names = [f["name"][2] for _, fs in first.statements for f in fs]
    assert names == ["a", "b"]
    assert [(line + 1, facts) for line, facts in first.statements] == [
        (line, [{**f, "line": f["line"] - 1} for f in facts]) for line, facts in second.statements
    ]
    assert [(line + 1, msg) for line, msg in first.issues] == second.issues
    assert [line for line, _ in first.issues] == [3]
    assert second.counts["failed"] == first.counts["failed"] == 1


def test_the_head_decides_the_kind_only_where_classify_agrees() -> None:
    """``head_kind`` (remembered per head by the script parser) never contradicts
    ``classify``, and leaves to the text what only the text decides."""
    fixtures = sorted((Path(__file__).parents[2] / "fixtures" / "sql").glob("*/*.sql"))
    decided = 0
    for path in fixtures:
        for stmt in split_statements(path.read_bytes(), mysql="mysql" in path.name.lower()):
            kind = head_kind(stmt.head)
            if kind is not None:
                decided += 1
                assert kind == classify(stmt), (path.name, stmt.head)
    assert decided > 100
    for sql, kind in (("SET search_path TO s", "context"), ("SET x = 1", "other")):
        (stmt,) = split_statements(sql)
        assert head_kind(stmt.head) is None
        assert classify(stmt) == kind


def test_counts_keep_the_order_of_their_first_count(tmp_path: Path) -> None:
    """The counts' JSON is part of the cached fragment: summing them per script keeps
    each key where its first count put it, the first parse and the replay alike."""
    script = (
        b"SET x = 1;\nINSERT INTO t VALUES (1);\nCREATE TABLE t (a INT);\n"
        b"INSERT INTO t VALUES (2);\nSET y = 2;\nCREATE TABLE u (b INT);\n"
    )
    with ParseCache(tmp_path / "c.sqlite") as cache:
        parser = ScriptParser("postgres", cache)
        first, _ = parser.parse(script, whole_entry=False)
        again, _ = parser.parse(script.replace(b"SET x", b"SET z"), whole_entry=False)
    assert list(first.counts.items()) == [
        ("statements", 6),
        ("ignored", 2),
        ("data", 2),
        ("parsed", 2),
    ]
    assert list(again.counts.items()) == [
        ("statements", 6),
        ("ignored", 2),
        ("data", 2),
        ("cached", 2),
    ]
    assert again.statements == first.statements
