"""Which SQL dialect a script is written in: the user's choice, else a guess.

The guess reads the file name first (``mysql-sakila-schema.sql``,
``Chinook_PostgreSql.sql``), then scores markers in the first 64 KB of text
(backquotes and ``ENGINE=`` for MySQL, ``GO`` lines and ``[brackets]`` for SQL
Server, ``VARCHAR2`` and ``/`` lines for Oracle …). The names are sqlglot's
readers; DB2 and CockroachDB have none and are read as PostgreSQL, whose grammar
covers their DDL (identity columns, ``ALTER TABLE … ADD CONSTRAINT``).
"""

from __future__ import annotations

import re

from headrace.errors import ConfigError

# User-facing names -> sqlglot reader.
DIALECTS: dict[str, str] = {
    "mysql": "mysql",
    "mariadb": "mysql",
    "postgres": "postgres",
    "postgresql": "postgres",
    "cockroachdb": "postgres",
    "db2": "postgres",
    "sqlite": "sqlite",
    "tsql": "tsql",
    "sqlserver": "tsql",
    "oracle": "oracle",
    "generic": "",
}

_NAME_HINTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"mysql|maria", re.I), "mysql"),
    (re.compile(r"postgre|pgsql|psql|(?:^|[^a-z])pg(?:[^a-z]|$)|cockroach|db2", re.I), "postgres"),
    (re.compile(r"sqlite", re.I), "sqlite"),
    (re.compile(r"sql[-_ ]?server|mssql|t-?sql", re.I), "tsql"),
    (re.compile(r"oracle|pl[-_]?sql", re.I), "oracle"),
)

_MARKERS: dict[str, tuple[re.Pattern[str], ...]] = {
    "mysql": (
        re.compile(r"`\w+`"),
        re.compile(r"\bENGINE\s*=", re.I),
        re.compile(r"\bAUTO_INCREMENT\b", re.I),
        re.compile(r"^\s*DELIMITER\s", re.I | re.M),
    ),
    "postgres": (
        re.compile(r"::\w+"),
        re.compile(r"\$\$"),
        re.compile(r"\b(?:BIG)?SERIAL\b", re.I),
        re.compile(r"\bnextval\(", re.I),
        re.compile(r"\bcharacter varying\b", re.I),
    ),
    "tsql": (
        re.compile(r"^\s*GO\s*$", re.I | re.M),
        re.compile(r"\[\w+\]"),
        re.compile(r"\bIDENTITY\s*\(", re.I),
        re.compile(r"\bNVARCHAR\b", re.I),
    ),
    "oracle": (
        re.compile(r"\bVARCHAR2\b", re.I),
        re.compile(r"\bNUMBER\s*\(", re.I),
        re.compile(r"^\s*/\s*$", re.M),
    ),
    "sqlite": (re.compile(r"\bAUTOINCREMENT\b", re.I), re.compile(r"\bPRAGMA\b", re.I)),
}

SNIFF_CHARS = 64 * 1024


def resolve_dialect(name: str | None) -> str | None:
    """The sqlglot reader for a user-given dialect name; ``None`` means "detect"."""
    if name is None or name.lower() in ("", "auto"):
        return None
    try:
        return DIALECTS[name.lower()]
    except KeyError:
        known = ", ".join(sorted(DIALECTS))
        raise ConfigError(f"unknown SQL dialect {name!r} (known: auto, {known})") from None


def detect_dialect(path: str, text: str) -> str:
    """Guess the sqlglot reader for a script; ``""`` (generic SQL) when nothing hints."""
    name = path.rsplit("/", 1)[-1]
    for pattern, dialect in _NAME_HINTS:
        if pattern.search(name):
            return dialect
    head = text[:SNIFF_CHARS]
    scores = {d: sum(1 for p in pats if p.search(head)) for d, pats in _MARKERS.items()}
    best = max(scores, key=lambda d: scores[d])
    return best if scores[best] > 0 else ""
