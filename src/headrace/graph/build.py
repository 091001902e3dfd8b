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

from collections.abc import Callable, Iterable
from typing import Any

import orjson

from headrace.graph.model import _NO_PROPS, Edge, Fragment, Node, edge_key
from headrace.parsers.sql.extract import Fact, Name
from headrace.parsers.sql.script import ScriptResult
from headrace.records import ParseIssue
from headrace.sinks.graph_base import DEFINES, MENTIONS, props_json

BUILDER_VERSION = "2"  # 2: the embedded store's v3 tables (integer keys)
DEFAULT_SCHEMA = {"postgres": "public", "tsql": "dbo"}
FALLBACK_SCHEMA = "main"


class FragmentBuilder:
    """Builds one file's fragment; see the module docstring for name resolution.

    Hot (about a quarter of a cold ingest's parse work): handlers build property
    dicts directly instead of keyword arguments filtered for ``None``, a relation's
    database and schema nodes are settled once at the end (``_ctx``), and keys of
    relations with properties reuse their digest (``_props_suffix``). What a fact
    alone determines (a table's column nodes and relations, a foreign key's parts,
    index positions) comes from module memos keyed by the facts' identity, whose
    property dictionaries are shared by fragments with their ``props_json`` text
    (``PROPS_TEXT``, read by ``rows_json``): see the memos' comment. So do a foreign
    key's and an index's keys and relations once resolved against their tables
    (``_fk_plan``, ``_index_plan``: only whether a column is in the fragment yet is
    decided per build)."""

    def __init__(self, path: str, gen: str, database: str, dialect: str) -> None:
        self.frag = Fragment(path, gen)
        self.mysql = dialect == "mysql"
        self.db = database
        self.schema = DEFAULT_SCHEMA.get(dialect, FALLBACK_SCHEMA)
        # database and schema nodes: key -> [role, line, name, props] of the write
        # that wins (``_node``'s rule: a role at most the stored one replaces it);
        # the node is in ``frag.nodes`` from its first write (order) and gets its
        # final values in ``build``. Nothing reads them before.
        self._ctx: dict[str, list[Any]] = {}
        self._contains: set[tuple[str, str]] = set()  # CONTAINS edges already added
        # (database, schema) -> the schema's key, the database's and the schema's ``_ctx``
        self._schemas: dict[tuple[str, str], tuple[str, list[Any], list[Any]]] = {}

    def build(self, result: ScriptResult) -> Fragment:
        handlers = _HANDLERS
        for _line, facts in result.statements:
            for fact in facts:
                handler = handlers.get(fact["t"])
                if handler is not None:
                    handler(self, fact)
        nodes = self.frag.nodes
        for key, (role, line, name, props) in self._ctx.items():
            old = nodes[key]
            if old.role != role or old.line != line or old.name != name or old.props != props:
                nodes[key] = Node(key, old.kind, name, role, line, props)
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
        self._put(
            key, kind, name, role, line, props={k: v for k, v in props.items() if v is not None}
        )

    def _put(
        self, key: str, kind: str, name: str, role: int, line: int, *, props: dict[str, Any]
    ) -> None:
        """Add a node (``props`` without ``None`` values); a definition replaces a
        mention, a mention never a definition (``Fragment.add_node``, inlined)."""
        nodes = self.frag.nodes
        old = nodes.get(key)
        if old is None or role <= old.role:
            nodes[key] = Node(key, kind, name, role, line, props)

    def _ctx_node(
        self, key: str, kind: str, name: str, role: int, line: int, *, props: dict[str, Any]
    ) -> None:
        """A database or schema node: as ``_put``, the final values set in ``build``."""
        state = self._ctx.get(key)
        if state is None:
            self._ctx[key] = [role, line, name, props]
            self.frag.nodes[key] = Node(key, kind, name, role, line, props)
        elif role <= state[0]:
            state[0], state[1], state[2], state[3] = role, line, name, props

    def _edge(self, src: str, type_: str, dst: str) -> None:
        """A relation without properties (``make_edge``, inlined)."""
        key = f"{src}|{type_}|{dst}"
        self.frag.edges[key] = _new(Edge, (key, type_, src, dst, _NO_PROPS))

    def _edge_props(self, src: str, type_: str, dst: str, props: dict[str, Any]) -> None:
        """A relation with properties (``props`` without ``None`` values): as
        ``make_edge``, with the properties' part of the key remembered."""
        edge = Edge(f"{src}|{type_}|{dst}{_props_suffix(props)}", type_, src, dst, props)
        self.frag.edges[edge.key] = edge

    def _schema_node(self, db: str, schema: str, role: int, line: int) -> str:
        """The schema's (and its database's) node written, its key returned; the keys
        and the ``CONTAINS`` edge between them are settled at the pair's first use."""
        keys = self._schemas.get((db, schema))
        if keys is not None:  # ``_ctx_node`` twice, inlined: both states exist
            key, db_state, state = keys
            if role <= db_state[0]:
                db_state[0], db_state[1], db_state[2], db_state[3] = role, line, db, {}
            if role <= state[0]:
                state[0], state[1], state[2], state[3] = role, line, schema, {"database": db}
            return key
        db_key = f"database:{db.lower()}"
        key = "schema:" + f"{db}.{schema}".lower()
        ctx_first = (db_key, key) not in self._contains
        self._ctx_node(db_key, "database", db, role, line, props={})
        self._ctx_node(key, "schema", schema, role, line, props={"database": db})
        self._schemas[db, schema] = (key, self._ctx[db_key], self._ctx[key])
        if ctx_first:  # the same edge every time
            self._contains.add((db_key, key))
            edge_key_ = f"{db_key}|CONTAINS|{key}"
            self.frag.edges[edge_key_] = _new(Edge, (edge_key_, "CONTAINS", db_key, key, _NO_PROPS))
        return key

    def _relation(
        self,
        name: Name,
        role: int,
        line: int,
        kind: str = "table",
        props: dict[str, Any] | None = None,
    ) -> str:
        db, schema, rel = self._qualify(name)
        schema_key = self._schema_node(db, schema, MENTIONS if role else DEFINES, line)
        key = "relation:" + f"{db}.{schema}.{rel}".lower()
        nodes = self.frag.nodes
        old = nodes.get(key)
        if old is not None and role == DEFINES and old.role == DEFINES:
            # A second CREATE in the same file replaces the first; a mention (a
            # foreign key's target seen earlier) is upgraded and keeps its edges.
            self.frag.drop(key)
            old = None
        if old is None or role <= old.role:  # ``_put``, inlined
            qualified = f"{db}.{schema}.{rel}"
            node_props = {"qualified": qualified, **props} if props else {"qualified": qualified}
            nodes[key] = _new(Node, (key, kind, rel, role, line, node_props))
        edge_key_ = f"{schema_key}|CONTAINS|{key}"
        self.frag.edges[edge_key_] = _new(Edge, (edge_key_, "CONTAINS", schema_key, key, _NO_PROPS))
        return key

    def _column(self, rel_key: str, name: str, role: int, line: int, **props: Any) -> str:
        key = f"column:{rel_key[9:]}.{name.lower()}"  # rel_key: "relation:…"
        if role == MENTIONS and key in self.frag.nodes:
            return key
        self._node(key, "column", name, role, line, **props)
        self._edge(rel_key, "HAS_COLUMN", key)
        return key

    def _mentioned_column(self, rel_key: str, name: str, line: int) -> str:
        """``_column`` for a column only mentioned (no properties)."""
        key = f"column:{rel_key[9:]}.{name.lower()}"
        nodes = self.frag.nodes
        if key in nodes:
            return key
        nodes[key] = _new(Node, (key, "column", name, MENTIONS, line, {}))
        edge_key_ = f"{rel_key}|HAS_COLUMN|{key}"
        self.frag.edges[edge_key_] = _new(Edge, (edge_key_, "HAS_COLUMN", rel_key, key, _NO_PROPS))
        return key

    def _mention(self, name: Name, line: int) -> str:
        catalog, schema, rel = name  # ``_qualify``, inlined
        if self.mysql:
            db, schema = schema or catalog or self.db, self.schema
        else:
            db, schema = catalog or self.db, schema or self.schema
        key = "relation:" + f"{db}.{schema}.{rel or ''}".lower()
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
            self._ctx_node(
                self._key("database", name), "database", name, DEFINES, fact["line"], props={}
            )

    def _on_schema(self, fact: Fact) -> None:
        if self.mysql:  # MySQL: CREATE SCHEMA is CREATE DATABASE
            self._on_database(fact)
            return
        name = fact["name"]
        if name[2]:
            self._schema_node(name[1] or self.db, name[2], DEFINES, fact["line"])

    def _on_table(self, fact: Fact) -> None:
        line = fact["line"]
        pk_fact = fact["pk"]
        pk = list(pk_fact)
        key = self._relation(fact["name"], DEFINES, line, props={"primary_key": pk} if pk else None)
        # ``_column(key, name, DEFINES, line, type=…, …)`` for each column, remembered:
        # ``update`` assigns in the dictionaries' order, as that loop did
        col_nodes, col_edges = _table_columns(key, fact["columns"], pk_fact, pk, line)
        self.frag.nodes.update(col_nodes)
        self.frag.edges.update(col_edges)
        self._constraints(key, fact, line)
        for source in fact.get("reads") or []:
            self._edge(key, "READS_FROM", self._mention(source, line))

    def _constraints(self, key: str, fact: Fact, line: int) -> None:
        for fk in fact["fks"]:
            self._foreign_key(key, fk, line)
        for index in fact["indexes"]:
            self._index(key, index["name"], index["cols"], index["unique"], line)

    def _foreign_key(self, key: str, fk: Fact, line: int) -> None:
        ref = fk["ref"]
        if not ref or not ref[2]:
            return
        target = self._mention(ref, line)
        entry = _FK_PLANS.get((id(fk), key, target))  # ``_fk_plan``'s memo, looked up here
        edge_key_, edge, columns = (
            entry[1] if entry is not None and entry[0] is fk else _fk_plan(fk, key, target)
        )
        edges, nodes = self.frag.edges, self.frag.nodes
        edges[edge_key_] = edge
        for src, col, dst, ref_col, col_edge_key, col_edge in columns:
            if src not in nodes:  # ``_mentioned_column``, inlined
                self._add_mentioned_column(key, src, col, line)
            if dst not in nodes:
                self._add_mentioned_column(target, dst, ref_col, line)
            edges[col_edge_key] = col_edge

    def _add_mentioned_column(self, rel_key: str, key: str, name: str, line: int) -> None:
        """``_mentioned_column``'s column node and ``HAS_COLUMN`` relation (``key``: the
        column's, not in the fragment yet)."""
        self.frag.nodes[key] = _new(Node, (key, "column", name, MENTIONS, line, {}))
        edge_key_ = f"{rel_key}|HAS_COLUMN|{key}"
        self.frag.edges[edge_key_] = _new(Edge, (edge_key_, "HAS_COLUMN", rel_key, key, _NO_PROPS))

    def _index(self, rel_key: str, name: str, cols: list[str], unique: bool, line: int) -> None:
        if type(cols) is list:  # the plan's keys, properties and relations, remembered
            key, name, index_props, edge_key_, edge, columns = _index_plan(
                rel_key, name, cols, unique
            )
            nodes, edges = self.frag.nodes, self.frag.edges
            nodes[key] = _new(Node, (key, "index", name, DEFINES, line, index_props))
            edges[edge_key_] = edge
            for col_key, col, col_edge_key, col_edge in columns:
                if col_key not in nodes:  # ``_mentioned_column``, inlined
                    self._add_mentioned_column(rel_key, col_key, col, line)
                edges[col_edge_key] = col_edge
            return
        if not name:
            name = "idx_" + "_".join(cols)
        key = f"index:{rel_key[9:]}.{name.lower()}"  # rel_key: "relation:…"
        props: dict[str, Any] = {} if unique is None else {"unique": unique}
        if cols is not None:
            props["columns"] = cols
        nodes = self.frag.nodes  # ``_put``, inlined: a definition always replaces
        nodes[key] = _new(Node, (key, "index", name, DEFINES, line, props))
        if unique is True or unique is False:  # not 1 or 0: their JSON differs
            unique_suffix, unique_props = _UNIQUE[unique]
            edge_key_ = f"{key}|INDEXES|{rel_key}{unique_suffix}"
            self.frag.edges[edge_key_] = _new(
                Edge, (edge_key_, "INDEXES", key, rel_key, unique_props)
            )
        else:
            self._edge_props(key, "INDEXES", rel_key, {} if unique is None else {"unique": unique})
        edges = self.frag.edges
        for position, col in enumerate(cols, 1):
            col_key = self._mentioned_column(rel_key, col, line)
            position_suffix, position_props = _position(position)
            edge_key_ = f"{key}|INDEXES|{col_key}{position_suffix}"
            edges[edge_key_] = _new(Edge, (edge_key_, "INDEXES", key, col_key, position_props))

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
        qualified = f"{db}.{schema}.{routine}"
        key = "routine:" + qualified.lower()
        # ``_node``, inlined: a definition always replaces; no ``None`` properties
        kind = fact["kind"]
        props = (
            {"qualified": qualified}
            if kind is None
            else {"routine_type": kind, "qualified": qualified}
        )
        self.frag.nodes[key] = _new(Node, (key, "routine", routine, DEFINES, line, props))
        self._edge(schema_key, "CONTAINS", key)
        if fact.get("on"):
            self._edge(key, "ATTACHED_TO", self._mention(fact["on"], line))
        for source in fact["reads"]:
            self._edge(key, "READS_FROM", self._mention(source, line))
        for target in fact["writes"]:
            self._edge(key, "WRITES_TO", self._mention(target, line))


