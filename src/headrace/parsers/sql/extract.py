"""One statement -> context-free schema facts (plain JSON-able dicts).

Only statements that can change the schema graph are parsed: the verb decides
(``CREATE TABLE/VIEW/INDEX``, ``ALTER TABLE``, ``DROP``, ``CREATE DATABASE/SCHEMA``,
``USE``, ``SET search_path``). Data statements and everything else (``SET``,
``GRANT``, ``COMMENT``, sequences …) are counted and never parsed. Routine bodies
(triggers, procedures, functions, packages) are beyond sqlglot's grammar for most
dialects, so their name, the table a trigger is attached to and the tables they
read or write are taken from the text with token patterns after strings and
comments are blanked.

Facts are context-free on purpose: names are kept as written (``[catalog, schema,
name]`` with ``None`` for missing parts), and resolving them against the current
database and schema (``USE``, ``search_path``) is the graph builder's job. That
makes a statement's facts cacheable by the statement's text alone.
"""

from __future__ import annotations

import logging
import re
from contextvars import ContextVar
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import ParseError as SqlglotParseError
from sqlglot.errors import TokenError
from sqlglot.generator import Generator
from sqlglot.helper import name_sequence

from headrace.parsers.sql.split import Statement

Fact = dict[str, Any]
Name = list[str | None]

# sqlglot logs a warning for each statement it falls back to a raw Command on.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

DATA_VERBS = frozenset({"INSERT", "REPLACE", "COPY", "UPDATE", "DELETE", "MERGE", "UPSERT"})
PARSED_HEADS = frozenset(
    {
        "CREATE TABLE",
        "CREATE VIEW",
        "CREATE INDEX",
        "ALTER TABLE",
        "DROP TABLE",
        "DROP VIEW",
        "DROP INDEX",
        "CREATE DATABASE",
        "CREATE SCHEMA",
    }
)
ROUTINE_HEADS = frozenset(
    {"CREATE TRIGGER", "CREATE PROCEDURE", "CREATE PROC", "CREATE FUNCTION", "CREATE PACKAGE"}
)


# Types and defaults are written back in the script's own dialect (sqlglot's generic
# SQL would show T-SQL's TINYINT as UTINYINT).
_WRITE_DIALECT: ContextVar[str] = ContextVar("sql_write_dialect", default="")


