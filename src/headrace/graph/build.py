"""Facts of a script (in statement order) -> the file's graph ``Fragment``.

Names are resolved here, against the script's context: the database is the
``--database`` setting (default: the name of the ingested folder) until a ``USE``
or ``\\c`` switches it; the schema is the dialect's default (``public`` for
PostgreSQL, ``dbo`` for SQL Server, else ``main``) until ``SET search_path``. In
MySQL a qualifier names a database; elsewhere ``a.b`` is schema ``a``.

Statements apply in order within the file: a second ``CREATE`` of a relation
replaces the first, ``DROP`` and ``ALTER TABLE … DROP COLUMN`` remove what this
file defined earlier. Across files, facts are only added (see docs/design.md:
migration chains are not replayed).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from headrace.graph.model import Fragment, Node, make_edge
from headrace.parsers.sql.extract import Fact, Name
from headrace.parsers.sql.script import ScriptResult
from headrace.records import ParseIssue
from headrace.sinks.graph_base import DEFINES, MENTIONS

BUILDER_VERSION = "2"  # 2: the embedded store's v3 tables (integer keys)
DEFAULT_SCHEMA = {"postgres": "public", "tsql": "dbo"}
FALLBACK_SCHEMA = "main"


class FragmentBuilder:
    """Builds one file's fragment; see the module docstring for name resolution."""

    def __init__(self, path: str, gen: str, database: str, dialect: str) -> None:
        self.frag = Fragment(path, gen)
        self.mysql = dialect == "mysql"
        self.db = database
        self.schema = DEFAULT_SCHEMA.get(dialect, FALLBACK_SCHEMA)

    def build(self, result: ScriptResult) -> Fragment:
        for _line, facts in result.statements:
            for fact in facts:
                handler = getattr(self, f"_on_{fact['t']}", None)
                if handler is not None:
                    handler(fact)
        self.frag.issues.extend(ParseIssue(msg, line, None) for line, msg in result.issues)
        self.frag.stats.update(result.counts)
        return self.frag

    # -- names --------------------------------------------------------------------

    def _qualify(self, name: Name) -> tuple[str, str, str]:
        catalog, schema, rel = name
        if self.mysql:
            return (schema or catalog or self.db, self.schema, rel or "")
        return (catalog or self.db, schema or self.schema, rel or "")

    @staticmethod
    def _key(kind: str, *parts: str) -> str:
        return f"{kind}:{'.'.join(parts).lower()}"

    def _node(self, key: str, kind: str, name: str, role: int, line: int, **props: Any) -> None:
        clean = {k: v for k, v in props.items() if v is not None}
        nodes = self.frag.nodes
        old = nodes.get(key)
        if old is None or role <= old.role:  # Fragment.add_node, inlined (hot)
            nodes[key] = Node(key, kind, name, role, line, clean)

    def _edge(self, src: str, type_: str, dst: str, **props: Any) -> None:
        edge = make_edge(src, type_, dst, props)
        self.frag.edges[edge.key] = edge

    def _schema_node(self, db: str, schema: str, role: int, line: int) -> str:
        db_key = self._key("database", db)
        self._node(db_key, "database", db, role, line)
        key = self._key("schema", db, schema)
        self._node(key, "schema", schema, role, line, database=db)
        self._edge(db_key, "CONTAINS", key)
        return key

    def _relation(self, name: Name, role: int, line: int, kind: str = "table", **props: Any) -> str:
        db, schema, rel = self._qualify(name)
        schema_key = self._schema_node(db, schema, MENTIONS if role else DEFINES, line)
        key = self._key("relation", db, schema, rel)
        old = self.frag.nodes.get(key)
        if role == DEFINES and old is not None and old.role == DEFINES:
            # A second CREATE in the same file replaces the first; a mention (a
            # foreign key's target seen earlier) is upgraded and keeps its edges.
            self.frag.drop(key)
        qualified = f"{db}.{schema}.{rel}"
        self._node(key, kind, rel, role, line, qualified=qualified, **props)
        self._edge(schema_key, "CONTAINS", key)
        return key

    def _column(self, rel_key: str, name: str, role: int, line: int, **props: Any) -> str:
        key = f"column:{rel_key.split(':', 1)[1]}.{name.lower()}"
        if role == MENTIONS and key in self.frag.nodes:
            return key
        self._node(key, "column", name, role, line, **props)
        self._edge(rel_key, "HAS_COLUMN", key)
        return key

    def _mention(self, name: Name, line: int) -> str:
        key = self._key("relation", *self._qualify(name))
        if key in self.frag.nodes:
            return key
        return self._relation(name, MENTIONS, line)

    # -- fact handlers --------------------------------------------------------------

    def _on_use(self, fact: Fact) -> None:
        self.db = str(fact["db"])

    def _on_search_path(self, fact: Fact) -> None:
        self.schema = str(fact["schema"])

    def _on_database(self, fact: Fact) -> None:
        name = fact["name"][2] or fact["name"][1]
        if name:
            self._node(self._key("database", name), "database", name, DEFINES, fact["line"])

    def _on_schema(self, fact: Fact) -> None:
        if self.mysql:  # MySQL: CREATE SCHEMA is CREATE DATABASE
            self._on_database(fact)
            return
        name = fact["name"]
        if name[2]:
            self._schema_node(name[1] or self.db, name[2], DEFINES, fact["line"])

    def _on_table(self, fact: Fact) -> None:
        line = fact["line"]
        pk = list(fact["pk"])
        key = self._relation(fact["name"], DEFINES, line, primary_key=pk or None)
        for ordinal, col in enumerate(fact["columns"], 1):
            self._column(
                key,
                col["name"],
                DEFINES,
                line,
                type=col["type"] or None,
                nullable=col["nullable"] and col["name"] not in pk,
                primary_key=col["name"] in pk,
                unique=col["unique"] or None,
                default=col.get("default"),
                identity=col.get("identity"),
                ordinal=ordinal,
            )
        self._constraints(key, fact, line)
        for source in fact.get("reads") or []:
            self._edge(key, "READS_FROM", self._mention(source, line))

    def _constraints(self, key: str, fact: Fact, line: int) -> None:
        for fk in fact["fks"]:
            self._foreign_key(key, fk, line)
        for index in fact["indexes"]:
            self._index(key, index["name"], index["cols"], index["unique"], line)

    def _foreign_key(self, key: str, fk: Fact, line: int) -> None:
        if not fk["ref"] or not fk["ref"][2]:
            return
        target = self._mention(fk["ref"], line)
        props = {
            "name": fk.get("name") or None,
            "columns": fk["cols"],
            "ref_columns": fk["ref_cols"],
            "on_delete": fk.get("on_delete"),
            "on_update": fk.get("on_update"),
        }
        self._edge(key, "REFERENCES", target, **props)
        for col, ref_col in zip(fk["cols"], fk["ref_cols"], strict=False):
            src = self._column(key, col, MENTIONS, line)
            dst = self._column(target, ref_col, MENTIONS, line)
            self._edge(src, "REFERENCES", dst, constraint=fk.get("name") or None)

    def _index(self, rel_key: str, name: str, cols: list[str], unique: bool, line: int) -> None:
        if not name:
            name = "idx_" + "_".join(cols)
        key = f"index:{rel_key.split(':', 1)[1]}.{name.lower()}"
        self._node(key, "index", name, DEFINES, line, unique=unique, columns=cols)
        self._edge(key, "INDEXES", rel_key, unique=unique)
        for position, col in enumerate(cols, 1):
            self._edge(
                key, "INDEXES", self._column(rel_key, col, MENTIONS, line), position=position
            )

    def _on_index(self, fact: Fact) -> None:
        if not fact["table"][2]:
            return
        rel_key = self._mention(fact["table"], fact["line"])
        self._index(rel_key, fact["name"], fact["cols"], fact["unique"], fact["line"])

    def _on_view(self, fact: Fact) -> None:
        line = fact["line"]
        key = self._relation(fact["name"], DEFINES, line, kind="view")
        for source in fact["reads"]:
            self._edge(key, "READS_FROM", self._mention(source, line))

    def _on_alter(self, fact: Fact) -> None:
        line = fact["line"]
        if not fact["name"][2]:
            return
        key = self._mention(fact["name"], line)
        for col in fact["columns"]:
            self._column(
                key,
                col["name"],
                DEFINES,
                line,
                type=col["type"] or None,
                nullable=col["nullable"],
                default=col.get("default"),
            )
        for name in fact["drop_columns"]:
            self.frag.drop(f"column:{key.split(':', 1)[1]}.{name.lower()}")
        self._mark_primary_key(key, fact["pk"])
        self._constraints(key, fact, line)

    def _mark_primary_key(self, key: str, cols: Iterable[str]) -> None:
        """Flag columns this file defined; a column defined elsewhere is not touched."""
        cols = list(cols)
        node = self.frag.nodes.get(key)
        if not cols or node is None:
            return
        if node.role == DEFINES:
            self._replace_props(key, primary_key=cols)
        for col in cols:
            col_key = f"column:{key.split(':', 1)[1]}.{col.lower()}"
            col_node = self.frag.nodes.get(col_key)
            if col_node is not None and col_node.role == DEFINES:
                self._replace_props(col_key, primary_key=True, nullable=False)

    def _replace_props(self, key: str, **props: Any) -> None:
        old = self.frag.nodes[key]
        self.frag.nodes[key] = Node(
            old.key, old.kind, old.name, old.role, old.line, {**old.props, **props}
        )

    def _on_drop(self, fact: Fact) -> None:
        kind = fact["kind"]
        for name in fact["names"]:
            if kind in ("table", "view") and name[2]:
                self.frag.drop(self._key("relation", *self._qualify(name)))
            elif kind == "index" and name[2]:
                for key in [
                    k
                    for k, n in self.frag.nodes.items()
                    if n.kind == "index" and n.name.lower() == name[2].lower()
                ]:
                    self.frag.drop(key)

    def _on_routine(self, fact: Fact) -> None:
        name = fact["name"]
        if not name[2]:
            return
        line = fact["line"]
        db, schema, routine = self._qualify(name)
        schema_key = self._schema_node(db, schema, MENTIONS, line)
        key = self._key("routine", db, schema, routine)
        self._node(
            key,
            "routine",
            routine,
            DEFINES,
            line,
            routine_type=fact["kind"],
            qualified=f"{db}.{schema}.{routine}",
        )
        self._edge(schema_key, "CONTAINS", key)
        if fact.get("on"):
            self._edge(key, "ATTACHED_TO", self._mention(fact["on"], line))
        for source in fact["reads"]:
            self._edge(key, "READS_FROM", self._mention(source, line))
        for target in fact["writes"]:
            self._edge(key, "WRITES_TO", self._mention(target, line))


def build_fragment(path: str, gen: str, database: str, result: ScriptResult) -> Fragment:
    """The graph fragment of one parsed script."""
    return FragmentBuilder(path, gen, database, result.dialect).build(result)