_SUFFIXES: dict[bytes, str] = {}  # properties (sorted JSON) -> their part of the key
_SUFFIXES_MAX = 100_000


def _props_suffix(props: dict[str, Any]) -> str:
    """What ``edge_key`` appends to ``src|TYPE|dst`` for these properties (none:
    nothing), remembered by their sorted JSON: ``edge_key`` itself computes it."""
    if not props:
        return ""
    text = orjson.dumps(props, option=orjson.OPT_SORT_KEYS)
    suffix = _SUFFIXES.get(text)
    if suffix is None:
        if len(_SUFFIXES) >= _SUFFIXES_MAX:
            _SUFFIXES.clear()
        suffix = _SUFFIXES[text] = edge_key("", "", "", props)[2:]
    return suffix


# Memos of what a fact alone determines, by the identity of the fact's parts:
# facts are never changed once made (the statement cache shares them between
# files), each entry holds the objects it is keyed by (so their ids stay theirs),
# and what it gives is shared by the fragments built from it (``Node.props``).
_new = tuple.__new__
_Columns = list[tuple[str, str, dict[str, Any]]]
_COLUMNS: dict[tuple[int, int], tuple[Any, Any, _Columns]] = {}
_COLUMNS_MAX = 12_000  # column rows per column memo (~0.7 KB a row: both <= ~17 MB)
_COLUMNS_HELD = [0]  # the column rows in ``_COLUMNS``
# table key and facts -> [columns, pk, rows, edges, line, nodes]: ``_table_columns``
_TABLES: dict[tuple[str, int, int], list[Any]] = {}
_TABLES_HELD = [0]  # the column rows in ``_TABLES``
_FkParts = tuple[dict[str, Any], str, dict[str, Any] | None, str]
_FKS: dict[int, tuple[Any, _FkParts]] = {}
_FKS_MAX = 20_000
_POSITIONS: dict[int, tuple[str, dict[str, Any]]] = {}  # index position -> suffix, props
# The properties' ``props_json`` text, by their identity, for ``rows_json``: every
# dictionary here is one of the memos' (never changed once made), held by its entry.
PROPS_TEXT: dict[int, tuple[dict[str, Any], str]] = {}
_PROPS_TEXT_MAX = 40_000