class StatementError(Exception):
    """sqlglot could not read a statement; ``line`` is 1-based within the file."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


def classify(stmt: Statement) -> str:
    """``"data"``, ``"schema"`` (parse it), ``"routine"``, ``"context"`` or ``"other"``."""
    kind = head_kind(stmt.head)
    if kind is not None:
        return kind
    if stmt.text.startswith("\\c") or _SEARCH_PATH.match(stmt.text):
        return "context"
    return "other"


def head_kind(head: str) -> str | None:
    """``classify``'s answer for every statement with this ``head``, or ``None`` where
    the text decides (``\\c``, ``SET search_path``)."""
    verb = head.split(" ", 1)[0]
    if verb in DATA_VERBS:
        return "data"
    if head in PARSED_HEADS:
        return "schema"
    if head in ROUTINE_HEADS:
        return "routine"
    if verb == "USE":
        return "context"
    return None


def extract(stmt: Statement, dialect: str) -> list[Fact]:
    """The facts of one statement; raises ``StatementError`` when it cannot be read."""
    kind = classify(stmt)
    if kind == "schema":
        token = _WRITE_DIALECT.set(dialect)
        try:
            return _from_tree(_parse(stmt, dialect), stmt)
        except TypeError as exc:  # sqlglotc's run-time type checks: a statement error
            raise StatementError(f"{stmt.head}: {exc}"[:500], stmt.line) from exc
        finally:
            _WRITE_DIALECT.reset(token)
    if kind == "routine":
        return [_routine(stmt)]
    if kind == "context":
        return _context(stmt)
    return []


# -- parsing ---------------------------------------------------------------------


# Tokens that real scripts use and sqlglot's grammars reject; a statement that fails
# is tried once more without them (T-SQL clustering hints, Firebird's SUB_TYPE,
# MySQL view options).
_RELAX = re.compile(
    r"\b(?:NON)?CLUSTERED\b|\bSUB_TYPE\s+\w+|\bSQL\s+SECURITY\s+\w+"
    r"|\bALGORITHM\s*=\s*\w+|\bDEFINER\s*=\s*(?:`[^`]*`|'[^']*'|[\w.]+)(?:@(?:`[^`]*`|'[^']*'|[\w.%]+))?",
    re.I,
)


def _parse(stmt: Statement, dialect: str) -> exp.Expr | None:
    """Parse with the file's dialect, then generic SQL; the first error is reported.

    ``None``: a statement sqlglot accepts only as an opaque command and that cannot
    define anything (``ALTER TABLE … OWNER TO``); a CREATE it cannot read is an error.
    """
    first: StatementError | None = None
    relaxed = _RELAX.sub(" ", stmt.text)
    texts = (stmt.text,) if relaxed == stmt.text else (stmt.text, relaxed)
    for reader, text in ((r, t) for r in dict.fromkeys((dialect, "")) for t in texts):
        try:
            tree = sqlglot.parse_one(text, read=reader or None)
        except (SqlglotParseError, TokenError, TypeError) as exc:
            # TypeError: sqlglotc's compiled parser checks node types at run time
            first = first or _error(exc, stmt)
            continue
        if not isinstance(tree, exp.Command):
            return tree
        if not stmt.head.startswith("CREATE"):
            return None  # e.g. ALTER TABLE … OWNER TO: valid, and no schema shape
        first = first or StatementError(
            f"{stmt.head}: syntax not understood by the SQL parser", stmt.line
        )
    assert first is not None
    raise first


def _error(exc: Exception, stmt: Statement) -> StatementError:
    errors = getattr(exc, "errors", None) or [{}]
    info = errors[0]
    line = stmt.line + max(int(info.get("line") or 1) - 1, 0)
    text = str(info.get("description") or exc).split("\n", 1)[0]
    text = _TOKEN_REPR.sub(r"'\1' (column \2)", text)
    return StatementError(f"{stmt.head}: {text}"[:500], line)


# sqlglot describes the offending token by its repr; keep what a reader needs.
_TOKEN_REPR = re.compile(r"<Token token_type: [\w.]+, text: (.*?), line: \d+, col: (\d+)[^>]*>")


def _name(table: exp.Table | None) -> Name:
    if table is None:
        return [None, None, None]
    parts = [table.args.get(k) for k in ("catalog", "db", "this")]
    return [p.name if isinstance(p, exp.Expr) and p.name else None for p in parts]


def _ident(node: exp.Expr | None) -> str:
    return node.name if node is not None else ""


def _from_tree(tree: exp.Expr | None, stmt: Statement) -> list[Fact]:
    if isinstance(tree, exp.Create):
        return _create(tree, stmt)
    if isinstance(tree, exp.Alter):
        return [_alter(tree, stmt)]
    if isinstance(tree, exp.Drop):
        kind = str(tree.args.get("kind") or "").lower()
        names = [_name(t) for t in tree.find_all(exp.Table)]
        return [{"t": "drop", "kind": kind, "names": names, "line": stmt.line}]
    return []


def _create(tree: exp.Create, stmt: Statement) -> list[Fact]:
    kind = str(tree.args.get("kind") or "").upper()
    target = tree.this
    if kind == "INDEX" and isinstance(target, exp.Index):
        return [_index(target, bool(tree.args.get("unique")), stmt)]
    if kind in ("DATABASE", "SCHEMA"):
        table = target if isinstance(target, exp.Table) else target.find(exp.Table)
        name = _name(table)
        return [{"t": kind.lower(), "name": name, "line": stmt.line}]
    if kind == "VIEW":
        return [_view(tree, stmt)]
    if kind == "TABLE":
        return [_table(tree, stmt)]
    return []


def _table(tree: exp.Create, stmt: Statement) -> Fact:
    schema = tree.this
    table = schema.this if isinstance(schema, exp.Schema) else schema
    fact: Fact = {
        "t": "table",
        "name": _name(table if isinstance(table, exp.Table) else None),
        "line": stmt.line,
        "columns": [],
        "pk": [],
        "fks": [],
        "uniques": [],
        "indexes": [],
    }
    if isinstance(schema, exp.Schema):
        for item in schema.expressions:
            _table_item(item, fact)
    elif isinstance(tree.expression, exp.Query):  # CREATE TABLE … AS SELECT
        fact["reads"] = _reads(tree.expression)
    return fact


def _table_item(item: exp.Expr, fact: Fact) -> None:
    if isinstance(item, exp.ColumnDef):
        column, fks = _column(item)
        fact["columns"].append(column)
        fact["fks"].extend(fks)
        if column["pk"]:
            fact["pk"].append(column["name"])
        return
    constraint_name = item.name if isinstance(item, exp.Constraint) else None
    parts = item.expressions if isinstance(item, exp.Constraint) else [item]
    for part in parts:
        _constraint(part, constraint_name, fact)


def _constraint(part: exp.Expr, name: str | None, fact: Fact) -> None:
    if isinstance(part, exp.PrimaryKey):
        fact["pk"] = [_col_name(e) for e in part.expressions]
    elif isinstance(part, exp.ForeignKey):
        fact["fks"].append(_fk(part, name))
    elif isinstance(part, exp.UniqueColumnConstraint):
        target = part.this if isinstance(part.this, exp.Schema) else part
        cols = _columns_of(target)
        if isinstance(target.this, exp.Identifier):  # MySQL UNIQUE KEY name (cols)
            fact["indexes"].append({"name": target.this.name, "cols": cols, "unique": True})
        fact["uniques"].append({"name": name or "", "cols": cols})
    elif isinstance(part, exp.IndexColumnConstraint):  # MySQL KEY/INDEX inside CREATE TABLE
        cols = [_col_name(e) for e in part.expressions]
        fact["indexes"].append({"name": _ident(part.this), "cols": cols, "unique": False})


def _columns_of(node: exp.Expr) -> list[str]:
    return [_col_name(e) for e in node.expressions]


def _col_name(node: exp.Expr) -> str:
    inner = node.this if isinstance(node, exp.Ordered) else node
    return inner.name if isinstance(inner, exp.Expr) else str(inner)


def _sql(node: exp.Expr | None) -> str:
    """``node.sql(dialect=…)`` in the script's dialect, by one generator per dialect
    (``Expression.sql`` builds a dialect and a generator per call: ~40% of the time
    ``extract`` spent on types and defaults). A generator keeps no state between
    ``generate`` calls but its alias counter, which is reset."""
    if node is None:
        return ""
    dialect = _WRITE_DIALECT.get()
    generator = _GENERATORS.get(dialect)
    if generator is None:
        generator = _GENERATORS[dialect] = Dialect.get_or_raise(dialect or None).generator()
    generator._next_name = name_sequence("_t")
    return generator.generate(node, copy=True)


_GENERATORS: dict[str, Generator] = {}


def _column(item: exp.ColumnDef) -> tuple[Fact, list[Fact]]:
    column: Fact = {
        "name": item.name,
        "type": _sql(item.args.get("kind")),
        "nullable": True,
        "pk": False,
        "unique": False,
        "default": None,
    }
    fks: list[Fact] = []
    for constraint in item.constraints:
        # args, not the typed ``kind`` property: sqlglotc checks its declared type at
        # run time, and MySQL's BINARY attribute is a BinaryColumnConstraint
        kind = constraint.args.get("kind")
        if isinstance(kind, exp.NotNullColumnConstraint):
            column["nullable"] = bool(kind.args.get("allow_null"))
        elif isinstance(kind, exp.PrimaryKeyColumnConstraint):
            column["pk"] = True
            column["nullable"] = False
        elif isinstance(kind, exp.UniqueColumnConstraint):
            column["unique"] = True
        elif isinstance(kind, exp.DefaultColumnConstraint):
            column["default"] = _sql(kind.this)[:200] or None
        elif isinstance(
            kind, exp.AutoIncrementColumnConstraint | exp.GeneratedAsIdentityColumnConstraint
        ):
            column["identity"] = True
        elif isinstance(kind, exp.Reference):
            ref_table, ref_cols = _reference_target(kind)
            fks.append(
                {
                    "name": constraint.name or "",
                    "cols": [item.name],
                    "ref": ref_table,
                    "ref_cols": ref_cols,
                    **_fk_options(kind),
                }
            )
    return column, fks


def _reference_target(ref: exp.Reference) -> tuple[Name, list[str]]:
    target = ref.this
    if isinstance(target, exp.Schema):
        table = target.this if isinstance(target.this, exp.Table) else None
        return _name(table), [_col_name(e) for e in target.expressions]
    return _name(target if isinstance(target, exp.Table) else None), []


def _fk_options(ref: exp.Reference) -> Fact:
    out: Fact = {}
    for option in ref.args.get("options") or []:
        text = str(option).upper()
        for event in ("DELETE", "UPDATE"):
            prefix = f"ON {event} "
            if text.startswith(prefix):
                out[f"on_{event.lower()}"] = text[len(prefix) :]
    return out


def _fk(fk: exp.ForeignKey, name: str | None) -> Fact:
    ref = fk.args.get("reference")
    ref_table, ref_cols = (
        _reference_target(ref) if isinstance(ref, exp.Reference) else ([None, None, None], [])
    )
    fact: Fact = {
        "name": name or "",
        "cols": [_col_name(e) for e in fk.expressions],
        "ref": ref_table,
        "ref_cols": ref_cols,
    }
    if isinstance(ref, exp.Reference):
        fact.update(_fk_options(ref))
    return fact


def _index(index: exp.Index, unique: bool, stmt: Statement) -> Fact:
    params = index.args.get("params")
    cols = [_col_name(c) for c in (params.args.get("columns") or [])] if params else []
    table = index.args.get("table")
    return {
        "t": "index",
        "name": _ident(index.this),
        "table": _name(table if isinstance(table, exp.Table) else None),
        "cols": cols,
        "unique": unique,
        "line": stmt.line,
    }


def _reads(query: exp.Expr) -> list[Name]:
    ctes = {cte.alias_or_name.lower() for cte in query.find_all(exp.CTE)}
    seen: dict[tuple[str | None, ...], Name] = {}
    for table in query.find_all(exp.Table):
        name = _name(table)
        if name[2] is None or (name[1] is None and name[2].lower() in ctes):
            continue
        seen.setdefault(tuple(p.lower() if p else None for p in name), name)
    return list(seen.values())


def _view(tree: exp.Create, stmt: Statement) -> Fact:
    target = tree.this
    table = target.this if isinstance(target, exp.Schema) else target
    query = tree.expression
    return {
        "t": "view",
        "name": _name(table if isinstance(table, exp.Table) else None),
        "reads": _reads(query) if isinstance(query, exp.Expr) else [],
        "line": stmt.line,
    }


def _alter(tree: exp.Alter, stmt: Statement) -> Fact:
    fact: Fact = {
        "t": "alter",
        "name": _name(tree.this if isinstance(tree.this, exp.Table) else None),
        "line": stmt.line,
        "columns": [],
        "drop_columns": [],
        "pk": [],
        "fks": [],
        "uniques": [],
        "indexes": [],
    }
    for action in tree.args.get("actions") or []:
        if isinstance(action, exp.ColumnDef):
            column, fks = _column(action)
            fact["columns"].append(column)
            fact["fks"].extend(fks)
        elif (
            isinstance(action, exp.Drop) and str(action.args.get("kind") or "").upper() == "COLUMN"
        ):
            fact["drop_columns"].extend(_ident(c) for c in action.args.get("tables") or [])
        elif isinstance(action, exp.AddConstraint):
            for constraint in action.expressions:
                _table_item(constraint, fact)
    return fact


# -- routines and context --------------------------------------------------------

# Strings, comments, and calls whose FROM is not a table (EXTRACT(YEAR FROM d)).
_BLANK_STRINGS = re.compile(
    r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/|\b(?:EXTRACT|SUBSTRING|TRIM|OVERLAY|POSITION)\s*\((?:[^()]|\([^()]*\))*\)",
    re.S | re.I,
)
_IDENT = r"(?:[`\"\[]?[A-Za-z_][\w$#]*[`\"\]]?)"
_QNAME = rf"({_IDENT}(?:\s*\.\s*{_IDENT}){{0,2}})"
_ROUTINE_NAME = re.compile(
    rf"\b(TRIGGER|PROCEDURE|PROC|FUNCTION|PACKAGE(?:\s+BODY)?)\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}",
    re.I,
)
_TRIGGER_ON = re.compile(rf"\bON\s+{_QNAME}", re.I)
# Tables a routine creates for itself (MySQL's rewards_report and its tmpCustomer)
# are scratch space, not schema the routine reads or writes.
_OWN_TABLE = re.compile(
    rf"\bCREATE\s+(?:(?:GLOBAL\s+|LOCAL\s+)?TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}",
    re.I,
)
_READ_REF = re.compile(rf"\b(?:FROM|JOIN)\s+{_QNAME}", re.I)
_WRITE_REF = re.compile(
    rf"\b(?:INSERT\s+(?:IGNORE\s+)?INTO|UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+{_QNAME}", re.I
)
_NOT_TABLES = frozenset(
    {
        "select",
        "dual",
        "new",
        "old",
        "inserted",
        "deleted",
        "table",
        "only",
        "lateral",
        "unnest",
        "each",
        "where",
        "set",
        "values",
        "the",
        "of",
        "on",
    }
)
_SEARCH_PATH = re.compile(r"SET\s+(?:search_path|SCHEMA|CURRENT\s+SCHEMA)\s*(?:=|TO)?\s*", re.I)


def _split_name(text: str) -> Name:
    parts: Name = [p.strip().strip('`"[]') for p in text.split(".")]
    return [None, None, None, *parts][-3:]


def _refs(pattern: re.Pattern[str], text: str, exclude: set[str]) -> list[Name]:
    out: dict[tuple[str | None, ...], Name] = {}
    for m in pattern.finditer(text):
        name = _split_name(m.group(1))
        last = (name[2] or "").lower()
        if not last or last in _NOT_TABLES or last in exclude or last.startswith(("@", ":")):
            continue
        out.setdefault(tuple(p.lower() if p else None for p in name), name)
    return list(out.values())


def _routine(stmt: Statement) -> Fact:
    text = _BLANK_STRINGS.sub(" ", stmt.text)
    m = _ROUTINE_NAME.search(text)
    kind = m.group(1).split()[0].lower() if m else "routine"
    kind = "procedure" if kind == "proc" else kind
    name = _split_name(m.group(2)) if m else [None, None, None]
    own = {(name[2] or "").lower()}
    own |= {(_split_name(t.group(1))[2] or "").lower() for t in _OWN_TABLE.finditer(text)}
    head_end = m.end() if m else 0
    on = None
    if kind == "trigger":
        found = _TRIGGER_ON.search(text, head_end)
        on = _split_name(found.group(1)) if found else None
        head_end = found.end() if found else head_end
    writes = _refs(_WRITE_REF, text[head_end:], own)
    write_keys = {tuple(p.lower() if p else None for p in w) for w in writes}
    reads = [
        r
        for r in _refs(_READ_REF, text[head_end:], own)
        if tuple(p.lower() if p else None for p in r) not in write_keys
    ]
    return {
        "t": "routine",
        "kind": kind,
        "name": name,
        "on": on,
        "reads": reads,
        "writes": writes,
        "line": stmt.line,
    }


def _context(stmt: Statement) -> list[Fact]:
    text = stmt.text
    if text.startswith("\\c"):
        words = text.split()
        return [{"t": "use", "db": words[1].strip('"')}] if len(words) > 1 else []
    m = _SEARCH_PATH.match(text)
    if m:
        first = text[m.end() :].split(",", 1)[0].strip().strip("'\"")
        return [{"t": "search_path", "schema": first}] if first else []
    words = text.split()
    return [{"t": "use", "db": words[1].strip('`"[];')}] if len(words) > 1 else []
