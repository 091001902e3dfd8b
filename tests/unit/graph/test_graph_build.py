"""The fragment builder's bookkeeping: relation keys with properties, and the
database and schema nodes it settles once per file."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from headrace.graph import build
from headrace.graph.build import _props_suffix, build_fragment
from headrace.graph.model import make_edge
from headrace.graph.parse import rows_json
from headrace.parsers.sql.dialect import detect_dialect
from headrace.parsers.sql.script import ScriptParser, ScriptResult
from headrace.sinks.graph_base import DEFINES, MENTIONS


@pytest.mark.parametrize(
    "props",
    [
        {},
        {"position": 1},
        {"position": 2},
        {"unique": True},
        {"unique": 1},
        {"constraint": "fk_a"},
        {"name": "fk", "columns": ["a", "b"], "ref_columns": ["x", "y"], "on_delete": "CASCADE"},
        {"columns": ["a"], "ref_columns": ["x"]},
        {"ref_columns": ["x"], "columns": ["a"]},
    ],
)
def test_a_relation_key_is_make_edges(props: dict[str, Any]) -> None:
    for _ in range(2):  # computed, then remembered
        edge = make_edge("relation:d.s.a", "REFERENCES", "relation:d.s.b", props)
        assert f"relation:d.s.a|REFERENCES|relation:d.s.b{_props_suffix(props)}" == edge.key


def test_database_and_schema_nodes_follow_the_contribution_rule() -> None:
    """A definition replaces a mention, a mention never a definition; of equal
    roles the later statement's line stays; nodes keep their first position."""
    script = (
        b"CREATE TABLE a (x INT REFERENCES other.t (y));\n"  # line 1: other.t mentioned
        b"CREATE SCHEMA other;\n"  # line 2: other defined
        b"CREATE TABLE b (z INT);\n"  # line 3
        b"CREATE TABLE other.c (w INT);\n"  # line 4
        b"CREATE TABLE third.d (v INT REFERENCES fourth.e (u));\n"  # line 5
    )
    result, _ = ScriptParser("sqlite").parse(script)
    frag = build_fragment("/x.sql", "g", "Db", result)
    nodes = frag.nodes
    got = {k: (n.role, n.line, n.name, dict(n.props)) for k, n in nodes.items() if ":" in k}
    assert got["database:db"] == (DEFINES, 5, "Db", {})
    assert got["schema:db.main"] == (DEFINES, 3, "main", {"database": "Db"})
    assert got["schema:db.other"] == (DEFINES, 4, "other", {"database": "Db"})
    assert got["schema:db.third"] == (DEFINES, 5, "third", {"database": "Db"})
    assert got["schema:db.fourth"] == (MENTIONS, 5, "fourth", {"database": "Db"})
    order = [k for k in nodes if k.startswith(("database:", "schema:"))]
    assert order == [
        "database:db",
        "schema:db.main",
        "schema:db.other",
        "schema:db.third",
        "schema:db.fourth",
    ]
    contains = [e.key for e in frag.edges.values() if e.src == "database:db"]
    assert contains == [f"database:db|CONTAINS|{k}" for k in order[1:]]


SQL_FIXTURES = Path(__file__).parents[2] / "fixtures" / "sql"


def _clear_memos() -> None:
    memos: tuple[dict[Any, Any], ...] = (
        build._COLUMNS,
        build._TABLES,
        build._FKS,
        build._POSITIONS,
        build.PROPS_TEXT,
        build._FK_PLANS,
        build._INDEX_PLANS,
    )
    for memo in memos:
        memo.clear()
    build._COLUMNS_HELD[0] = build._TABLES_HELD[0] = 0
    build._FK_PLANS_HELD[0] = build._INDEX_PLANS_HELD[0] = 0


