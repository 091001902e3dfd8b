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
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache

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


class _Splitter:
    def __init__(self, text: str, *, mysql: bool, latin1: bool = False) -> None:
        self.text = text
        self.mysql = mysql
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

    @property
    def separator_lines(self) -> bool:
        """Whether the script has ``/`` or ``GO`` lines (routines end only there).
        Looked up only when a routine or block is met: most data scripts have none."""
        if self._separator_lines is None:
            self._separator_lines = _SEP_LINE.search(self.text) is not None
        return self._separator_lines

    def run(self) -> list[Statement]:
        text = self.text
        i = self._fast(self.pos)
        block = self._block_mode()
        depth = 0
        while True:
            found = self._search(i, block)
            if found is None:
                self._emit(len(text), len(text))
                return self.out
            kind, start, end = found
            if kind in _QUOTES:
                i = self._skip_string(text[start], end)
            elif kind in ("lc", "lc2"):
                nl = text.find("\n", end)
                i = len(text) if nl < 0 else nl
            elif kind == "bc":
                close = text.find("*/", end)
                i = len(text) if close < 0 else close + 2
            elif kind == "dollar":
                tag = text[start:end]  # as written: tags are case-sensitive
                close = text.find(tag, end)
                i = len(text) if close < 0 else close + len(tag)
            elif kind == "sep":
                self._emit(start, end)
                i = self._fast(self.pos, data=False)
                block, depth = self._block_mode(), 0
            elif kind == "delim":
                self._emit(start, end)
                self.delimiter = self._dval
                i = self._fast(self.pos, data=False)
                block, depth = self._block_mode(), 0
            elif kind == "term":
                if block and self.delimiter == ";" and (depth > 0 or self.separator_lines):
                    i = end
                    continue
                self._emit(start, end)
                i = self._fast(self._skip_copy_data(self.pos))
                block, depth = self._block_mode(), 0
            else:  # BEGIN / END / CASE: only counted inside routine bodies
                i = end
                if block:
                    depth += self._depth_step(_WORDS.get(kind) or text[start:end].upper(), i)

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
        return self._block_at(self._significant_start(self.pos))

    def _block_at(self, start: int) -> bool:
        if _ROUTINE_HEAD.match(self.text, start):
            return True
        return _ANON_BLOCK_HEAD.match(self.text, start) is not None and self.separator_lines

    def _fast(self, pos: int, data: bool = True) -> int:
        """Emit the statements from ``pos`` (= ``self.pos``) on, one regex match each
        (INSERT/REPLACE consumed whole by one match, keeping only their first
        characters, if ``data``);
        returns where the general scanner resumes: at a routine body, a separator or
        ``DELIMITER`` line, or a statement the one-match pattern cannot read (dollar
        quotes, unterminated). Inlined: this loop is most of a cold ingest's split."""
        if self.delimiter != ";":
            return pos
        text, out, n, decode = self.text, self.out, len(self.text), self.decode
        body, data_body = _STATEMENT_BODY[self.mysql], _DATA_BODY[self.mysql]
        blank = _BLANK[self.mysql]
        line = self.line  # the line at pos
        while True:
            start = blank.match(text, pos).end()  # type: ignore[union-attr]  # always matches
            if text.startswith("/*", start):  # unterminated comment: the rest
                start = n
            if start >= n or _SPECIAL_START.match(text, start) or self._block_at(start):
                break
            if _DATA_HEAD.match(text, start):
                if not data:
                    break
                stop = _data_end(text, start, self.mysql)
                if stop < 0:
                    m = data_body.match(text, start)
                    if m is None:
                        break
                    stop = m.end()
                first = line + text.count("\n", pos, start)
                # the first characters (<= 4 bytes each, so 4x as many bytes suffice)
                cut = min(stop - 1, start + 4 * _DATA_PREFIX_CHARS)
                prefix = decode(text[start:cut])[:_DATA_PREFIX_CHARS]
                line = first + text.count("\n", start, stop)
                out.append(Statement(prefix, first, line, statement_head(prefix)))
                pos = stop
                continue
            m = body.match(text, start)
            if m is None:
                break
            end = m.end() - 1
            first = line + text.count("\n", pos, start)
            if start < end:
                stmt = decode(text[start:end]).rstrip()
                out.append(Statement(stmt, first, first + stmt.count("\n"), statement_head(stmt)))
            line = first + text.count("\n", start, m.end())
            pos = m.end()
            last = out[-1] if out else None
            if last is not None and last.head.startswith("COPY") and _COPY_STDIN.match(last.text):
                copy_end = _COPY_END.search(text, pos)  # COPY … FROM stdin: skip its data
                stop = n if copy_end is None else copy_end.end()
                line += text.count("\n", pos, stop)
                pos = stop
        self.pos, self.line = pos, line
        return pos

    def _significant_start(self, pos: int) -> int:
        """The first character at or after ``pos`` that is not blank or comment."""
        text = self.text
        m = _BLANK[self.mysql].match(text, pos)
        pos = m.end() if m is not None else pos
        if text.startswith("/*", pos):  # unterminated: runs to the end
            return len(text)
        return pos

    def _skip_copy_data(self, pos: int) -> int:
        last = self.out[-1] if self.out else None
        if last is None or not last.head.startswith("COPY") or not _COPY_STDIN.match(last.text):
            return pos
        end = _COPY_END.search(self.text, pos)
        stop = len(self.text) if end is None else end.end()
        self._advance(stop)
        return stop

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


def split_statements(text: str | bytes, *, mysql: bool = False) -> list[Statement]:
    """Split ``text`` into statements (see the module docstring).

    ``text`` may be the file's bytes (UTF-8; invalid sequences in a statement become
    U+FFFD): the fast way, as nothing but the returned statements is decoded.
    ``mysql`` enables ``#`` comments and backslash escapes in strings. Unterminated
    strings or comments run to the end of the text and end up in the last statement
    (which then fails to parse, with its line).
    """
    if isinstance(text, bytes):
        return _Splitter(text.decode("latin-1"), mysql=mysql, latin1=True).run()
    return _Splitter(text, mysql=mysql).run()


def iter_statements(text: str | bytes, *, mysql: bool = False) -> Iterator[Statement]:
    yield from split_statements(text, mysql=mysql)
