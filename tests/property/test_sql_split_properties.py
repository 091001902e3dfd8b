"""Invariants of the SQL statement splitter (Hypothesis): whatever strings, quoted names
and comments hold, the statements come back whole, in order, with their first line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

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
