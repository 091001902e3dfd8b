"""Gitignore-style glob rules with a fast "no pattern matches" path.

``pathspec.GitIgnoreSpec`` tries its patterns one by one in Python (about 0.7 µs
per pattern per path); a 50-line ``.gitignore`` would then cost more than the
walk itself. Almost every path of a tree matches none of the patterns, so
``GlobRules`` first runs one combined regular expression, compiled in C, and asks
the spec for its verdict (last match wins, negation, directory-only patterns)
only when that finds something. The combined expression accepts a superset of
what the patterns accept, so the verdict is always the spec's own.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pathspec
from pathspec.pattern import RegexPattern

from headrace.errors import ConfigError

_NAMED_GROUP = re.compile(r"\(\?P<[A-Za-z_][A-Za-z0-9_]*>")
_DEFAULT_FLAGS = re.compile("").flags
_FLOATING = "^(?:.+/)?"


class GlobRules:
    """Compiled gitignore-style patterns, matched against POSIX relative paths.

    A directory is probed with a trailing slash (``"build/"``), which is what makes
    directory-only patterns (``build/``) match it and not a file named ``build``.
    """

    __slots__ = ("_only_positive", "_prefilter", "_spec")

    def __init__(self, patterns: Sequence[str], what: str = "glob") -> None:
        """Compile ``patterns``; an invalid one raises ``ConfigError`` naming ``what``."""
        try:
            self._spec = pathspec.GitIgnoreSpec.from_lines(patterns)
        except ValueError as exc:  # GitWildMatchPatternError subclasses ValueError
            raise ConfigError(f"invalid {what} pattern: {exc}") from exc
        self._prefilter = _combine(self._spec.patterns)
        # Without "!" patterns any match means "matched": the prefilter's answer is
        # the verdict and the per-pattern loop is never needed.
        self._only_positive = all(p.include is not False for p in self._spec.patterns)

    def verdict(self, path: str) -> bool | None:
        """True: ignored/matched; False: re-included by a ``!`` pattern; None: no match."""
        prefilter = self._prefilter
        if prefilter is not None:
            if prefilter.match(path) is None:
                return None
            if self._only_positive:
                return True
        result: bool | None = self._spec.check_file(path).include
        return result

    def matches(self, path: str) -> bool:
        """Whether the last pattern that matches ``path`` is a positive one."""
        return self.verdict(path) is True


def compile_rules(patterns: Sequence[str], what: str, *, lenient: bool = False) -> GlobRules | None:
    """Return ``GlobRules`` for ``patterns``, or None when there are none.

    With ``lenient`` an invalid pattern is dropped instead of raising ``ConfigError``,
    as git does with a bad line of a ``.gitignore``: a file in the tree must not
    be able to stop discovery.
    """
    if not patterns:
        return None
    try:
        return GlobRules(patterns, what)
    except ConfigError:
        if not lenient:
            raise
    valid = [line for line in patterns if _is_valid(line)]
    return GlobRules(valid, what) if valid else None


def _is_valid(line: str) -> bool:
    try:
        pathspec.GitIgnoreSpec.from_lines([line])
    except ValueError:
        return False
    return True


def _combine(patterns: Sequence[pathspec.Pattern]) -> re.Pattern[str] | None:
    """One expression, used with ``match``, that matches whenever a pattern does.

    Most gitignore patterns compile to ``^(?:.+/)?<name>``; sharing that prefix
    makes the expression about four times faster than a plain alternation.
    """
    floating: list[str] = []
    anchored: list[str] = []
    for pattern in patterns:
        if pattern.include is None:
            continue  # comments and blank lines never match
        source = _regex_source(pattern)
        if source is None:
            return None  # unknown shape: no prefilter, every path asks the spec
        if source.startswith(_FLOATING):
            floating.append(f"(?:{source[len(_FLOATING) :]})")
        else:  # unanchored sources are searched for, as pathspec does
            anchored.append(f"(?:{source[1:]})" if source[:1] == "^" else f"(?s:.*?)(?:{source})")
    if floating:
        anchored.append(f"(?:.+/)?(?:{'|'.join(floating)})")
    try:
        return re.compile(f"^(?:{'|'.join(anchored)})" if anchored else r"(?!)")
    except re.error:
        return None


def _regex_source(pattern: pathspec.Pattern) -> str | None:
    # Named groups would clash once several patterns share one expression; the
    # prefilter only needs to know *whether* something matches, never which group.
    regex = pattern.regex if isinstance(pattern, RegexPattern) else None
    if regex is None or not isinstance(regex.pattern, str) or regex.flags != _DEFAULT_FLAGS:
        return None
    return _NAMED_GROUP.sub("(?:", regex.pattern)