def _with_text(props: dict[str, Any]) -> dict[str, Any]:
    """``props`` (finished: not to be changed), its ``props_json`` text remembered."""
    if len(PROPS_TEXT) >= _PROPS_TEXT_MAX:
        PROPS_TEXT.clear()
    PROPS_TEXT[id(props)] = (props, props_json(props))
    return props


def _column_props(columns: list[Fact], pk_fact: Any, pk: list[str]) -> _Columns:
    """A table's columns as ``(name, lower-cased name, properties)``: the properties
    ``_column`` would give them (``pk`` is ``pk_fact`` as a list), remembered."""
    entry = _COLUMNS.get((id(columns), id(pk_fact)))
    if entry is not None and entry[0] is columns and entry[1] is pk_fact:
        return entry[2]
    rows: _Columns = []
    for ordinal, col in enumerate(columns, 1):
        name = col["name"]
        props: dict[str, Any] = {"type": col["type"]} if col["type"] else {}
        if (nullable := col["nullable"] and name not in pk) is not None:
            props["nullable"] = nullable
        props["primary_key"] = name in pk
        if col["unique"]:
            props["unique"] = col["unique"]
        if (default := col.get("default")) is not None:
            props["default"] = default
        if (identity := col.get("identity")) is not None:
            props["identity"] = identity
        props["ordinal"] = ordinal
        rows.append((name, name.lower(), _with_text(props)))
    if _COLUMNS_HELD[0] + len(rows) > _COLUMNS_MAX:
        _COLUMNS.clear()
        _COLUMNS_HELD[0] = 0
    _COLUMNS[id(columns), id(pk_fact)] = (columns, pk_fact, rows)
    _COLUMNS_HELD[0] += len(rows)
    return rows