@pytest.mark.parametrize("path", sorted(SQL_FIXTURES.glob("*/*.sql")), ids=lambda p: p.name)
def test_the_builders_memos_give_what_a_fresh_build_gives(path: Path) -> None:
    """The memos (column properties, foreign keys, positions, ``PROPS_TEXT``) are
    keyed by the facts' identity: a rebuild from the same facts, from equal copies
    and after clearing them all makes the same rows, and a copy whose column changed
    is not served the remembered properties."""
    dialect = detect_dialect(path.name, path.read_text("utf-8", "replace")[:65536])
    result, _ = ScriptParser(dialect).parse(path.read_bytes())
    _clear_memos()
    first = rows_json(build_fragment(str(path), "g", "db", result))
    again = rows_json(build_fragment(str(path), "g", "db", result))
    copied = rows_json(build_fragment(str(path), "g", "db", copy.deepcopy(result)))
    _clear_memos()
    cleared = rows_json(build_fragment(str(path), "g", "db", result))
    assert first == again == copied == cleared
    changed = copy.deepcopy(result)
    tables = [f for _, facts in changed.statements for f in facts if f["t"] == "table"]
    if not tables:  # the drop script; Oracle's PL/SQL file holds routines only
        assert path.name in ("postgres-sakila-drop-objects.sql", "oracle-sakila-schema-pl-sql.sql")
        return
    tables[0]["columns"][0]["type"] = "CHANGED_TYPE"
    rows = orjson.loads(rows_json(build_fragment(str(path), "g", "db", changed)))
    assert rows != orjson.loads(first)
    assert any('"CHANGED_TYPE"' in n[5] for n in rows[0] if n[1] == "column")


def test_the_column_memo_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = ScriptParser("sqlite").parse(
        b"".join(b"CREATE TABLE t%d (a INT, b TEXT);\n" % i for i in range(30))
    )
    _clear_memos()
    monkeypatch.setattr(build, "_COLUMNS_MAX", 10)
    frag = build_fragment("/x.sql", "g", "db", result)
    assert build._COLUMNS_HELD[0] <= 10
    assert len(build._COLUMNS) <= 5
    assert build._TABLES_HELD[0] <= 10
    assert len(build._TABLES) <= 5
    assert sum(k.startswith("column:") for k in frag.nodes) == 60


def _index_fact(unique: object, cols: list[str]) -> dict[str, object]:
    return {
        "t": "index",
        "line": 3,
        "name": "",
        "table": [None, None, "t"],
        "cols": cols,
        "unique": unique,
    }


def test_index_and_foreign_key_plans_give_what_a_fresh_build_gives() -> None:
    """The plans are keyed by the facts' identity and what they are resolved against:
    ``unique`` 1 and ``True`` (equal keys, not equal JSON) get their own, the same
    columns under another table or database theirs, and a column already in the
    fragment is not mentioned again."""
    cols = ["a", "b"]
    facts = [
        {
            "t": "table",
            "line": 1,
            "name": [None, None, "t"],
            "columns": [],
            "pk": [],
            "fks": [
                {"name": "fk1", "cols": ["a"], "ref": [None, None, "u"], "ref_cols": ["x"]},
            ],
            "indexes": [],
        },
        _index_fact(True, cols),
        _index_fact(1, cols),
        {**_index_fact(None, cols), "table": [None, None, "v"]},
    ]
    result = ScriptResult("sqlite", [(1, facts)])
    _clear_memos()
    rows = [rows_json(build_fragment("/x.sql", "g", db, result)) for db in ("d1", "d1", "d2")]
    _clear_memos()
    assert rows[0] == rows[1] == rows_json(build_fragment("/x.sql", "g", "d1", result))
    assert rows[2] == rows_json(build_fragment("/x.sql", "g", "d2", result))
    assert rows[2] != rows[0]
    nodes, edges, _, _ = orjson.loads(rows[0])
    index_props = [n[5] for n in nodes if n[1] == "index"]
    # t's (its second write: unique 1) and v's
    assert index_props == ['{"columns":["a","b"],"unique":1}', '{"columns":["a","b"]}']
    uniques = sorted(e[4] for e in edges if e[1] == "INDEXES" and e[3] == "relation:d1.main.t")
    assert uniques == ['{"unique":1}', '{"unique":true}']
    mentioned = [n[0] for n in nodes if n[1] == "column"]
    assert mentioned == [
        "column:d1.main.t.a",
        "column:d1.main.u.x",
        "column:d1.main.t.b",
        "column:d1.main.v.a",
        "column:d1.main.v.b",
    ]
