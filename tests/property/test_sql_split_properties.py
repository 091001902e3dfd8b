"""Invariants of the SQL statement splitter (Hypothesis): whatever strings, quoted names
and comments hold, the statements come back whole, in order, with their first line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.parsers.sql import split
from headrace.parsers.sql.split import split_statements

TRICKY = st.sampled_from([";", "--", "/*", "*/", "'", "''", "BEGIN", "END", "\n", "$$", " "])
WORD = st.text(alphabet="abcxyz_", min_size=1, max_size=6)
STRING_BODY = st.lists(st.one_of(WORD, TRICKY), max_size=6).map(
    lambda parts: "".join(parts).replace("'", "''")
)


@st.composite
def statement(draw: st.DrawFn) -> str:
    name = draw(WORD)
    default = draw(STRING_BODY)
    quoted = draw(st.text(alphabet="ab; -", min_size=1, max_size=5))
    if draw(st.booleans()):  # data statements take the regex fast path
        return f"INSERT INTO {name} VALUES ('{default}', 1), ('{quoted}', 2)"
    return f"CREATE TABLE {name} (a TEXT DEFAULT '{default}', \"{quoted}\" INT)"


@st.composite
def gap(draw: st.DrawFn) -> str:
    comment = draw(st.lists(st.one_of(WORD, TRICKY), max_size=4).map("".join))
    kind = draw(st.sampled_from(["line", "block", "blank"]))
    if kind == "line":
        return "\n-- " + comment.replace("\n", " ") + "\n"
    if kind == "block":
        return "\n/* " + comment.replace("*", "") + " */\n"  # no early "*/"
    return "\n" * draw(st.integers(1, 3))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(gap(), statement()), min_size=1, max_size=6))
def test_statements_survive_strings_and_comments(parts: list[tuple[str, str]]) -> None:
    script = ""
    expected: list[tuple[str, int]] = []
    for lead, stmt in parts:
        script += lead
        expected.append((stmt, script.count("\n") + 1))
        script += stmt + ";"
    got = [(s.text, s.line) for s in split_statements(script)]
    assert got == expected


DATA_TOKENS = st.sampled_from(
    ["a", " ", "'", "''", '"', "`", "\\", "\\'", "--", "/*", "*/", "#", ";", "\n", "-", "/", "é"]
)


@settings(max_examples=400, deadline=None)
@given(st.lists(DATA_TOKENS, max_size=30).map("".join), st.booleans())
def test_the_data_statement_skip_agrees_with_the_regex(body: str, mysql: bool) -> None:
    """``_data_end`` (find/count jumps) ends a data statement where the one-match
    regular expression does, or leaves it to it (-1)."""
    text = f"INSERT INTO t VALUES ({body});\nCREATE TABLE u (a INT);"
    got = split._data_end(text, 0, mysql)
    m = split._DATA_BODY[mysql].match(text, 0)
    assert got == -1 or (m is not None and got == m.end())


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(gap(), statement()), min_size=1, max_size=6), st.booleans())
def test_bytes_and_text_split_alike(parts: list[tuple[str, str]], mysql: bool) -> None:
    script = "".join(lead + stmt + ";" for lead, stmt in parts) + "\n-- é ü\n"
    as_text = [(s.text, s.line, s.end_line, s.head) for s in split_statements(script, mysql=mysql)]
    as_bytes = split_statements(script.encode(), mysql=mysql)
    assert [(s.text, s.line, s.end_line, s.head) for s in as_bytes] == as_text


_SCAN_WORDS = (
    "GO go Go / DELIMITER·// delimiter·$$ DELIMITER·; Delimiter·GIN BEGIN begin End"
    " END·IF CASE xbegin begin_ é Ébegin $$ $tag$ $Tag$ ' \" ` [ ] -- # /* */ ;"
    " CREATE·TRIGGER·t create·procedure·p CREATE·TABLE·x·(a·int) INSERT·INTO·t"
    " DECLARE COPY·x·FROM·stdin \\. // ÿ a \\"
)
SCAN_TOKENS = st.sampled_from(
    [
        *(w.replace("·", " ") for w in _SCAN_WORDS.split(" ")),
        "\n",
        "\n",
        " ",
        "\t",
        "\r\n",
        "\nGO\n",
        "\t/",
    ]
)


SCAN_LINE = st.tuples(st.lists(SCAN_TOKENS, max_size=6), st.sampled_from(["", " "])).map(
    lambda t: t[1].join(t[0])
)


@settings(max_examples=400, deadline=None)
@given(st.lists(SCAN_LINE, max_size=12).map("\n".join), st.booleans())
def test_the_lower_cased_scanner_agrees_with_the_re_i_scanner(text: str, mysql: bool) -> None:
    """Routine bodies, T-SQL batches and DELIMITER scripts are scanned with
    ``_lower_scanner`` over a lower-cased copy; ``_scanner`` (``re.I``, still used for
    text with characters beyond Latin-1) cuts every script identically."""
    for script in (text, text.encode().decode("latin-1")):  # str and the bytes path's view
        got = []
        for lowerable in (False, True):
            splitter = split._Splitter(script, mysql=mysql)
            splitter._lowerable = lowerable
            got.append([(s.text, s.line, s.end_line, s.head) for s in splitter.run()])
        assert got[0] == got[1]


@settings(max_examples=500, deadline=None)
@given(
    st.text(alphabet="-/*ab", max_size=60),
    st.sampled_from(["--", "/*", "-", "'"]),
    st.integers(0, 62),
    st.integers(0, 63),
)
def test_find_is_str_find(text: str, needle: str, start: int, end: int) -> None:
    """``_find`` (two-character needles found by hopping on one character, then
    ``str.find`` after ``_HOPS`` hops) returns what ``str.find`` does."""
    assert split._find(text, needle, start, end) == text.find(needle, start, end)