def _table_columns(
    key: str, columns: list[Fact], pk_fact: Any, pk: list[str], line: int
) -> tuple[dict[str, Node], dict[str, Edge]]:
    """A table's column nodes (defined at ``line``) and ``HAS_COLUMN`` relations by
    key, in column order (a later column of the same key replaces an earlier one, at
    the earlier one's place), remembered by the table's key and its facts' identity;
    the nodes for the last line asked for."""
    entry = _TABLES.get((key, id(columns), id(pk_fact)))
    if entry is None or entry[0] is not columns or entry[1] is not pk_fact:
        rel = key[9:]  # key: "relation:…"
        rows = [
            (f"column:{rel}.{lower}", name, props)
            for name, lower, props in _column_props(columns, pk_fact, pk)
        ]
        edges: dict[str, Edge] = {}
        for col_key, _name, _props in rows:
            edge_key_ = f"{key}|HAS_COLUMN|{col_key}"
            edges[edge_key_] = _new(Edge, (edge_key_, "HAS_COLUMN", key, col_key, _NO_PROPS))
        if _TABLES_HELD[0] + len(rows) > _COLUMNS_MAX:
            _TABLES.clear()
            _TABLES_HELD[0] = 0
        entry = _TABLES[key, id(columns), id(pk_fact)] = [columns, pk_fact, rows, edges, None, {}]
        _TABLES_HELD[0] += len(rows)
    if entry[4] != line:
        entry[4] = line
        entry[5] = {
            col_key: _new(Node, (col_key, "column", name, DEFINES, line, props))
            for col_key, name, props in entry[2]
        }
    return entry[5], entry[3]


