"""``FolderSource``: discover the files under local directories.

Per directory entry, in order: an entry named ``.git`` is never walked; the entry
is stat'ed once (following symlinks when ``follow_symlinks``); ``exclude``, then
``include`` (files only; empty = everything), then the stacked ignore files
silently drop what is unwanted; what remains but cannot be ingested (a symlink out
of the roots, a loop, a broken symlink, a FIFO/socket/device, a file over
``max_file_bytes``, an unlistable directory) becomes a ``SkippedFile``.

Globs use git's wildmatch rules on the root-relative POSIX path, a directory being
probed as ``"dir/"``. As in git, an excluded directory is not entered (a ``!``
pattern cannot re-include a file below it), and ignore files above a root are not
read. Loops are detected with the ``(st_dev, st_ino)`` of a directory's own
ancestors, not one global visited set: a file reachable through two paths inside
the roots is reported once per path, since its path is its source identity, and
overlapping roots report shared files once per root.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter

from headrace.errors import ConfigError
from headrace.records import FileRef
from headrace.sources.base import DiscoveryItem, RootProblem, SkippedFile
from headrace.sources.globs import GlobRules, compile_rules

_by_name = attrgetter("name")
_SPECIAL_KINDS = (
    (stat.S_ISFIFO, "fifo"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISCHR, "character device"),
    (stat.S_ISBLK, "block device"),
)
_Entries = Iterator[os.DirEntry[str]]


@dataclass(frozen=True, slots=True)
class _Dir:
    """A directory being walked: its path, relpath prefix and inherited state."""

    path: str
    prefix: str  # "" for the root, else "a/b/"
    ancestors: frozenset[tuple[int, int]]
    ignores: tuple[tuple[str, GlobRules], ...]  # (prefix, spec), outer first


_TOP = _Dir("", "", frozenset(), ())


@dataclass(frozen=True, slots=True)
class _Rules:
    """What a walk keeps: the resolved settings of a ``FolderSource``."""

    include: GlobRules | None
    exclude: GlobRules | None
    ignore_files: tuple[str, ...]
    follow_symlinks: bool
    max_file_bytes: int | None


class FolderSource:
    """Discovers files under one or more local directories (see the module docstring).

    ``roots`` are made absolute with ``os.path.abspath`` but not resolved, so paths
    stay as the user gave them. ``include`` / ``exclude`` are gitignore-style globs on
    the root-relative path; ``ignore_files`` are read in every directory, later names
    overriding earlier ones; ``max_file_bytes`` skips larger files.
    """

    # The positional order is the engine's agreed signature; callers pass by keyword.
    def __init__(  # noqa: PLR0917
        self,
        roots: Sequence[str],
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
        ignore_files: Sequence[str] = (".gitignore", ".headraceignore"),
        follow_symlinks: bool = True,
        max_file_bytes: int | None = None,
    ) -> None:
        if isinstance(roots, str) or not roots:
            raise ConfigError("FolderSource needs a non-empty sequence of root paths")
        if max_file_bytes is not None and max_file_bytes < 0:
            raise ConfigError(f"max_file_bytes must be >= 0, got {max_file_bytes}")
        self._roots = tuple(os.path.abspath(root) for root in roots)
        self._rules = _Rules(
            include=compile_rules(include, "include"),
            exclude=compile_rules(exclude, "exclude"),
            ignore_files=tuple(ignore_files),
            follow_symlinks=follow_symlinks,
            max_file_bytes=max_file_bytes,
        )

    @property
    def roots(self) -> Sequence[str]:
        """The absolute roots, in the order given."""
        return self._roots

    def discover(self) -> Iterator[DiscoveryItem]:
        """Yield files and skipped paths root by root, in relpath-component order."""
        real_roots = tuple(os.path.realpath(root) for root in self._roots)
        for root in self._roots:
            yield from _Walk(self._rules, root, real_roots).run()

    def discover_paths(self, paths: Iterable[str]) -> Iterator[DiscoveryItem]:
        """What ``discover()`` yields for these file paths, and nothing else, found by
        descending each path's directories instead of walking the trees: the same
        rules (``.git``, globs, stacked ignore files, symlink checks, loops, size
        limit) decide, and a directory on the way that cannot be listed is reported
        as unreadable, as a walk reports it. A path that is a directory, missing or
        outside the roots yields nothing. Live mode's unit of work: its cost follows
        the paths, not the size of the tree."""
        real_roots = tuple(os.path.realpath(root) for root in self._roots)
        wanted = sorted(set(paths))
        for root in self._roots:
            prefix = root.rstrip(os.sep) + os.sep
            mine = [p for p in wanted if p.startswith(prefix)]
            if mine:
                yield from _Walk(self._rules, root, real_roots).along(mine)

    def check_roots(self) -> list[RootProblem]:
        """Return a problem for each root that is missing, unlistable or has no files."""
        real_roots = tuple(os.path.realpath(root) for root in self._roots)
        problems = (self._root_problem(root, real_roots) for root in self._roots)
        return [problem for problem in problems if problem is not None]

    def _root_problem(self, root: str, real_roots: tuple[str, ...]) -> RootProblem | None:
        try:
            st = os.stat(root)
            if not stat.S_ISDIR(st.st_mode):
                return RootProblem(root, "not a directory")
            with os.scandir(root) as it:
                next(it, None)
        except FileNotFoundError:
            return RootProblem(root, "missing")
        except OSError as exc:
            return RootProblem(root, "unreadable", exc.strerror or str(exc))
        walk = _Walk(self._rules, root, real_roots).run()
        if any(isinstance(item, FileRef) for item in walk):
            return None
        return RootProblem(root, "empty", "no file to index under this root")


class _Walk:
    """One iterative, depth-first walk of one root."""

    def __init__(self, rules: _Rules, root: str, real_roots: tuple[str, ...]) -> None:
        self._rules = rules
        self._root = root
        self._real_roots = real_roots
        self._stack: list[tuple[_Dir, _Entries]] = []

    def run(self) -> Iterator[DiscoveryItem]:
        problem = self._enter_root()
        if problem is not None:
            yield problem
        stack = self._stack
        while stack:
            parent, entries = stack[-1]
            entry = next(entries, None)
            if entry is None:
                stack.pop()
                continue
            item = self._visit(parent, entry)
            if item is not None:
                yield item

    def along(self, paths: Sequence[str]) -> Iterator[DiscoveryItem]:
        """The items of ``run()`` for ``paths`` (files below this root), descending
        only their directories; each directory is entered once per call."""
        dirs: dict[str, _Dir | None] = {}
        reported: set[str] = set()
        top = self._open_root()
        if not isinstance(top, _Dir):
            if top is not None:
                yield top
            return
        for path in paths:
            parts = path[len(self._root.rstrip(os.sep)) + 1 :].split(os.sep)
            parent: _Dir | None = top
            for depth in range(1, len(parts)):
                if parent is None:
                    break
                relpath = "/".join(parts[:depth])
                if relpath not in dirs:
                    entered = self._descend(parent, relpath)
                    if isinstance(entered, SkippedFile):
                        if entered.path not in reported:
                            reported.add(entered.path)
                            yield entered
                        entered = None
                    dirs[relpath] = entered
                parent = dirs[relpath]
            if parent is not None and path not in reported:
                reported.add(path)
                item = self._visit_path(parent, path, "/".join(parts))
                if item is not None and not isinstance(item, _Dir):
                    yield item

    def _open_root(self) -> _Dir | SkippedFile | None:
        st = self._root_stat()
        return st if isinstance(st, SkippedFile) else self._enter_only(_TOP, self._root, "", st)

    def _descend(self, parent: _Dir, relpath: str) -> _Dir | SkippedFile | None:
        """Directory ``relpath`` (below ``parent``) as a walk would enter it; None when
        a walk would not enter it (gone, unwanted, not a directory, ``.git``)."""
        path = os.path.join(self._root, *relpath.split("/"))
        item = self._visit_path(parent, path, relpath)
        return item if isinstance(item, _Dir | SkippedFile) else None

    def _visit_path(self, parent: _Dir, path: str, relpath: str) -> _Dir | DiscoveryItem | None:
        """``_visit`` for one path found by name instead of by listing its directory;
        a directory comes back entered (a ``_Dir``), not pushed on the stack."""
        name = relpath.rsplit("/", 1)[-1]
        if name == ".git":
            return None
        try:
            st = os.stat(path, follow_symlinks=self._rules.follow_symlinks)
        except OSError as exc:
            return _stat_failure(path, lambda: os.path.islink(path), exc)
        if self._unwanted(parent, relpath, stat.S_ISDIR(st.st_mode)):
            return None
        return self._classify_path(parent, path, relpath, st)

    def _classify_path(
        self, parent: _Dir, path: str, relpath: str, st: os.stat_result
    ) -> _Dir | DiscoveryItem | None:
        if os.path.islink(path):
            problem = self._check_link(path, st)
            if problem is not None:
                return problem
        if stat.S_ISDIR(st.st_mode):
            return self._enter_only(parent, path, relpath, st)
        if stat.S_ISREG(st.st_mode):
            return self._file(path, relpath, st)
        return SkippedFile(path, f"special file ({_special_kind(st.st_mode)})")

    def _enter_only(
        self, parent: _Dir, path: str, relpath: str, st: os.stat_result
    ) -> _Dir | SkippedFile | None:
        """``_enter`` without listing: the ignore files are looked up by name, and the
        directory is only opened to prove it can be listed."""
        key = (st.st_dev, st.st_ino)
        if key in parent.ancestors:
            return SkippedFile(path, "symlink loop")
        try:
            with os.scandir(path) as it:
                next(it, None)
            names = self._rules.ignore_files
            found = {n: f for n in names if os.path.isfile(f := os.path.join(path, n))}
            ignores = self._read_ignores(relpath, found)
        except (FileNotFoundError, NotADirectoryError):
            return None  # vanished meanwhile: nothing below it exists
        except OSError as exc:
            return SkippedFile(path, _describe("cannot list directory", exc), unreadable=True)
        return _below(parent, path, relpath, key, ignores)

    def _enter_root(self) -> SkippedFile | None:
        st = self._root_stat()
        return st if isinstance(st, SkippedFile) else self._enter(_TOP, self._root, "", st)

    def _root_stat(self) -> os.stat_result | SkippedFile:
        # Reported as unreadable so that even a caller that skipped check_roots()
        # cannot read a vanished root as "all its files were deleted".
        try:
            st = os.stat(self._root)
        except OSError as exc:
            return SkippedFile(self._root, _describe("root unavailable", exc), unreadable=True)
        if not stat.S_ISDIR(st.st_mode):
            return SkippedFile(self._root, "root is not a directory", unreadable=True)
        return st

    def _visit(self, parent: _Dir, entry: os.DirEntry[str]) -> DiscoveryItem | None:
        if entry.name == ".git":
            return None
        try:
            st = entry.stat(follow_symlinks=self._rules.follow_symlinks)
        except OSError as exc:
            return _stat_failure(entry.path, entry.is_symlink, exc)
        relpath = parent.prefix + entry.name
        if self._unwanted(parent, relpath, stat.S_ISDIR(st.st_mode)):
            return None
        return self._classify(parent, entry, relpath, st)

    def _classify(
        self, parent: _Dir, entry: os.DirEntry[str], relpath: str, st: os.stat_result
    ) -> DiscoveryItem | None:
        if entry.is_symlink():
            problem = self._check_link(entry.path, st)
            if problem is not None:
                return problem
        if stat.S_ISDIR(st.st_mode):
            return self._enter(parent, entry.path, relpath, st)
        if stat.S_ISREG(st.st_mode):
            return self._file(entry.path, relpath, st)
        return SkippedFile(entry.path, f"special file ({_special_kind(st.st_mode)})")

    def _unwanted(self, parent: _Dir, relpath: str, is_dir: bool) -> bool:
        probe = relpath + "/" if is_dir else relpath
        rules = self._rules
        if rules.exclude is not None and rules.exclude.matches(probe):
            return True
        if not is_dir and rules.include is not None and not rules.include.matches(probe):
            return True
        # The deepest ignore file with a matching pattern decides, as in git.
        for prefix, spec in reversed(parent.ignores):
            verdict = spec.verdict(probe[len(prefix) :])
            if verdict is not None:
                return verdict
        return False

    def _check_link(self, path: str, st: os.stat_result) -> SkippedFile | None:
        if stat.S_ISLNK(st.st_mode):
            return SkippedFile(path, "symlink not followed (follow_symlinks is off)")
        target = os.path.realpath(path)
        if any(_within(target, root) for root in self._real_roots):
            return None
        return SkippedFile(path, "symlink points outside the roots")

    def _enter(
        self, parent: _Dir, path: str, relpath: str, st: os.stat_result
    ) -> SkippedFile | None:
        key = (st.st_dev, st.st_ino)
        if key in parent.ancestors:
            return SkippedFile(path, "symlink loop")
        try:
            with os.scandir(path) as it:
                entries = sorted(it, key=_by_name)
            ignores = self._load_ignores(relpath, entries)
        except (FileNotFoundError, NotADirectoryError):
            return None  # vanished during the walk: its files really are gone
        except OSError as exc:
            return SkippedFile(path, _describe("cannot list directory", exc), unreadable=True)
        self._stack.append((_below(parent, path, relpath, key, ignores), iter(entries)))
        return None

    def _load_ignores(self, relpath: str, entries: list[os.DirEntry[str]]) -> GlobRules | None:
        # An unreadable ignore file raises: walking the directory without its rules
        # would index files the user excluded, so the directory counts as unreadable.
        wanted = self._rules.ignore_files
        if not wanted:
            return None
        found = {e.name: e.path for e in entries if e.name in wanted and e.is_file()}
        return self._read_ignores(relpath, found)

    def _read_ignores(self, relpath: str, found: dict[str, str]) -> GlobRules | None:
        """The rules of the ignore files ``found`` (name → path) in one directory."""
        if not found:
            return None
        lines: list[str] = []
        for name in (name for name in self._rules.ignore_files if name in found):
            with open(found[name], encoding="utf-8", errors="replace") as fh:
                lines.extend(fh.read().splitlines())
        return compile_rules(lines, f"ignore file in {relpath or '.'}", lenient=True)

    def _file(self, path: str, relpath: str, st: os.stat_result) -> DiscoveryItem:
        limit = self._rules.max_file_bytes
        if limit is not None and st.st_size > limit:
            return SkippedFile(path, f"larger than max_file_bytes ({st.st_size} > {limit})")
        return FileRef(self._root, relpath, path, st.st_size, st.st_mtime_ns, st.st_ino)


def _stat_failure(path: str, is_link: Callable[[], bool], exc: OSError) -> SkippedFile | None:
    if exc.errno == errno.ELOOP:
        return SkippedFile(path, "symlink loop")
    if isinstance(exc, FileNotFoundError):
        # A symlink whose target is missing is broken; anything else vanished
        # between listing and stat and is simply gone.
        return SkippedFile(path, "broken symlink") if is_link() else None
    return SkippedFile(path, _describe("cannot stat", exc), unreadable=True)


def _below(
    parent: _Dir, path: str, relpath: str, key: tuple[int, int], ignores: GlobRules | None
) -> _Dir:
    """Directory ``path`` entered below ``parent``, with its own ignore rules."""
    prefix = relpath + "/" if relpath else ""
    rules = (*parent.ignores, (prefix, ignores)) if ignores else parent.ignores
    return _Dir(path, prefix, parent.ancestors | {key}, rules)


def _special_kind(mode: int) -> str:
    return next((name for test, name in _SPECIAL_KINDS if test(mode)), "unknown type")


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root if root.endswith(os.sep) else root + os.sep)


def _describe(what: str, exc: OSError) -> str:
    return f"{what}: {exc.strerror or exc}"
