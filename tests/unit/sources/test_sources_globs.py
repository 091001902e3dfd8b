"""GlobRules: the fast prefilter never changes pathspec's verdict."""

from __future__ import annotations

import pathspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.errors import ConfigError
from headrace.sources.globs import GlobRules, compile_rules

SEGMENTS = st.sampled_from(
    ["a", "b", "build", "docs", "x.log", "keep.log", "y.md", ".env", "c d", "a|b"]
)
PATHS = st.lists(SEGMENTS, min_size=1, max_size=4).map("/".join)
PATTERNS = st.sampled_from(
    [
        "*.log", "!keep.log", "build/", "/docs", "docs/**/*.md", "a/b", "**/b/", "!a/",
        "*.md", "!*.md", "#comment", "", "b*", "[ab]/x.log", "a/**", "?.md", ".env",
        "c\\ d", "a|b", "**/d*/**", "/a/*.log",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(patterns=st.lists(PATTERNS, max_size=8), path=PATHS, is_dir=st.booleans())
def test_verdict_equals_pathspec(patterns: list[str], path: str, is_dir: bool) -> None:
    probe = path + "/" if is_dir else path
    expected = pathspec.GitIgnoreSpec.from_lines(patterns).check_file(probe).include
    assert GlobRules(patterns).verdict(probe) is expected


def test_directory_only_pattern_needs_the_trailing_slash() -> None:
    rules = GlobRules(["build/"])
    assert rules.matches("build/")
    assert rules.matches("src/build/")
    assert not rules.matches("build")


def test_negation_is_a_false_verdict() -> None:
    rules = GlobRules(["*.log", "!keep.log"])
    assert rules.verdict("a.log") is True
    assert rules.verdict("keep.log") is False
    assert rules.verdict("a.txt") is None


def test_no_patterns_compile_to_none() -> None:
    assert compile_rules([], "include") is None


def test_invalid_pattern_raises_unless_lenient() -> None:
    with pytest.raises(ConfigError, match="invalid exclude pattern"):
        compile_rules(["ok", "!"], "exclude")
    lenient = compile_rules(["!", "*.log"], "ignore file", lenient=True)
    assert lenient is not None
    assert lenient.matches("a.log")
    assert compile_rules(["!"], "ignore file", lenient=True) is None