def _fk_parts(fk: Fact) -> _FkParts:
    """A foreign key's table relation's properties and key suffix, and its column
    relations' properties (``None``: none) and key suffix, remembered."""
    entry = _FKS.get(id(fk))
    if entry is not None and entry[0] is fk:
        return entry[1]
    name = fk.get("name") or None
    props: dict[str, Any] = {"name": name} if name is not None else {}
    props["columns"] = fk["cols"]
    props["ref_columns"] = fk["ref_cols"]
    if (on_delete := fk.get("on_delete")) is not None:
        props["on_delete"] = on_delete
    if (on_update := fk.get("on_update")) is not None:
        props["on_update"] = on_update
    col_props = _with_text({"constraint": name}) if name else None
    parts = (
        _with_text(props),
        _props_suffix(props),
        col_props,
        _props_suffix(col_props) if col_props else "",
    )
    if len(_FKS) >= _FKS_MAX:
        _FKS.clear()
    _FKS[id(fk)] = (fk, parts)
    return parts


# A foreign key's relations by (its identity, its table's and its target's keys): the
# table relation's key and ``Edge``, and per column pair (source key, column, target
# key, column, relation key, ``Edge``); what depends on the fragment (whether the
# columns are there yet) is left to ``_foreign_key``.
_FkPlan = tuple[str, Edge, list[tuple[str, str, str, str, str, Edge]]]
_FK_PLANS: dict[tuple[int, str, str], tuple[Any, _FkPlan]] = {}
_PLANS_MAX = 12_000  # relations held by each plan memo (~0.5 KB each: <= ~6 MB)
_FK_PLANS_HELD = [0]


def _fk_plan(fk: Fact, key: str, target: str) -> _FkPlan:
    """What ``_foreign_key`` writes for ``fk`` from table ``key`` to ``target``
    (as it did: the keys ``_mentioned_column`` makes), remembered."""
    entry = _FK_PLANS.get((id(fk), key, target))
    if entry is not None and entry[0] is fk:
        return entry[1]
    props, suffix, col_props, col_suffix = _fk_parts(fk)
    edge_key_ = f"{key}|REFERENCES|{target}{suffix}"
    columns = []
    for col, ref_col in zip(fk["cols"], fk["ref_cols"], strict=False):
        src = f"column:{key[9:]}.{col.lower()}"  # key, target: "relation:…"
        dst = f"column:{target[9:]}.{ref_col.lower()}"
        col_edge_key = f"{src}|REFERENCES|{dst}{col_suffix}"
        col_edge = _new(Edge, (col_edge_key, "REFERENCES", src, dst, col_props or _NO_PROPS))
        columns.append((src, col, dst, ref_col, col_edge_key, col_edge))
    plan = (edge_key_, _new(Edge, (edge_key_, "REFERENCES", key, target, props)), columns)
    if _FK_PLANS_HELD[0] + len(columns) + 1 > _PLANS_MAX:
        _FK_PLANS.clear()
        _FK_PLANS_HELD[0] = 0
    _FK_PLANS[id(fk), key, target] = (fk, plan)
    _FK_PLANS_HELD[0] += len(columns) + 1
    return plan


