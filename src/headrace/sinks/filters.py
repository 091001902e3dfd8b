"""Search filters over chunk metadata, shared by the SQLite search and the Qdrant sink.

A filter narrows a search to chunks whose metadata match *every* given field:
``project``, ``session`` (equal), ``tool``, ``concept`` (a member of the chunk's
``tools`` / ``concepts`` list), ``file`` (a path: a member of ``files``; a bare file
name: a member of ``file_names``), and ``since`` / ``until`` (epoch seconds,
inclusive, on ``ts``: the start of the turn). Both stores apply the same rule:
SQLite as a ``WHERE`` over the JSON metadata column, Qdrant as payload conditions.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, fields
from datetime import UTC, datetime

from headrace.errors import ConfigError

_RELATIVE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Conditions a hit must meet; ``None`` means "any"."""

    project: str | None = None
    session: str | None = None
    tool: str | None = None
    file: str | None = None
    concept: str | None = None
    since: float | None = None
    until: float | None = None

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    @property
    def file_field(self) -> str:
        """``files`` for a path (with a ``/``), ``file_names`` for a bare name."""
        return "files" if self.file and "/" in self.file else "file_names"

    def sql(self, column: str = "c.metadata") -> tuple[str, list[object]]:
        """A ``WHERE`` fragment (``"1"`` when empty) and its parameters."""
        clauses: list[str] = []
        params: list[object] = []
        for key in ("project", "session"):
            value = getattr(self, key)
            if value is not None:
                clauses.append(f"json_extract({column}, '$.{key}') = ?")
                params.append(value)
        for key, value in (
            ("tools", self.tool),
            ("concepts", self.concept),
            (self.file_field, self.file),
        ):
            if value is not None:
                clauses.append(
                    f"EXISTS (SELECT 1 FROM json_each({column}, '$.{key}') WHERE value = ?)"
                )
                params.append(value)
        if self.since is not None:
            clauses.append(f"json_extract({column}, '$.ts') >= ?")
            params.append(self.since)
        if self.until is not None:
            clauses.append(f"json_extract({column}, '$.ts') <= ?")
            params.append(self.until)
        return (" AND ".join(clauses) or "1"), params


def parse_time(value: str | None, *, now: float | None = None) -> float | None:
    """Epoch seconds from ``2026-02-10``, ``2026-02-10T21:11:56Z`` or ``7d`` / ``12h`` ago.

    A date or time without an offset is taken as UTC.
    """
    if value is None or not value.strip():
        return None
    text = value.strip()
    relative = _RELATIVE.match(text)
    if relative:
        amount, unit = float(relative.group(1)), relative.group(2)
        return (time.time() if now is None else now) - amount * _UNIT_SECONDS[unit]
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise ConfigError(
            f"bad time {value!r}: use an ISO date or time (2026-02-10, 2026-02-10T21:00Z)"
            " or an age like 7d, 12h, 30m"
        ) from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


__all__ = ["SearchFilters", "parse_time"]
