"""The fragment builder's bookkeeping: relation keys with properties, and the
database and schema nodes it settles once per file."""

from __future__ import annotations

from typing import Any

import pytest

from headrace.graph.build import _props_suffix, build_fragment
from headrace.graph.model import make_edge
from headrace.parsers.sql.script import ScriptParser
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
