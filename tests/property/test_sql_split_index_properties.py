"""The splitter's index (``SplitIndex``), Hypothesis: a script split with an index
warmed by other scripts — random ones, and edited copies of the script itself — is
cut exactly as without one (statements, lines, heads)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.parsers.sql import split
from headrace.parsers.sql.split import SplitIndex, Statement, split_statements

_WORDS = (
    "GO go / DELIMITER·// delimiter·$$ DELIMITER·; DELIMITER·x DELIMITER·egin BEGIN begin"
    " End END END·IF CASE xbegin é $$ $tag$ $x $ ' \" ` [ ] -- # /* */ ; ;; // x egin"
    " CREATE·TRIGGER·t create·procedure·p CREATE·TABLE·x·(a·int); CREATE·DEFINER=u"
    " INSERT·INTO·t·VALUES·('a;b'); INSERT·INTO·t REPLACE DECLARE COPY·x·FROM·stdin;"
    " \\. SELECT·1; SELECT·'it''s'; ÿ a \\ ( )"
)
TOKENS = st.sampled_from(
    [*(w.replace("·", " ") for w in _WORDS.split(" ")), "\n", "\n", " ", "\t", "\nGO\n", "\n/\n"]
)
LINE = st.tuples(st.lists(TOKENS, max_size=6), st.sampled_from(["", " "])).map(
    lambda t: t[1].join(t[0])
)
LINES = st.lists(LINE, min_size=1, max_size=14)


def cut(stmts: list[Statement]) -> list[tuple[str, int, int, str]]:
    return [(s.text, s.line, s.end_line, s.head) for s in stmts]


@st.composite
def edited(draw: st.DrawFn, lines: list[str]) -> list[str]:
    """``lines`` with some lines dropped, replaced or added, or repeated."""
    out = list(lines)
    for _ in range(draw(st.integers(0, 3))):
        op = draw(st.sampled_from(["drop", "add", "replace", "repeat", "cut"]))
        at = draw(st.integers(0, len(out)))
        if op == "drop" and out:
            del out[min(at, len(out) - 1)]
        elif op == "add":
            out.insert(at, draw(LINE))
        elif op == "replace" and out:
            out[min(at, len(out) - 1)] = draw(LINE)
        elif op == "repeat":
            out = out[:at] + out + out[at:]
        elif op == "cut":
            out = out[:at]
    return out


def check(target: str, learned: list[str], mysql: bool, as_bytes: bool) -> None:
    index = SplitIndex()
    conv = (lambda t: t.encode()) if as_bytes else (lambda t: t)
    for text in learned:
        split_statements(conv(text), mysql=mysql, index=index)
    cold = cut(split_statements(conv(target), mysql=mysql))
    assert cut(split_statements(conv(target), mysql=mysql, index=index)) == cold
    assert cut(split_statements(conv(target), mysql=mysql, index=index)) == cold  # warm by itself


@settings(max_examples=600, deadline=None)
@given(st.data(), LINES, st.booleans(), st.booleans())
def test_an_edited_script_cuts_alike_with_the_index_of_the_original(
    data: st.DataObject, lines: list[str], mysql: bool, as_bytes: bool
) -> None:
    original = "\n".join(lines)
    target = "\n".join(data.draw(edited(lines)))
    check(target, [original], mysql, as_bytes)


@settings(max_examples=300, deadline=None)
@given(LINES, st.lists(LINES, max_size=3), st.booleans(), st.booleans())
def test_a_script_cuts_alike_with_the_index_of_unrelated_scripts(
    lines: list[str], others: list[list[str]], mysql: bool, as_bytes: bool
) -> None:
    check("\n".join(lines), ["\n".join(o) for o in others], mysql, as_bytes)


@settings(max_examples=300, deadline=None)
@given(st.lists(LINES, min_size=2, max_size=4), st.booleans())
def test_pieces_of_scripts_joined_cut_alike(parts: list[list[str]], mysql: bool) -> None:
    """The index learned from each piece; the target is the pieces joined, so every
    learned statement meets other text after (and before) it."""
    pieces = ["\n".join(p) for p in parts]
    for joiner in ("", "\n", ";"):
        check(joiner.join(pieces), pieces, mysql, True)


@settings(max_examples=400, deadline=None)
@given(LINES)
def test_the_separator_line_search_is_the_multiline_search(lines: list[str]) -> None:
    for text in ("\n".join(lines), "\r\n".join(lines), "\n".join(lines).encode().decode("latin-1")):
        expected = split._SEP_LINE.search(text) is not None
        assert split._Splitter(text, mysql=False).separator_lines is expected


_BODY_WORDS = "a ' '' \" ` \\ \\' -- /* */ # ; - / $ $a$ [ ] é BEGIN END * ( )"
BODY_TOKENS = st.sampled_from(
    [*_BODY_WORDS.split(" "), " ", "\n", "\nGO\n", "\n/\n", "\nDELIMITER x\n"]
)
BODY = st.lists(BODY_TOKENS, max_size=12).map("".join)


@settings(max_examples=600, deadline=None)
@given(
    st.sampled_from(["INSERT INTO t VALUES (", "CREATE TABLE t (", "REPLACE t ", "SELECT "]),
    BODY,
    st.lists(BODY, min_size=1, max_size=3),
    st.booleans(),
)
def test_one_match_statements_meet_other_continuations(
    head: str, body: str, tails: list[str], mysql: bool
) -> None:
    """A statement learned from one script, then met followed by other text: the
    one-match paths (``_data_end``, the data and statement regular expressions) must
    not have read past the ``;`` they stopped at."""
    learned = [head + body + tail for tail in tails[:1]]
    for tail in tails:
        check(head + body + tail, learned, mysql, True)
        check("SELECT 1;\n" + head + body + tail, learned, mysql, True)