# An index's node key, name, properties (``PROPS_TEXT``), its relation to the table
# (key, ``Edge``) and per column (column key, column, relation key, ``Edge``), by
# (table key, name as written, the columns' identity, ``unique`` and its type: 1 and
# ``True`` are equal keys, not equal JSON).
_IndexPlan = tuple[str, str, dict[str, Any], str, Edge, list[tuple[str, str, str, Edge]]]
_INDEX_PLANS: dict[tuple[str, str, int, Any, type], tuple[list[str], _IndexPlan]] = {}
_INDEX_PLANS_HELD = [0]


def _index_plan(rel_key: str, name: str, cols: list[str], unique: Any) -> _IndexPlan:
    """What ``_index`` writes for this index but its node's line, remembered."""
    memo_key = (rel_key, name, id(cols), unique, type(unique))
    entry = _INDEX_PLANS.get(memo_key)
    if entry is not None and entry[0] is cols:
        return entry[1]
    if not name:
        name = "idx_" + "_".join(cols)
    key = f"index:{rel_key[9:]}.{name.lower()}"  # rel_key: "relation:…"
    props: dict[str, Any] = {} if unique is None else {"unique": unique}
    props["columns"] = cols
    if unique is True or unique is False:  # not 1 or 0: their JSON differs
        unique_suffix, unique_props = _UNIQUE[unique]
        edge_key_ = f"{key}|INDEXES|{rel_key}{unique_suffix}"
        edge = _new(Edge, (edge_key_, "INDEXES", key, rel_key, unique_props))
    else:  # ``_edge_props``
        edge_props = {} if unique is None else {"unique": unique}
        edge_key_ = f"{key}|INDEXES|{rel_key}{_props_suffix(edge_props)}"
        edge = _new(Edge, (edge_key_, "INDEXES", key, rel_key, edge_props))
    columns = []
    for position, col in enumerate(cols, 1):
        col_key = f"column:{rel_key[9:]}.{col.lower()}"
        position_suffix, position_props = _position(position)
        col_edge_key = f"{key}|INDEXES|{col_key}{position_suffix}"
        col_edge = _new(Edge, (col_edge_key, "INDEXES", key, col_key, position_props))
        columns.append((col_key, col, col_edge_key, col_edge))
    plan = (key, name, _with_text(props), edge_key_, edge, columns)
    if _INDEX_PLANS_HELD[0] + len(columns) + 1 > _PLANS_MAX:
        _INDEX_PLANS.clear()
        _INDEX_PLANS_HELD[0] = 0
    _INDEX_PLANS[memo_key] = (cols, plan)
    _INDEX_PLANS_HELD[0] += len(columns) + 1
    return plan


def _position(position: int) -> tuple[str, dict[str, Any]]:
    """An index's column relation's key suffix and properties (``{"position": …}``),
    remembered by the integer (an ``enumerate`` count: never a ``bool``)."""
    parts = _POSITIONS.get(position)
    if parts is None:
        if len(_POSITIONS) >= 10_000:
            _POSITIONS.clear()
        props = _with_text({"position": position})
        parts = _POSITIONS[position] = (_props_suffix(props), props)
    return parts


_UNIQUE = {  # an index's relation to its table (``unique`` a bool)
    flag: (_props_suffix({"unique": flag}), _with_text({"unique": flag})) for flag in (False, True)
}


def build_fragment(path: str, gen: str, database: str, result: ScriptResult) -> Fragment:
    """The graph fragment of one parsed script."""
    return FragmentBuilder(path, gen, database, result.dialect).build(result)


_HANDLERS: dict[str, Callable[[FragmentBuilder, Fact], None]] = {
    name[4:]: getattr(FragmentBuilder, name)
    for name in dir(FragmentBuilder)
    if name.startswith("_on_")
}
