"""A whole SQL script -> its schema facts statement by statement, through the cache.

``parse_script`` is what the graph ingest calls per file. It consults the shared
parse cache twice: first for the whole file (content hash + dialect), then, on a
miss, for each statement (statement hash + dialect), so an edited file re-parses
only the statements that changed, and a file seen before — at any path, or
flipping back to earlier content — is not parsed at all.

A statement sqlglot cannot read becomes a ``ParseIssue`` with its file line; the
rest of the file still counts. SQL Server batches may hold several statements
without a terminator; a failing one is retried cut at lines that start a new
``CREATE``/``ALTER``/``DROP``, so one broken table does not hide the next.

A schema statement that misses the cache is looked up once more by its *shape*:
its text with every integer literal replaced by a numbered sentinel
(``VARCHAR(45)`` and ``VARCHAR(46)`` share one). The shape is parsed once, and a
statement of that shape gets the shape's facts with the sentinels written back —
how schemas evolve (widened columns, new precisions, other defaults) costs no
parse. Integers are substituted as text, so this holds only while sqlglot's facts
carry an integer verbatim or not at all; ``tests/unit/parsers/test_sql_shapes.py``
checks that over a grid of types, defaults and checks in every dialect and over
every fixture statement (a sqlglot upgrade that breaks it fails there).

A second shape replaces the digits inside *names* (``payment_p2007_01``,
``tenant_0042``, ``variant_00017``: partitions, tenants, generated tables) by letter
sentinels; keywords with digits (``INT4``, ``VARCHAR2``) and function calls keep
theirs. Names are not proven inert the way integers are, so a name shape is trusted
only after a check: at its second sighting it is parsed and kept only if it gives
exactly that statement's own facts; from the third on it serves without a parse.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from typing import Any

import orjson
from blake3 import blake3
from sqlglot.dialects.dialect import Dialect

from headrace.parsers.cache import ParseCache
from headrace.parsers.sql.extract import Fact, StatementError, classify, extract, head_kind
from headrace.parsers.sql.split import SplitIndex, Statement, split_statements, statement_head

PARSER_NAME = "sql"
# Bump when the facts extracted from a statement change: cached results of other
# versions are then ignored (and age out of the cache).
PARSER_VERSION = "2"

MEMO_CHARS = 4_000_000  # statement text remembered per parser (~10-20 MB with facts)
SHIFT_MEMO = 20_000  # (statement, line) fact lists shared between files per parser
SHAPE_VERSION = "1"  # bump when the shape rules change
SHAPE_MEMO = 20_000  # shapes remembered per parser (their facts are also in the cache)
KIND_MEMO = 1_000  # statement heads whose kind they decide, per parser
BASE_MEMO_CHARS = 1_000_000  # shape texts remembered with their keys, per parser
# Integer literals outside quotes, identifiers and comments; a leading zero keeps
# its literal (sqlglot may print ``046`` as ``46``). Quoted parts are matched
# first so their digits stay.
_LITERALS = re.compile(
    r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\]|--[^\n]*|/\*.*?\*/"
    r"|(?<![\w.$@#:])(0|[1-9][0-9]*)(?![\w.])",
    re.S,
)
_SENTINEL_PREFIX = "98765"
# (the look-behind after the literal: ``re`` then searches for the literal; the same
# matches as ``(?<!\w)98765(\d{5})(?!\w)``)
_SENTINEL = re.compile(r"98765(?<!\w98765)(\d{5})(?!\w)")
# Name shapes: digits inside names (``payment_p2007_01``, ``tenant_0042``) replaced by
# letter sentinels (``zq`` + five of a-j). Strings and comments stay; a keyword with a
# digit (``INT4``, ``VARCHAR2``, ``DATETIME2``) stays; a word before ``(`` stays unless
# a name keyword precedes it (``REFERENCES t2(``; ``log10(`` is a function).
_NAME_PARTS = re.compile(
    r"'(?:[^']|'')*'|--[^\n]*|/\*.*?\*/"
    r"|(\"(?:[^\"]|\"\")*\"|`[^`]*`|\[[^\]]*\])"
    r"|\b([A-Za-z_][A-Za-z0-9_$]*[0-9][A-Za-z0-9_$]*)",
    re.S,
)
_DIGIT_RUN = re.compile(r"[0-9]+")
_NAME_SENTINEL = re.compile(r"zq([a-j]{5})")
_LETTER_DIGITS = str.maketrans("abcdefghij", "0123456789")  # a name sentinel's number
_CALL = re.compile(r"\s*\(")
_WORD_BEFORE = re.compile(r"([A-Za-z_]+)\s*$")
_NAME_KEYWORDS = frozenset(
    {"TABLE", "EXISTS", "REFERENCES", "ON", "INTO", "VIEW", "INDEX", "KEY", "CONSTRAINT"}
)
_SEEN = b""  # name-shape memo: seen once; its template is made at the second sighting
_NEXT_STATEMENT = re.compile(r"^[ \t]*(?=(?:CREATE|ALTER|DROP)\b)", re.M | re.I)


@dataclass(slots=True)
class ScriptResult:
    """The facts of a script in statement order, its unreadable statements and counts.

    ``statements`` holds ``(line, facts)`` for statements that yielded facts;
    ``issues`` holds ``(line, message)``; ``counts`` has ``statements``, ``data``
    (skipped unparsed), ``parsed``, ``cached`` (statement-level cache hits),
    ``ignored`` and ``failed``.
    """

    dialect: str
    statements: list[tuple[int, list[Fact]]] = field(default_factory=list)
    issues: list[tuple[int, str]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> bytes:
        return orjson.dumps([self.dialect, self.statements, self.issues, self.counts])

    @classmethod
    def from_json(cls, data: bytes) -> ScriptResult:
        dialect, statements, issues, counts = orjson.loads(data)
        return cls(
            dialect,
            [(int(line), facts) for line, facts in statements],
            [(int(line), str(msg)) for line, msg in issues],
            counts,
        )


def _count(result: ScriptResult, key: str, n: int = 1) -> None:
    result.counts[key] = result.counts.get(key, 0) + n


class ScriptParser:
    """Parses scripts of one dialect into facts, using ``cache`` when given."""

    def __init__(self, dialect: str, cache: ParseCache | None = None) -> None:
        self.dialect = dialect
        self.cache = cache
        self.file_parser = f"{PARSER_NAME}-script@{PARSER_VERSION}:{dialect}"
        # In front of the cache: statement text -> cached value, for statements
        # many files share (no SQLite lookup, no JSON decoding). Only with a cache:
        # without one, every statement is parsed, as ``--no-cache`` promises.
        self._memo: dict[str, Any] = {}
        self._memo_chars = 0
        self.stmt_parser = f"{PARSER_NAME}-statement@{PARSER_VERSION}:{dialect}"
        # Statements this parser's splitter cut before (bounded; see ``SplitIndex``):
        # the next variant of a script is mostly cut by comparing bytes. Not a cache of
        # results: the split is the same without it, so it is kept without a cache too.
        self._split_index = SplitIndex()
        self.shape_parser = f"{PARSER_NAME}-shape@{PARSER_VERSION}.{SHAPE_VERSION}:{dialect}"
        self._shapes: dict[bytes, bytes | None] = {}  # None: the shape cannot serve
        self._shifted: dict[tuple[int, int], tuple[Any, list[Fact]]] = {}
        self.name_parser = f"{PARSER_NAME}-names@{PARSER_VERSION}.{SHAPE_VERSION}:{dialect}"
        self._names: dict[bytes, bytes | None] = {}  # _SEEN, a checked template, or None
        self._keywords = frozenset(Dialect.get_or_raise(dialect or None).tokenizer_class.KEYWORDS)
        self._kinds: dict[str, str] = {}  # statement head -> kind, where the head decides
        # a statement's integer shape (or text) -> ``_shape_keys``
        self._bases: dict[str, tuple[tuple[str, list[str]] | None, bytes, bytes]] = {}
        self._bases_chars = 0

    def parse(
        self, data: bytes, digest: bytes | None = None, *, whole_entry: bool = True
    ) -> tuple[ScriptResult, bool]:
        """The script's facts and whether they came from the cache whole
        (``digest``: the blake3 digest of ``data``, if the caller has it;
        ``whole_entry=False``: no whole-file entry, neither looked up nor stored, only
        statements' — the graph caches its built fragment instead, and its lookup of an
        entry it never writes was ~0.15 CPU s per 1,000 cold files)."""
        digest = digest or blake3(data).digest()
        if self.cache is not None and whole_entry:
            hit = self.cache.get(self.file_parser, digest)
            if hit is not None:
                return ScriptResult.from_json(hit), True
        result = ScriptResult(self.dialect)
        # bytes: the splitter decodes only the statements it returns
        statements = split_statements(data, mysql=self.dialect == "mysql", index=self._split_index)
        _count(result, "statements", len(statements))
        self._parse_statements(statements, result)
        if self.cache is not None and whole_entry:
            self.cache.put(self.file_parser, digest, result.to_json())
        return result, False

    def _parse_statements(self, statements: list[Statement], result: ScriptResult) -> None:
        # Hot (once per statement of every file): the kind of a statement comes from
        # its head where the head decides (``head_kind``), and the counts are summed
        # here, each key entered at its first count (``counts`` keeps ``_count``'s
        # order: its JSON is part of the cached fragment).
        pending: list[Statement] = []
        kinds, counts = self._kinds, result.counts
        data = ignored = 0
        for stmt in statements:
            kind = kinds.get(stmt.head)
            if kind is None:
                kind = head_kind(stmt.head)
                if kind is not None:
                    _bounded_put(kinds, stmt.head, kind, KIND_MEMO)
                else:
                    kind = classify(stmt)
            if kind == "data":
                if not data and "data" not in counts:
                    counts["data"] = 0
                data += 1
            elif kind == "other":
                if not ignored and "ignored" not in counts:
                    counts["ignored"] = 0
                ignored += 1
            elif kind == "context":  # cheap, and needs no parser
                self._add(result, stmt, extract(stmt, self.dialect))
            else:
                pending.append(stmt)
        if data:
            counts["data"] += data
        if ignored:
            counts["ignored"] += ignored
        self._parse_or_replay(pending, result)

    def _parse_or_replay(self, pending: list[Statement], result: ScriptResult) -> None:
        cached = self._cached(pending)
        counts, statements, shifted = result.counts, result.statements, self._shifted
        replayed = 0  # ``_replay``'s "ok" case, inlined; counted as in _parse_statements
        for stmt in pending:
            hit = cached.get(stmt.text)
            if hit is not None:
                if hit is _CUT or hit[0] != "ok":
                    self._replay(result, stmt, hit)
                    continue
                if not replayed and "cached" not in counts:
                    counts["cached"] = 0
                replayed += 1
                line = stmt.line
                entry = shifted.get((id(hit), line))  # ``_absolute``'s memo, looked up here
                if entry is not None and entry[0] is hit:
                    facts = entry[1]
                else:
                    facts = self._absolute(hit, line)
                if facts:
                    statements.append((line, facts))
                continue
            if self._from_shape(stmt, result):
                continue
            self._parse_one(stmt, result)
        if replayed:
            counts["cached"] += replayed

    def _cached(self, pending: list[Statement]) -> dict[str, Any]:
        if self.cache is None or not pending:
            return {}
        memo = self._memo
        hits: dict[str, Any] = {}
        keys: dict[bytes, str] = {}
        for s in pending:  # memo values are never None
            text = s.text
            value = memo.get(text)
            if value is not None:
                hits[text] = value
            else:
                keys[_stmt_key(s)] = text
        if keys:
            found = self.cache.get_many(self.stmt_parser, list(keys))
            for k, v in found.items():
                hits[keys[k]] = self._remember(keys[k], orjson.loads(v))
        return hits

    def _remember(self, text: str, value: Any) -> Any:
        if self._memo_chars >= MEMO_CHARS:
            self._memo.clear()
            self._memo_chars = 0
        self._memo[text] = value
        self._memo_chars += len(text)
        return value

    def _replay(self, result: ScriptResult, stmt: Statement, hit: Any) -> None:
        """A cached statement: ``["ok", facts]`` or ``["error", line_delta, message]``;
        ``_CUT`` (in the memo only): unreadable whole, read as pieces (``_retry_cut``)."""
        _count(result, "cached")
        if hit is _CUT:
            self._retry_cut(stmt, result)
        elif hit[0] == "ok":
            self._add(result, stmt, self._absolute(hit, stmt.line))
        else:
            _count(result, "failed")
            result.issues.append((stmt.line + int(hit[1]), str(hit[2])))

    def _absolute(self, hit: Any, line: int) -> list[Fact]:
        """A cached statement's facts at ``line`` (relative -> absolute), the same list
        for every file that has the statement at that line (variants of a schema):
        facts are never changed once made, and the builder's memos key on them."""
        key = (id(hit), line)
        entry = self._shifted.get(key)
        if entry is not None and entry[0] is hit:  # the entry holds ``hit``: not a reused id
            return entry[1]
        facts = _shift(hit[1], line)
        _bounded_put(self._shifted, key, (hit, facts), SHIFT_MEMO)
        return facts

    def _parse_one(self, stmt: Statement, result: ScriptResult) -> None:
        _count(result, "parsed")
        try:
            facts = extract(stmt, self.dialect)
        except StatementError as exc:
            if self._retry_cut(stmt, result):
                if self.cache is not None:  # as ``_store``: the next file's copy is not re-read
                    self._remember(stmt.text, _CUT)
                return
            _count(result, "failed")
            result.issues.append((exc.line, str(exc)))
            self._store(stmt, ["error", exc.line - stmt.line, str(exc)])
            return
        self._add(result, stmt, facts)
        self._store(stmt, ["ok", _shift(facts, -stmt.line)])  # absolute -> relative

    def _from_shape(self, stmt: Statement, result: ScriptResult) -> bool:
        """Facts of a schema statement from its shape's (see the module docstring);
        ``False``: no shape serves it (no cache, no integers, or the shape's own
        parse failed), so it is parsed as itself."""
        if self.cache is None or classify(stmt) != "schema":
            return False
        shaped = _shape(stmt.text)
        base, values = shaped if shaped is not None else (stmt.text, [])
        named, name_key, key = self._shape_keys(base)
        if named is not None:
            template = self._name_template(name_key)
            if template:  # a checked name shape: no parse, no integer shape needed
                self._serve(stmt, result, _fill(template, values, named[1]))
                return True
        relative: list[Fact] | None = None
        if shaped is not None:
            if key in self._shapes:
                template = self._shapes[key]
            else:
                template = self.cache.get(self.shape_parser, key)
                if template is None:
                    template = self._parse_shape(stmt, base, key, result)
                _bounded_put(self._shapes, key, template, SHAPE_MEMO)
            if template is not None:
                relative = _fill(template, values, [])
        if named is not None:
            relative = self._learn_names(stmt, named, name_key, values, relative, result=result)
        if relative is None:
            return False
        self._serve(stmt, result, relative)
        return True

    def _shape_keys(self, base: str) -> tuple[tuple[str, list[str]] | None, bytes, bytes]:
        """``base``'s name shape (``_name_shape``), that shape's key and ``base``'s own
        (``b""`` where none), remembered by ``base``: an integer shape is the same
        text for every variant of its statement."""
        found = self._bases.get(base)
        if found is not None:
            return found
        named = _name_shape(base, self._keywords)
        name_key = blake3(named[0].encode()).digest() if named is not None else b""
        found = (named, name_key, blake3(base.encode()).digest())
        if self._bases_chars >= BASE_MEMO_CHARS:
            self._bases.clear()
            self._bases_chars = 0
        self._bases[base] = found
        self._bases_chars += len(base)
        return found

    def _serve(self, stmt: Statement, result: ScriptResult, relative: list[Fact]) -> None:
        _count(result, "cached")  # a cache hit, by shape: ``shaped`` says how many
        _count(result, "shaped")
        self._add(result, stmt, _shift(relative, stmt.line))
        self._store(stmt, ["ok", relative])  # the statement itself is cached from now on

    def _name_template(self, key: bytes) -> bytes | None:
        """A checked name-shape template (memo, then cache), ``_SEEN``, or ``None``."""
        if key in self._names:
            return self._names[key]
        assert self.cache is not None
        template = self.cache.get(self.name_parser, key)
        if template is not None:
            self._remember_name(key, template)
        return template

    def _learn_names(
        self,
        stmt: Statement,
        named: tuple[str, list[str]],
        key: bytes,
        values: list[str],
        relative: list[Fact] | None,
        *,
        result: ScriptResult,
    ) -> list[Fact] | None:
        """Record a sighting of a name shape; at the second, parse the shape and keep it
        only if it gives exactly this statement's facts (``relative``, else parsed here).
        Returns this statement's facts when known, else ``None``."""
        if key not in self._names:
            self._remember_name(key, _SEEN)
            return relative
        if self._names[key] != _SEEN:
            return relative  # a shape found unusable
        shape, names = named
        try:
            if relative is None:  # no integer shape: the statement itself, parsed once
                _count(result, "parsed")
                relative = _shift(extract(stmt, self.dialect), -stmt.line)
            template = self._template(stmt, shape, result)
        except StatementError:
            self._remember_name(key, None)
            return relative
        if _fill(template, values, names) != relative:
            self._remember_name(key, None)  # names mattered beyond their text
            return relative
        self._remember_name(key, template)
        assert self.cache is not None
        self.cache.put(self.name_parser, key, template)
        return relative

    def _remember_name(self, key: bytes, value: bytes | None) -> None:
        _bounded_put(self._names, key, value, SHAPE_MEMO)

    def _template(self, stmt: Statement, shape: str, result: ScriptResult) -> bytes:
        """The facts of ``shape`` (``stmt``'s text made a shape) with statement-relative
        lines, as the JSON the shape entries keep; raises ``StatementError``."""
        _count(result, "parsed")
        facts = extract(Statement(shape, stmt.line, stmt.end_line, stmt.head), self.dialect)
        return orjson.dumps(_shift(facts, -stmt.line))

    def _parse_shape(
        self, stmt: Statement, shape: str, key: bytes, result: ScriptResult
    ) -> bytes | None:
        """Parse a new shape; its facts (statement-relative lines) or ``None``."""
        try:
            template = self._template(stmt, shape, result)
        except StatementError:
            return None  # parsed as itself: its error, pieces and lines are its own
        if self.cache is not None:
            self.cache.put(self.shape_parser, key, template)
        return template

    def _retry_cut(self, stmt: Statement, result: ScriptResult) -> bool:
        """Re-parse a failing statement as pieces cut where a new statement starts."""
        starts = [m.start() for m in _NEXT_STATEMENT.finditer(stmt.text) if m.start() > 0]
        if not starts:
            return False
        bounds = [0, *starts, len(stmt.text)]
        pieces: list[Statement] = []
        for a, b in itertools.pairwise(bounds):
            piece = stmt.text[a:b].strip()
            if not piece:
                continue
            segment = stmt.text[a:b]
            lead = len(segment) - len(segment.lstrip())
            line = stmt.line + stmt.text.count("\n", 0, a + lead)
            sub = Statement(piece, line, line + piece.count("\n"), statement_head(piece))
            if classify(sub) in ("schema", "routine"):
                pieces.append(sub)
        self._parse_or_replay(pieces, result)  # a piece seen before is not parsed again
        return True

    def _store(self, stmt: Statement, value: list[Any]) -> None:
        if self.cache is not None:
            self.cache.put(self.stmt_parser, _stmt_key(stmt), orjson.dumps(value))
            self._remember(stmt.text, value)

    @staticmethod
    def _add(result: ScriptResult, stmt: Statement, facts: list[Fact]) -> None:
        if facts:
            result.statements.append((stmt.line, facts))


