"""Split SQL scripts into statements with their line numbers, without parsing them.

One regular expression jumps from one *interesting* character to the next (a quote,
a comment, a terminator, a line that is a batch separator), so the cost is C-speed
scanning plus one Python step per string literal: a 600 KB script of INSERT rows
splits in tens of milliseconds and no statement is ever parsed to be skipped.

What ends a statement:

- ``;`` outside strings, quoted identifiers and comments (``--``, ``/* */``, and
  ``#`` in MySQL), dollar quotes (``$tag$ … $tag$``) and ``[bracketed]`` names;
- a custom terminator set by a MySQL client ``DELIMITER //`` line (it then ends a
  statement whatever it contains);
- a ``GO`` line (SQL Server) or a ``/`` line (Oracle SQL*Plus);
- for routine bodies (``CREATE TRIGGER/PROCEDURE/FUNCTION/PACKAGE/TYPE``): a ``;``
  only when every ``BEGIN``/``CASE`` was closed by its ``END``. In scripts that use
  ``/`` or ``GO`` lines, a routine ends only at that line (PL/SQL declarations and
  T-SQL bodies contain bare ``;``).

A PostgreSQL ``COPY … FROM stdin;`` is followed by its data up to a ``\\.`` line,
which is skipped unread.

Given the file's bytes, the splitter scans them decoded as Latin-1 (one character
per byte, so ``str.find``/``str.count`` run at memchr speed and no UTF-8 decoding
happens for the text it skips) and decodes only the statements it returns as UTF-8.
Every character it looks for is ASCII, and UTF-8 never puts an ASCII byte inside a
multi-byte character, so the cuts fall where they would in the decoded text.
A data statement (``INSERT``/``REPLACE``) is skipped with ``str.find`` for its
``;`` and ``str.count`` of quotes before it when nothing but single-quoted strings
can hide a ``;`` in it; otherwise one regular expression match consumes it.

Given a ``SplitIndex`` (``ScriptParser`` keeps one per dialect), the splitter reuses
statements it has cut before: at the start of a statement it looks up the text's
first line there (at most ``_KEY_CHARS`` characters, cut after a ``;``), and a
candidate whose bytes are all there again — with everything the scanner read to
decide where that statement ends, in the same mode — is emitted without scanning
(a ``str.startswith``, i.e. memcmp, instead of the regular expressions and the
decoding); its line numbers come from counting newlines. Statements the fast loop
cut one after the other are kept as a chain too: where one of them is reused, the
chain's next statements that are there again come with one more comparison, not a
lookup each (``_Chain``; split in order, 50,265 of the 1,000-file benchmark
corpus's 78,989 statements came from chains). See ``SplitIndex``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

_ROUTINE_HEAD = re.compile(
    r"CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:DEFINER\s*=\s*\S+\s+)?"
    r"(?:(?:NON)?EDITIONABLE\s+)?(?:TEMP(?:ORARY)?\s+)?"
    r"(?:TRIGGER|PROCEDURE|PROC|FUNCTION|PACKAGE|TYPE)\b",
    re.I,
)
_DATA_HEAD = re.compile(r"(?:INSERT|REPLACE)\b", re.I)
# A whole data statement in one C-level match: possessive runs, no backtracking.
_DATA_BODY = {
    mysql: re.compile(
        r"(?:[^;'\"`\-/#]++|'(?:[^'\\]|\\.|'')*+'|\"(?:[^\"\\]|\\.|\"\")*+\"|`[^`]*+`"
        + (r"|\#[^\n]*+" if mysql else "")
        + r"|--[^\n]*+|/\*(?s:.*?)\*/|[-/#])*+;",
    )
    for mysql in (False, True)
}
_DATA_PREFIX_CHARS = 200
# A whole ordinary statement (not a routine body) up to its ``;`` in one C-level
# match: strings, quoted names and comments are consumed inside the match, so the
# Python loop below runs once per statement instead of once per quote. It fails
# (and the general scanner takes over) at a dollar quote, an unterminated string or
# comment, or a line that is a ``GO``/``/`` separator or a ``DELIMITER`` command.
_STATEMENT_BODY = {
    mysql: re.compile(
        r"(?:[^;'\"`\[\-/#$\n]++|'(?:"
        + (r"[^'\\]|\\[\s\S]|''" if mysql else r"[^']|''")
        + r")*+'|\"(?:[^\"]|\"\")*+\"|`[^`]*+`|\[[^\]]*+\]"
        + (r"|\#[^\n]*+" if mysql else r"|\#")
        + r"|--[^\n]*+|/\*(?s:.*?)\*/|-|/(?!\*)|\$(?![A-Za-z_]*\$)"
        r"|\n(?![ \t]*(?:GO|/)[ \t]*(?:\n|$)|[ \t]*DELIMITER[ \t]))*+;",
        re.I,
    )
    for mysql in (False, True)
}
_SPECIAL_START = re.compile(r"(?:GO|/)[ \t]*(?:\n|$)|DELIMITER[ \t]", re.I)
_BLANK = {
    mysql: re.compile(
        r"(?:\s++|--[^\n]*+" + (r"|\#[^\n]*+" if mysql else "") + r"|/\*(?s:.*?)\*/)*+"
    )
    for mysql in (False, True)
}
_ANON_BLOCK_HEAD = re.compile(r"(?:BEGIN|DECLARE)\b", re.I)
_NEXT_WORD = re.compile(r"\s*([A-Za-z_]+)")
_COPY_STDIN = re.compile(r"COPY\b[^;]*\bFROM\s+STDIN", re.I)
_COPY_END = re.compile(r"^\\\.[ \t]*$", re.M)
_NON_BLOCK_END = frozenset({"IF", "LOOP", "WHILE", "REPEAT", "FOR"})
_SEP_LINE = re.compile(r"^[ \t]*(?:GO|/)[ \t]*$", re.M | re.I)
# The same search, 3-4x faster: the first line, then lines found at their newline
# (a literal first character lets ``re`` skip to candidates; ``GO`` has no other
# case folds). The tests compare it with ``_SEP_LINE``.
_FIRST_SEP_LINE = re.compile(r"[ \t]*(?:GO|/)[ \t]*$", re.M | re.I)
_NEXT_SEP_LINE = re.compile(r"\n[ \t]*(?:[Gg][Oo]|/)[ \t]*$", re.M)
_STRING_END = {
    "'": re.compile(r"(?:[^']|'')*'"),
    '"': re.compile(r'(?:[^"]|"")*"'),
    "`": re.compile(r"(?:[^`]|``)*`"),
    "[": re.compile(r"[^\]]*\]"),
}
_STRING_END_BACKSLASH = re.compile(r"(?:[^'\\]|\\.|'')*'", re.S)


@dataclass(frozen=True, slots=True)
class Statement:
    """One statement of a script.

    ``text`` excludes the terminator; ``line`` and ``end_line`` are the 1-based lines
    of its first and last significant characters. ``head`` is its first one or two
    keywords, upper case (``"CREATE TABLE"``, ``"INSERT"``): enough to decide
    whether it is worth parsing.
    """

    text: str
    line: int
    end_line: int
    head: str


@lru_cache(maxsize=16)
def _scanner(delimiter: str, hash_comments: bool) -> re.Pattern[str]:
    terminator = re.escape(delimiter)
    hash_alt = r"|(?P<lc2>\#)" if hash_comments else ""
    dollar = "" if delimiter == "$$" else r"|(?P<dollar>\$[A-Za-z_]*\$)"
    return re.compile(
        r"(?P<q>['\"`\[])"
        r"|(?P<lc>--)" + hash_alt + r"|(?P<bc>/\*)" + dollar + r"|(?P<sep>^[ \t]*(?:GO|/)[ \t]*$)"
        r"|(?P<delim>^[ \t]*DELIMITER[ \t]+(?P<dval>\S+)[ \t]*$)"
        r"|(?P<term>" + terminator + r")"
        r"|(?P<word>\b(?:BEGIN|END|CASE)\b)",
        re.M | re.I,
    )


# The same scanner for text whose ASCII letters are lower-cased (a copy of the
# script: ``bytes.lower`` keeps every position) and without ``re.I``: every
# alternative then starts with one literal character, so ``re`` jumps from one
# candidate character to the next in C (its "charset prefix" search) instead of
# trying every alternative at every position, as the zero-width starts (``^``,
# ``\b``) above force. Same matches: a separator or ``DELIMITER`` line is found at
# the newline before it (``_LINE_START`` covers a search that starts on a line);
# ``\b`` before a keyword is a one-character look-behind after its first letter;
# the word alternatives are left out where they cannot change anything (outside
# routine bodies, with a delimiter without word characters: a word never hides a
# match that starts with another character). Only for an ASCII delimiter (only
# ASCII letters fold to ASCII letters in Latin-1, so ASCII lower-casing is ``re.I``).
_LINE_START = re.compile(
    r"[ \t]*(?:go|/)[ \t]*$(?P<sep>)|[ \t]*delimiter[ \t]+(?P<dval>\S+)[ \t]*$(?P<delim>)", re.M
)
_WORDS = {"w1": "BEGIN", "w2": "END", "w3": "CASE"}
_QUOTES = frozenset({"q1", "q2", "q3", "q4"})
_SKIPPED = _QUOTES | {"lc", "lc2", "bc", "dollar"}
_KINDS = {"q": "q1", "word": "w"}  # ``_scanner``'s group names -> ``_lower_scanner``'s


@lru_cache(maxsize=32)
def _lower_scanner(delimiter: str, hash_comments: bool, words: bool) -> re.Pattern[str]:
    alts = [r"'(?P<q1>)", r'"(?P<q2>)', r"`(?P<q3>)", r"\[(?P<q4>)", r"--(?P<lc>)"]
    if hash_comments:
        alts.append(r"\#(?P<lc2>)")
    alts.append(r"/\*(?P<bc>)")
    if delimiter != "$$":
        alts.append(r"\$[A-Za-z_]*\$(?P<dollar>)")
    alts.append(r"\n[ \t]*(?:go|/)[ \t]*$(?P<sep>)")
    alts.append(r"\n[ \t]*delimiter[ \t]+(?P<dval>\S+)[ \t]*$(?P<delim>)")
    alts.append(re.escape(delimiter.lower()) + "(?P<term>)")
    if words:
        alts += [r"b(?<=\bb)egin\b(?P<w1>)", r"e(?<=\be)nd\b(?P<w2>)", r"c(?<=\bc)ase\b(?P<w3>)"]
    return re.compile("|".join(alts), re.M)


@lru_cache(maxsize=32)
def _has_word_char(delimiter: str) -> bool:
    return re.search(r"\w", delimiter) is not None


def _same(text: str) -> str:
    return text


def _from_latin1(text: str) -> str:
    return text.encode("latin-1").decode("utf-8", errors="replace")


_DATA_SPECIALS = {
    mysql: ('"', "`", "\\", "--", "/*") + (("#",) if mysql else ()) for mysql in (False, True)
}


def _data_end(text: str, start: int, mysql: bool) -> int:
    """Just past the ``;`` that ends the data statement at ``start``, or -1 to leave it
    to the regular expression (``_DATA_BODY``), whose result this is.

    Jumps with ``str.find``/``str.count`` (C loops over one byte per character)
    instead of stepping through every value: between the special sequences
    (``"``, backquote, backslash, ``--``, ``/*``, MySQL's ``#``) only single-quoted
    strings hide a ``;``, and a position is inside one when an odd number of quotes
    precede it (``''`` escapes count twice). A special inside a string changes
    nothing (a backslash escapes the next character); outside, a quoted name or a
    comment is skipped whole. Whatever the regular expression would read another
    way (a backslash before a quote, backslash or line end inside a string, ``""``
    or a backslash inside a double-quoted name, anything unterminated) gives -1.
    """
    find, count = text.find, text.count
    specials = _DATA_SPECIALS[mysql]
    semi = find(";", start)
    if semi < 0:
        return -1
    at = [_find(text, sp, start, semi) for sp in specials]  # next occurrence before ``semi``
    pos, quotes = start, 0  # ``quotes``: counted in [start, pos), minus skipped names
    while True:
        x = min((h for h in at if h >= 0), default=-1)
        if x < 0:  # no special before the ``;``
            quotes += count("'", pos, semi)
            if not quotes & 1:
                return semi + 1
            pos = semi + 1
        else:
            quotes += count("'", pos, x)
            pos = _past_special(text, x, bool(quotes & 1))
            if pos < 0:
                return -1
        if pos > semi:
            old, semi = semi, find(";", pos)
            if semi < 0:
                return -1
            at = [
                h if h >= 0 else _find(text, sp, old, semi)
                for h, sp in zip(at, specials, strict=True)
            ]
        at = [
            h if h < 0 or h >= pos else _find(text, sp, pos, semi)
            for h, sp in zip(at, specials, strict=True)
        ]


_HOPS = 16


def _find(text: str, needle: str, start: int, end: int) -> int:
    """``text.find(needle, start, end)`` for one or two characters, faster for two:
    ``str.find`` scans for a two-character needle at ~1 GB/s, for one character at
    memchr speed, so a pair is found by hopping between occurrences of one of its
    characters (``*`` for ``/*``, which data rarely holds) and checking the other;
    after ``_HOPS`` hops ``str.find`` takes over (text full of that character)."""
    if len(needle) == 1:
        return text.find(needle, start, end)
    first, second = needle[0], needle[1]
    end = min(end, len(text))
    if end - start < 2:
        return -1
    if second == "*":  # ``/*``: hop on the ``*``
        x = text.find("*", start + 1, end)
        for _ in range(_HOPS):
            if x < 0 or text[x - 1] == first:
                return x - 1 if x >= 0 else -1
            x = text.find("*", x + 1, end)
        return -1 if x < 0 else text.find(needle, x - 1, end)
    x = text.find(first, start, end - 1)
    for _ in range(_HOPS):
        if x < 0 or text[x + 1] == second:
            return x
        x = text.find(first, x + 1, end - 1)
    return -1 if x < 0 else text.find(needle, x, end)


def _past_special(text: str, x: int, in_string: bool) -> int:
    """Where ``_data_end`` goes on after the special sequence at ``x`` (-1: give up)."""
    ch = text[x]
    if in_string:  # only a backslash matters: it escapes the next character
        escaped = text[x + 1 : x + 2]
        bad = ch == "\\" and escaped in ("'", "\\", "\n", "")
        return -1 if bad else x + (2 if ch == "\\" else 1)
    if ch == "\\":  # a plain character outside strings
        return x + 1
    if ch in '`"':  # a quoted name (a double-quoted one with \ or "" escapes: give up)
        close = text.find(ch, x + 1)
        escapes = ch == '"' and close >= 0
        if escapes and (text.find("\\", x + 1, close) >= 0 or text.startswith('"', close + 1)):
            close = -1
    elif ch == "/":
        close = text.find("*/", x + 2)
        close = close + 1 if close >= 0 else -1
    else:  # ``--`` or ``#``: to the end of the line
        return text.find("\n", x)
    return -1 if close < 0 else close + 1


# -- statements seen before -----------------------------------------------------

_KEY_CHARS = 64
_CANDIDATES = 16  # entries kept per key (statements with the same first line)
# A SplitIndex's bound: characters of keys, verified texts and statements' texts
# (1 byte each for Latin-1/ASCII text), and entries (~0.45 KB each besides: tuple,
# Statement, strings), so at most ~2 MB + 8,000 x 0.45 KB = ~5.6 MB per index.
INDEX_CHARS = 2_000_000
INDEX_ENTRIES = 8_000
# Statements that are never learned: their end (or whether they are a routine) can
# depend on text after them, or their output on the statement before them.
_DEFINER_HEAD = re.compile(r"CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?DEFINER", re.I)
_WORD_CHAR = re.compile(r"\w")


def _key(text: str, start: int) -> str:
    """The index key at ``start``: up to ``_KEY_CHARS`` characters, cut after the first
    newline or ``;`` (so the key of a statement is inside the text it was learned with)."""
    end = start + _KEY_CHARS
    k = text.find("\n", start, end)
    if k >= 0:
        end = k + 1
    k = text.find(";", start, end)
    if k >= 0:
        end = k + 1
    return text[start:end]


def _seen(
    table: dict[str, list[tuple[Any, ...]]], text: str, start: int, data: bool
) -> tuple[Any, ...] | None:
    """The one-match entry whose text is at ``start`` again, if any (a data statement
    only if ``data``: else ``_fast`` stops at it, and so it does without an entry)."""
    for entry in table.get(_key(text, start), ()):
        if text.startswith(entry[0], start):
            return entry if data or not entry[3] else None
    return None


def _at_line(stmt: Statement, line: int) -> Statement:
    """``stmt`` starting on ``line``."""
    return Statement(stmt.text, line, line + stmt.end_line - stmt.line, stmt.head)


@dataclass(frozen=True, slots=True)
class _Chain:
    """Statements ``_fast`` emitted one after the other, each from its one-match
    entry (learned or reused), with the text from the first one's start to the last
    one's end (``;``), blanks and comments between them included. Where an entry of
    the chain is reused, the text after it that is the chain's again (one comparison
    of characters) holds the chain's next statements: the loop would have reused
    each of them in turn (nothing but blanks between them, and no entry reads past its
    ``;``), so they are emitted without it. ``items``: start, end (past ``;``) and the
    line there, relative to ``text``'s start and the chain's lines; data statement?"""

    text: str
    items: list[tuple[int, int, int, bool]]
    stmts: list[Statement]


class SplitIndex:
    """Statements a splitter has cut, for the next scripts of the same kind.

    One table per mode (``mysql``, bytes or text input; for the general scanner also
    the delimiter, routine-body mode and whether the character before the statement
    is a word character), each a dict from ``_key`` to at most ``_CANDIDATES``
    entries. An entry holds the *verified text*: the statement from its first
    significant character through everything the scanner read to decide where it
    ends, and what the split did there (the ``Statement``, the newlines, where the
    scan resumed, the new delimiter). A hit needs that text byte for byte at the same
    position (``str.startswith``); what the scanner reads is bounded so:

    - one-match statements (``_fast``: ordinary statements and data statements up to
      their ``;``): the match reads nothing after the ``;`` (its lookaheads stop at
      ``;``, ``_data_end`` finds the same end as the regular expression), nor do
      the checks before it (``_SPECIAL_START``, the routine head: statements that
      could start a ``DEFINER`` routine head, whose ``\\S+`` crosses a ``;``, and
      ``BEGIN``/``DECLARE`` blocks, which depend on the whole script, are not
      learned);
    - the general scanner (routine bodies, ``GO``/``/`` batches, ``DELIMITER``
      scripts): what it reads past the event that ends a statement (a separator or
      ``DELIMITER`` line, a terminator) stays on that event's line (every lookahead,
      ``[ \\t]*``, ``\\S+``, ``[A-Za-z_]*``, the word after ``END``, stops at a newline
      or at that event), so the verified text runs to the end of that line, newline
      included; a statement that ends at the end of the text
      must end the text again. Whether the script has separator lines (a property of
      the whole script) is part of the entry when a terminator consulted it.
      Statements starting with what may be a separator or ``DELIMITER`` line
      (``_SPECIAL_START``) and ``COPY`` (its data follows it) are not learned.

    Bounded: at most ``max_chars`` characters of keys, verified texts, the
    statements' texts and chains' texts (1 byte each for Latin-1/ASCII) and
    ``max_entries`` entries and chains' statements
    (``INDEX_CHARS``, ``INDEX_ENTRIES``: ~5.6 MB); past either, the index is emptied
    and learns again (an entry costing over a quarter of the bound is not kept).
    Tests: every fixture split with a warm index equals the cold split; pairs of
    scripts where what follows decides; Hypothesis over random and edited scripts.
    """

    def __init__(self, max_chars: int = INDEX_CHARS, max_entries: int = INDEX_ENTRIES) -> None:
        self.max_chars = max_chars
        self.max_entries = max_entries
        self.chars = 0
        self.entries = 0
        self.hits = 0
        self._tables: dict[tuple[object, ...], dict[str, list[tuple[Any, ...]]]] = {}
        # Runs (``_Chain``): a one-match entry's id -> (entry, chain, its item there)
        self.links: dict[int, tuple[tuple[Any, ...], _Chain, int]] = {}
        self.chain_chars = 0  # characters of the chains' texts (within ``max_chars``)
        self.chain_items = 0  # their statements (within ``max_entries``)

    def table(self, mode: tuple[object, ...]) -> dict[str, list[tuple[Any, ...]]]:
        found = self._tables.get(mode)
        if found is None:
            found = self._tables[mode] = {}
        return found

    def learn(
        self, table: dict[str, list[tuple[Any, ...]]], key: str, entry: tuple[Any, ...]
    ) -> bool:
        """Add ``entry`` (its verified text first, its ``Statement``'s text in the
        characters it costs last) under ``key``; one of over a quarter of the bound is
        not kept (``False``)."""
        cost = entry[-1]
        if cost > self.max_chars // 4:
            return False
        if self.chars + self.chain_chars + cost > self.max_chars or (
            self.entries + self.chain_items >= self.max_entries
        ):
            self.clear()
        found = table.get(key)
        if found is None:
            table[key] = [entry]
        else:
            if len(found) >= _CANDIDATES:
                old = found.pop(0)
                self.chars -= old[-1]
                self.entries -= 1
            found.append(entry)
        self.chars += cost
        self.entries += 1
        return True

    def chain(self, text: str, items: list[tuple[Any, ...]]) -> None:
        """Keep the run ``items`` (``_Splitter._fast``'s: start, stop, line after,
        data?, entry, statement) cut from ``text``, as chains of at most an eighth of
        the bound's characters: each entry but a chain's last is linked to its chain
        (a later link replaces an earlier one)."""
        most, at = self.max_chars // 8, 0
        while at < len(items) - 1:
            end = at + 1
            while end < len(items) and items[end][1] - items[at][0] <= most:
                end += 1
            if end - at > 1:
                self._keep(text, items[at:end])
            at = end

    def _keep(self, text: str, items: list[tuple[Any, ...]]) -> None:
        first, stop = items[0][0], items[-1][1]
        cost = stop - first
        if self.chars + self.chain_chars + cost > self.max_chars or (
            self.entries + self.chain_items + len(items) > self.max_entries
        ):
            self.clear()
        chain = _Chain(
            text[first:stop],
            [(start - first, end - first, line, data) for start, end, line, data, _, _ in items],
            [item[5] for item in items],
        )
        links = self.links
        for j, item in enumerate(items[:-1]):
            links[id(item[4])] = (item[4], chain, j)
        self.chain_chars += cost
        self.chain_items += len(items)

    def clear(self) -> None:
        for table in self._tables.values():  # in place: splitters hold the tables
            table.clear()
        self.links.clear()
        self.chars = self.entries = self.chain_chars = self.chain_items = 0


class _Splitter:
    def __init__(
        self, text: str, *, mysql: bool, latin1: bool = False, index: SplitIndex | None = None
    ) -> None:
        self.text = text
        self.mysql = mysql
        self.latin1 = latin1
        # ``text`` is bytes decoded as Latin-1: statements are decoded as UTF-8.
        self.decode = _from_latin1 if latin1 else _same
        self.delimiter = ";"
        # the scanner's lower-cased copy (``_lower_scanner``), made when first needed
        self._lowerable = latin1 or text.isascii()
        self._low: str | None = None
        self._low_base = 0  # the copy's first character is text[_low_base]
        self._dval = ""
        self._separator_lines: bool | None = None
        self.pos = 0  # start of the current statement
        self.line = 1  # line number at self.pos
        self.out: list[Statement] = []
        self.index = index
        # ``_fast``'s table (one-match statements); the general scanner's per mode
        self._fast_table = index.table(("fast", mysql, latin1)) if index is not None else None
        self._sig = 0  # ``_block_mode``'s significant start
        # Where ``_fast`` stopped: (pos, significant start, ``_SPECIAL_START`` there?,
        # ``_block_at`` there?), each None where it did not look; read by the general
        # scanner, which starts there (``_block_mode``, ``_unit``)
        self._hint: tuple[int, int, bool | None, bool | None] | None = None
        self._sep_seen: bool | None = None  # ``separator_lines`` as a terminator read it
        self._hits = 0
        self._learned: tuple[Any, ...] | None = None  # ``_data_statement``'s entry

    @property
    def separator_lines(self) -> bool:
        """Whether the script has ``/`` or ``GO`` lines (routines end only there).
        Looked up only when a routine or block is met: most data scripts have none."""
        if self._separator_lines is None:
            text = self.text
            found = _FIRST_SEP_LINE.match(text) or _NEXT_SEP_LINE.search(text)
            self._separator_lines = found is not None
        return self._separator_lines

    def run(self) -> list[Statement]:
        text = self.text
        state = self._resume("start")
        if state is None:
            return self.out
        (i, block, unit), depth = state, 0
        while True:
            found = self._search(i, block)
            if found is None:
                self._emit(len(text), len(text))
                self._learn(unit, "eof", len(text), len(text))
                return self.out
            kind, start, end = found
            if kind in _SKIPPED:
                i = self._skip(kind, start, end)
            elif kind in ("sep", "delim", "term"):
                if (
                    kind == "term"
                    and block
                    and self.delimiter == ";"
                    and (depth > 0 or self._separators())
                ):  # inside a routine body
                    i = end
                    continue
                self._emit(start, end)
                if kind == "delim":
                    self.delimiter = self._dval
                self._learn(unit, kind, start if kind == "term" else end, end)
                state = self._resume(kind)
                if state is None:
                    return self.out
                (i, block, unit), depth = state, 0
            else:  # BEGIN / END / CASE: only counted inside routine bodies
                i = end
                if block:
                    depth += self._depth_step(_WORDS.get(kind) or text[start:end].upper(), i)

    def _resume(self, ended: str) -> tuple[int, bool, tuple[Any, ...] | None] | None:
        """After a statement ended by ``ended`` (``"start"``: at the beginning): the
        one-match statements from here (``_fast``; data statements only after a
        terminator), then the next statements for the general scanner as long as the
        index has them. Returns where the general scanner resumes, the routine-body
        mode there and the statement to learn (``_unit``); None: the text ended."""
        kind = ended
        while True:
            if kind == "term":
                i = self._fast(self._skip_copy_data(self.pos))
            elif kind == "start":
                i = self._fast(self.pos)
            else:  # after a separator or DELIMITER line
                i = self._fast(self.pos, data=False)
            block = self._block_mode()
            unit = self._unit(block)
            if unit is None or unit[0] is not None:
                return i, block, unit
            kind = unit[1]  # reused: as after its end
            if kind == "eof":
                return None

    def _skip(self, kind: str, start: int, end: int) -> int:
        """Past the string, quoted name, comment or dollar quote found at ``start``."""
        text = self.text
        if kind in _QUOTES:
            return self._skip_string(text[start], end)
        if kind == "bc":
            close = text.find("*/", end)
            return len(text) if close < 0 else close + 2
        if kind == "dollar":
            tag = text[start:end]  # as written: tags are case-sensitive
            close = text.find(tag, end)
            return len(text) if close < 0 else close + len(tag)
        nl = text.find("\n", end)  # ``--`` or ``#`` comment
        return len(text) if nl < 0 else nl

    def _separators(self) -> bool:
        """``separator_lines``, remembered for the statement being learned."""
        found = self._sep_seen = self.separator_lines
        return found

    def _unit(self, block: bool) -> tuple[Any, ...] | None:
        """At the start of a statement for the general scanner (``self.pos``, after
        ``_block_mode``): emit it from the index if it is there (returns ``(None,
        end kind)``), else what ``_learn`` needs to learn it (or None)."""
        index, text, s = self.index, self.text, self._sig
        if index is None or s >= len(text):
            return None
        hint = self._hint
        special = hint[2] if hint is not None and hint[:2] == (self.pos, s) else None
        if special if special is not None else _SPECIAL_START.match(text, s):
            return None
        prev_word = s > 0 and _WORD_CHAR.match(text, s - 1) is not None
        scanner = self._lowerable and self.delimiter.isascii()
        mode = ("general", self.mysql, self.latin1, scanner, self.delimiter, block, prev_word)
        table = index.table(mode)
        key = _key(text, s)
        for entry in table.get(key, ()):
            raw, eof, seps = entry[0], entry[1], entry[2]
            if eof and len(text) - s != len(raw):
                continue
            if not text.startswith(raw, s):
                continue
            if seps is not None and self.separator_lines != seps:
                continue
            _, _, _, kind, resume, nl, stmt, delimiter, _ = entry
            line = self.line + text.count("\n", self.pos, s)
            self.out.append(stmt if stmt.line == line else _at_line(stmt, line))
            self.pos, self.line = s + resume, line + nl
            self.delimiter = delimiter
            self._hits += 1
            return (None, kind)
        self._sep_seen = None
        return (table, key, s, len(self.out))

    def _learn(self, unit: tuple[Any, ...] | None, kind: str, event: int, resume: int) -> None:
        """Learn the statement ``_unit`` started, ended by ``kind`` at ``event`` (the
        scan resumed at ``resume``), if it emitted one statement."""
        if unit is None or self.index is None:
            return
        table, key, s, n_out = unit
        out, text = self.out, self.text
        if len(out) != n_out + 1 or out[-1].head.startswith("COPY"):
            return
        nl = text.find("\n", event)  # through the end of the event's line
        stop, eof = (nl + 1, False) if nl >= 0 else (len(text), True)
        raw, stmt = text[s:stop], out[-1]
        entry = (
            raw,
            eof,
            self._sep_seen,
            kind,
            resume - s,
            text.count("\n", s, resume),
            stmt,
            self.delimiter,
            len(key) + len(raw) + len(stmt.text),
        )
        self.index.learn(table, key, entry)

    def _search(self, i: int, block: bool) -> tuple[str, int, int] | None:
        """The general scanner's next match at or after ``i``: its alternative, start
        and end (a ``sep``/``delim`` match starts where its line does; ``_dval``: the
        new delimiter). Found with ``_lower_scanner`` in the lower-cased copy of the
        text from ``i`` on (made when first needed, one character before ``i`` kept
        for look-behinds) where that applies, else with ``_scanner``."""
        text, delimiter = self.text, self.delimiter
        if i >= len(text):  # every alternative needs a character
            return None
        if not (self._lowerable and delimiter.isascii()):
            m = _scanner(delimiter, self.mysql).search(text, i)
            if m is None:
                return None
            if m.lastgroup == "delim":
                self._dval = m.group("dval")
            return _KINDS.get(m.lastgroup or "", m.lastgroup or ""), m.start(), m.end()
        low, base = self._low, self._low_base
        if low is None or i < base:
            base = self._low_base = max(i - 1, 0)
            low = self._low = text[base:].encode("latin-1").lower().decode("latin-1")
        at = i - base
        m = None
        if i == 0 or text[i - 1] == "\n":  # where ``^`` matches: a line may start here
            m = _LINE_START.match(low, at)
        if m is None:
            words = block or _has_word_char(delimiter)
            m = _lower_scanner(delimiter, self.mysql, words).search(low, at)
            if m is None:
                return None
        kind = m.lastgroup or ""
        start = m.start() + base
        if kind in ("sep", "delim") and text[start] == "\n":
            start += 1
        if kind == "delim":
            self._dval = text[m.start("dval") + base : m.end("dval") + base]
        return kind, start, m.end() + base

    def _depth_step(self, word: str, after: int) -> int:
        if word in ("BEGIN", "CASE"):
            return 1
        nxt = _NEXT_WORD.match(self.text, after)
        if nxt is not None and nxt.group(1).upper() in _NON_BLOCK_END:
            return 0
        return -1

    def _skip_string(self, quote: str, start: int) -> int:
        pattern = _STRING_END_BACKSLASH if (quote == "'" and self.mysql) else _STRING_END[quote]
        m = pattern.match(self.text, start)
        return len(self.text) if m is None else m.end()

    def _block_mode(self) -> bool:
        hint = self._hint  # what ``_fast`` found where it stopped, if it stopped here
        if hint is not None and hint[0] == self.pos:
            self._sig = start = hint[1]
            return hint[3] if hint[3] is not None else self._block_at(start)
        self._sig = start = self._significant_start(self.pos)
        return self._block_at(start)

    def _block_at(self, start: int) -> bool:
        if _ROUTINE_HEAD.match(self.text, start):
            return True
        return _ANON_BLOCK_HEAD.match(self.text, start) is not None and self.separator_lines

    def _fast(self, pos: int, data: bool = True) -> int:
        """Emit the statements from ``pos`` (= ``self.pos``) on, one regex match each
        (INSERT/REPLACE consumed whole by one match, keeping only their first
        characters, if ``data``), or from the index (``SplitIndex``: its entries and
        their chains); returns where the general scanner resumes: at a routine body, a
        separator or ``DELIMITER`` line, or a statement the one-match pattern cannot
        read (dollar quotes, unterminated). Inlined: this loop is most of a cold
        ingest's split."""
        self._hint = None
        if self.delimiter != ";":
            return pos
        text, n = self.text, len(self.text)
        body, blank = _STATEMENT_BODY[self.mysql], _BLANK[self.mysql]
        table = self._fast_table
        run: list[tuple[Any, ...]] = []  # statements in a row not from a chain: a new one
        line = self.line  # the line at pos
        while True:
            start = blank.match(text, pos).end()  # type: ignore[union-attr]  # always matches
            if text.startswith("/*", start):  # unterminated comment: the rest
                start = n
            if start >= n:
                self._hint = (pos, start, None, None)
                break
            seen = _seen(table, text, start, data) if table is not None else None
            if seen is not None:  # its text again: the same statement (``SplitIndex``)
                first = line + text.count("\n", pos, start)
                pos, line = self._reuse(seen, start, first, run, data)
                continue
            if _SPECIAL_START.match(text, start):
                self._hint = (pos, start, True, None)
                break
            if self._block_at(start):
                self._hint = (pos, start, False, True)
                break
            if _DATA_HEAD.match(text, start):
                done = self._data_statement(start, line + text.count("\n", pos, start), data)
                if done is None:
                    self._hint = (pos, start, False, False)
                    break
                pos, line = done
                self._extend(run, (start, pos, line, True, self._learned, self.out[-1]))
                continue
            m = body.match(text, start)
            if m is None:
                self._hint = (pos, start, False, False)
                break
            pos, line = self._one_match(start, m.end(), line + text.count("\n", pos, start), run)
        self._chain(run)
        self.pos, self.line = pos, line
        return pos

    def _reuse(
        self,
        seen: tuple[Any, ...],
        start: int,
        first: int,
        run: list[tuple[Any, ...]],
        data: bool,
    ) -> tuple[int, int]:
        """Emit ``seen``'s statement at ``start`` (line ``first``) and those its chain
        has after it there (``_follow``); where they end and the line there."""
        stmt = seen[2] if seen[2].line == first else _at_line(seen[2], first)
        self.out.append(stmt)
        line, pos = first + seen[1], start + len(seen[0])
        self._hits += 1
        links = self.index.links  # type: ignore[union-attr]  # a table: an index
        link = links.get(id(seen))
        if link is not None and link[0] is seen:
            followed = self._follow(link[1], link[2], start, first, data)
            if followed is not None:  # the statements after it came from its chain
                self._chain(run)
                return followed
        run.append((start, pos, line, seen[3], seen, stmt))
        return pos, line

    def _one_match(
        self, start: int, stop: int, first: int, run: list[tuple[Any, ...]]
    ) -> tuple[int, int]:
        """Emit the statement ``_STATEMENT_BODY`` matched (text[start:stop], on line
        ``first``), learn it; where the scan goes on and the line there."""
        text, out = self.text, self.out
        line = first + text.count("\n", start, stop)
        learned = None
        if start < stop - 1:
            stmt = self.decode(text[start : stop - 1]).rstrip()
            out.append(Statement(stmt, first, first + stmt.count("\n"), statement_head(stmt)))
            learned = self._learn_fast(start, stop, line - first, False)
        self._extend(run, (start, stop, line, False, learned, out[-1] if learned else None))
        pos = stop
        if out and out[-1].head.startswith("COPY"):
            end = self._copy_data_end(pos)
            line += text.count("\n", pos, end)
            pos = end
        return pos, line

    def _extend(self, run: list[tuple[Any, ...]], item: tuple[Any, ...]) -> None:
        """Add the statement just emitted to ``run`` if it was learned (``item[4]``: its
        entry), else keep ``run`` as a chain and start anew."""
        if item[4] is not None:
            run.append(item)
        else:
            self._chain(run)

    def _chain(self, run: list[tuple[Any, ...]]) -> None:
        """Keep ``run`` as a chain, if it has statements to follow (``_Chain``)."""
        if len(run) > 1 and self.index is not None:
            self.index.chain(self.text, run)
        run.clear()

    def _follow(
        self, chain: _Chain, j: int, start: int, first: int, data: bool
    ) -> tuple[int, int] | None:
        """Emit the statements after ``chain``'s ``j``-th (just emitted, at ``start`` on
        line ``first``) that the text holds again (not a data statement unless
        ``data``: ``_seen`` would not reuse it); where they end and the line there, or
        ``None`` (not even the next one)."""
        items, ctext, text = chain.items, chain.text, self.text
        base = start - items[j][0]  # where the chain's text would start
        a = items[j][1]  # the chain's text from here on is compared
        at = base + a
        hi = len(items) - 1
        if not data:  # up to its first data statement after ``j``
            hi = next((k - 1 for k in range(j + 1, hi + 1) if items[k][3]), hi)
        if hi <= j:
            return None
        if text.startswith(ctext[a : items[hi][1]], at):
            k = hi
        else:  # the longest run of whole statements that is there again
            lo = j
            while hi - lo > 1:
                mid = (lo + hi) // 2
                if text.startswith(ctext[a : items[mid][1]], at):
                    lo = mid
                else:
                    hi = mid
            k = lo
            if k == j:
                return None
        delta = first - chain.stmts[j].line
        stmts = chain.stmts[j + 1 : k + 1]
        self.out.extend(stmts if not delta else [_at_line(s, s.line + delta) for s in stmts])
        self._hits += k - j
        return base + items[k][1], items[k][2] + delta

    def _data_statement(self, start: int, first: int, data: bool) -> tuple[int, int] | None:
        """Emit the data statement at ``start`` (on line ``first``), keeping only its
        first characters; returns where it ends and the line there (None: not here)."""
        if not data:
            return None
        text = self.text
        stop = _data_end(text, start, self.mysql)
        # ``_data_end`` reads nothing past its ``;``; the regular expression does
        # where a ``/*`` has no ``*/`` before it: it then reads the ``/`` alone (or,
        # with a ``*/`` further on, the comment across the ``;``)
        learn = stop >= 0
        if stop < 0:
            m = _DATA_BODY[self.mysql].match(text, start)
            if m is None:
                return None
            stop = m.end()
            learn = text.find("/*", start, stop) < 0
        # the first characters (<= 4 bytes each, so 4x as many bytes suffice)
        cut = min(stop - 1, start + 4 * _DATA_PREFIX_CHARS)
        prefix = self.decode(text[start:cut])[:_DATA_PREFIX_CHARS]
        line = first + text.count("\n", start, stop)
        self.out.append(Statement(prefix, first, line, statement_head(prefix)))
        self._learned = self._learn_fast(start, stop, line - first, True) if learn else None
        return stop, line

    def _learn_fast(self, start: int, stop: int, nl: int, is_data: bool) -> tuple[Any, ...] | None:
        """Learn the one-match statement just emitted (text[start:stop], ``;``
        included, ``nl`` newlines), unless its cut could depend on other text; its
        entry, if kept."""
        table, text, stmt = self._fast_table, self.text, self.out[-1]
        if table is None or stmt.head.startswith("COPY"):
            return None
        if _ANON_BLOCK_HEAD.match(text, start) or _DEFINER_HEAD.match(text, start):
            return None
        key, raw = _key(text, start), text[start:stop]
        entry = (raw, nl, stmt, is_data, len(key) + len(raw) + len(stmt.text))
        return entry if self.index.learn(table, key, entry) else None  # type: ignore[union-attr]

    def _significant_start(self, pos: int) -> int:
        """The first character at or after ``pos`` that is not blank or comment."""
        text = self.text
        m = _BLANK[self.mysql].match(text, pos)
        pos = m.end() if m is not None else pos
        if text.startswith("/*", pos):  # unterminated: runs to the end
            return len(text)
        return pos

    def _skip_copy_data(self, pos: int) -> int:
        stop = self._copy_data_end(pos)
        if stop != pos:
            self._advance(stop)
        return stop

    def _copy_data_end(self, pos: int) -> int:
        """Past the data of a ``COPY … FROM stdin`` just emitted (else ``pos``)."""
        last = self.out[-1] if self.out else None
        if last is None or not last.head.startswith("COPY") or not _COPY_STDIN.match(last.text):
            return pos
        end = _COPY_END.search(self.text, pos)
        return len(self.text) if end is None else end.end()

    def _emit(self, end: int, resume: int) -> None:
        """Record text[pos:end] as a statement (if not blank) and move to ``resume``."""
        start = self._significant_start(self.pos)
        if start < end:
            body = self.decode(self.text[start:end]).rstrip()
            line = self.line + self.text.count("\n", self.pos, start)
            last_line = line + body.count("\n")
            self.out.append(Statement(body, line, last_line, statement_head(body)))
        self._advance(resume)

    def _advance(self, pos: int) -> None:
        self.line += self.text.count("\n", self.pos, pos)
        self.pos = pos


_HEAD_WORDS = re.compile(r"[A-Za-z_]+(?:\s+[A-Za-z_]+){0,5}")
_DEFINER = re.compile(
    r"DEFINER\s*=\s*(?:`[^`]*`|'[^']*'|\S+?)(?:@(?:`[^`]*`|'[^']*'|\S+?))?\s", re.I
)
_SQL_SECURITY = re.compile(r"SQL\s+SECURITY\s+\w+\s+|ALGORITHM\s*=\s*\w+\s+", re.I)
_HEAD_FILLER = frozenset(
    {"OR", "REPLACE", "ALTER", "TEMP", "TEMPORARY", "UNIQUE", "EDITIONABLE", "NONEDITIONABLE"}
)
_HEAD_FILLER |= {"IF", "NOT", "EXISTS", "GLOBAL", "LOCAL", "CLUSTERED", "NONCLUSTERED"}
_HEAD_FILLER |= {"MATERIALIZED", "RECURSIVE", "FORCE", "ONLINE", "VIRTUAL", "PROCEDURAL"}
_TWO_WORD = frozenset({"CREATE", "ALTER", "DROP"})


def statement_head(text: str) -> str:
    """The statement's verb, plus its object for CREATE/ALTER/DROP (``"CREATE VIEW"``)."""
    m = _HEAD_WORDS.match(text)
    if m is not None and m.group().upper().startswith("CREATE") and "DEFINER" in m.group().upper():
        text = "CREATE " + _SQL_SECURITY.sub("", _DEFINER.sub("", text[6:].lstrip(), count=1))
        m = _HEAD_WORDS.match(text)
    if m is None:
        return ""
    words = m.group().upper().split()
    verb = words[0]
    if verb not in _TWO_WORD:
        return verb
    rest = [w for w in words[1:] if w not in _HEAD_FILLER]
    return f"{verb} {rest[0]}" if rest else verb


def split_statements(
    text: str | bytes, *, mysql: bool = False, index: SplitIndex | None = None
) -> list[Statement]:
    """Split ``text`` into statements (see the module docstring).

    ``text`` may be the file's bytes (UTF-8; invalid sequences in a statement become
    U+FFFD): the fast way, as nothing but the returned statements is decoded.
    ``mysql`` enables ``#`` comments and backslash escapes in strings. Unterminated
    strings or comments run to the end of the text and end up in the last statement
    (which then fails to parse, with its line). ``index``: statements cut before are
    reused from it, and this script's are added (the result is the same without).
    """
    if isinstance(text, bytes):
        splitter = _Splitter(text.decode("latin-1"), mysql=mysql, latin1=True, index=index)
    else:
        splitter = _Splitter(text, mysql=mysql, index=index)
    out = splitter.run()
    if index is not None:
        index.hits += splitter._hits
    return out


def iter_statements(text: str | bytes, *, mysql: bool = False) -> Iterator[Statement]:
    yield from split_statements(text, mysql=mysql)
