"""Sources: where files come from, and what a source promises about them.

A source only *discovers*: it lists files with the cheap part of their fingerprint
(``FileRef``) and reports what it deliberately did not list (``SkippedFile``). It
never reads file contents, never hashes and never touches the ledger or a store;
deciding what changed is the planner's job.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from headrace.records import FileRef

RootProblemReason = Literal["missing", "not a directory", "unreadable", "empty"]


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """Something found during discovery that is deliberately not ingested.

    ``path`` is absolute (not resolved, like ``FileRef.path``). ``reason`` is a short
    human-readable phrase ("symlink points outside the roots", "symlink loop",
    "special file (fifo)", "permission denied" ...).

    ``unreadable`` is True when the source could not *look*: an unreadable directory
    or a file whose status could not be read. The planner must then keep every stored
    chunk of ``path`` and, when ``path`` is a directory, of every file under
    ``path + os.sep``: absence from the listing proves nothing about such paths.
    When False the path was seen and excluded on purpose, so its old chunks may go.
    """

    path: str
    reason: str
    unreadable: bool = False


@dataclass(frozen=True, slots=True)
class RootProblem:
    """A root that cannot be trusted for deletions.

    ``reason`` is one of ``RootProblemReason``; ``detail`` adds the OS message when
    there is one. The engine turns any problem into ``RootUnavailableError`` unless
    told otherwise, because an unmounted or emptied root would otherwise look like
    "every file was deleted".
    """

    root: str
    reason: RootProblemReason
    detail: str = ""


DiscoveryItem = FileRef | SkippedFile


class Source(Protocol):
    """Lists the files under a set of roots.

    Contract:
    - ``roots`` are absolute paths, as given by the user (made absolute, not
      resolved); every ``FileRef.root`` is one of them.
    - ``discover()`` yields each file to ingest once per path at which it is
      reachable, as a ``FileRef`` with size, mtime and inode from one ``stat``, and
      a ``SkippedFile`` for each thing it saw but will not ingest. The order is
      deterministic for an unchanged tree. It never raises for a problem below a
      root (that becomes a ``SkippedFile`` with ``unreadable=True``), never follows
      a path out of the roots and always terminates, whatever the symlinks.
    - ``discover()`` never reads file contents: hashing happens later, and only
      for files whose stat signature changed.
    - ``check_roots()`` is called before a run that may delete; a non-empty result
      means the listing must not be used to delete anything under those roots.
    """

    @property
    def roots(self) -> Sequence[str]:
        """The absolute roots, in the order given."""
        ...

    def discover(self) -> Iterator[DiscoveryItem]:
        """Yield every file to ingest and every deliberately skipped path."""
        ...

    def check_roots(self) -> list[RootProblem]:
        """Return one problem per root that is missing, unusable or empty."""
        ...