# The memo's value for a statement that failed whole and was read as pieces: only
# in memory (the cache keeps its pieces), so the cache's format is unchanged.
_CUT: list[Any] = ["cut"]


def _bounded_put(memo: dict[Any, Any], key: Any, value: Any, limit: int) -> None:
    """``memo[key] = value``, emptying the memo first once it holds ``limit`` entries."""
    if len(memo) >= limit:
        memo.clear()
    memo[key] = value


def _shape(text: str) -> tuple[str, list[str]] | None:
    """``text`` with its integer literals numbered sentinels, and the literals; ``None``
    when there are none, too many, or the text holds a sentinel-like number itself."""
    if _SENTINEL_PREFIX in text:
        return None
    values: list[str] = []

    def number(m: re.Match[str]) -> str:
        literal = m.group(1)
        if literal is None:
            return m.group(0)
        values.append(literal)
        return f"{_SENTINEL_PREFIX}{len(values) - 1:05d}"

    shape = _LITERALS.sub(number, text)
    if not values or len(values) > 99_999:
        return None
    return shape, values


def _name_shape(text: str, keywords: frozenset[str]) -> tuple[str, list[str]] | None:
    """``text`` with the digit runs inside names numbered letter sentinels, and the
    runs; ``None`` when there are none or the text holds sentinel-like letters."""
    if "zq" in text.lower():
        return None
    runs: list[str] = []

    def digits(m: re.Match[str]) -> str:
        runs.append(m.group(0))
        return "zq" + "".join(chr(97 + int(c)) for c in f"{len(runs) - 1:05d}")

    def part(m: re.Match[str]) -> str:
        quoted, word = m.group(1), m.group(2)
        if quoted is not None:
            return _DIGIT_RUN.sub(digits, quoted)
        if word is None or word.upper() in keywords:
            return m.group(0)
        if _CALL.match(text, m.end()):
            before = _WORD_BEFORE.search(text, max(0, m.start() - 64), m.start())
            if before is None or before.group(1).upper() not in _NAME_KEYWORDS:
                return m.group(0)  # a function call, or not clearly a name
        return _DIGIT_RUN.sub(digits, word)

    shape = _NAME_PARTS.sub(part, text)
    if not runs or len(runs) > 99_999:
        return None
    return shape, runs


def _fill(template: bytes, values: list[str], names: list[str]) -> Any:
    """A shape's facts with this statement's integers and name digits written back."""
    text = template.decode()
    if names:
        text = _NAME_SENTINEL.sub(lambda m: names[int(m.group(1).translate(_LETTER_DIGITS))], text)
    if values:
        text = _SENTINEL.sub(lambda m: values[int(m.group(1))], text)
    return orjson.loads(text)


def _stmt_key(stmt: Statement) -> bytes:
    return blake3(stmt.text.encode()).digest()


def _shift(facts: list[Fact], delta: int) -> list[Fact]:
    """Facts with ``line`` moved by ``delta``: cached facts are statement-relative."""
    return [
        {**fact, "line": int(fact["line"]) + delta} if "line" in fact else fact for fact in facts
    ]
