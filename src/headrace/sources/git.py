"""A git repository as a source: trees at a commit, diffs between commits, blob reads.

``git`` itself does everything (fetching from a remote included), through the
plumbing commands whose output is stable: ``rev-parse``, ``ls-tree``,
``diff-tree --raw -z -M`` and one long-lived ``cat-file --batch`` per sync, so a
thousand blobs cost one process, not a thousand.

A *location* is a local repository (work tree or bare) or a URL (anything with
``://``, or ``user@host:path``). A URL is mirrored into a bare clone under the
cache directory (``git clone --mirror``, later ``git fetch --prune``); failures
to reach it are ``TransientError`` (the caller retries with backoff).

Content identity is the git blob id: a file whose blob id is unchanged is
unchanged, whatever its mtime, so resuming or reconciling never re-reads it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

from headrace.errors import InputError, RootUnavailableError, TransientError
from headrace.sources.globs import compile_rules

ChangeKind = Literal["add", "modify", "delete", "rename"]
_SCP_LIKE = re.compile(r"^[\w.-]+@[\w.-]+:")
_GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "LC_ALL": "C"}


@dataclass(frozen=True, slots=True)
class Change:
    """One file changed between two commits (or against the stored state).

    ``blob`` is the new blob id (``None`` for a deletion); ``old_path`` is set for
    a rename, ``old_blob`` when known.
    """

    kind: ChangeKind
    path: str
    blob: str | None
    old_path: str | None = None
    old_blob: str | None = None


def is_url(location: str) -> bool:
    return "://" in location or bool(_SCP_LIKE.match(location))


class GitRepo:
    """Read-only access to one repository through the ``git`` command."""

    def __init__(self, location: str, *, cache_dir: Path | None = None) -> None:
        self.location = location
        if is_url(location):
            digest = hashlib.blake2b(location.encode(), digest_size=8).hexdigest()
            base = cache_dir or Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
            self.git_dir = Path(base) / "headrace" / "git" / f"{digest}.git"
            self.source_id = location
        else:
            path = Path(location).expanduser().resolve()
            if not path.is_dir():
                raise RootUnavailableError(f"{location}: not a directory")
            self.git_dir = path
            self.source_id = str(path)

    # -- fetching ----------------------------------------------------------------------

    def fetch(self) -> None:
        """Mirror a remote (clone once, then fetch); a no-op for a local repository."""
        if not is_url(self.location):
            self._git("rev-parse", "--git-dir")  # fails clearly if not a repository
            return
        if (self.git_dir / "HEAD").exists():
            self._git("fetch", "--prune", "--quiet", "origin", transient=True)
            return
        self.git_dir.parent.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_clones(self.git_dir)
        tmp = self.git_dir.with_name(self.git_dir.name + f".tmp{os.getpid()}")
        _run(["git", "clone", "--mirror", "--quiet", self.location, str(tmp)], transient=True)
        os.replace(tmp, self.git_dir)  # atomic: a half clone is never taken for a mirror

    # -- commits -----------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """The commit id ``ref`` names (branch, tag, ``HEAD``, sha)."""
        out = self._git(
            "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", check=False
        )
        if not out.strip():
            raise RootUnavailableError(f"{self.location}: no commit named {ref!r}")
        return out.strip()

    def has_commit(self, sha: str) -> bool:
        return self._returncode("cat-file", "-e", f"{sha}^{{commit}}") == 0

    def is_ancestor(self, old: str, new: str) -> bool:
        """True when ``old`` is in ``new``'s history (no rewrite in between)."""
        return self._returncode("merge-base", "--is-ancestor", old, new) == 0

    # -- trees and diffs ---------------------------------------------------------------

    def tree(self, commit: str) -> dict[str, str]:
        """Every regular file at ``commit``: path → blob id (symlinks, submodules left out)."""
        out = self._git("ls-tree", "-r", "-z", "--full-tree", commit)
        files: dict[str, str] = {}
        for entry in out.split("\0"):
            if not entry:
                continue
            meta, path = entry.split("\t", 1)
            mode, kind, sha = meta.split(" ")
            if kind == "blob" and mode in ("100644", "100755"):
                files[path] = sha
        return files

    def diff(self, old: str, new: str) -> list[Change]:
        """Files added, modified, deleted and renamed from ``old`` to ``new``."""
        out = self._git("diff-tree", "-r", "-z", "-M", "--raw", "--no-commit-id", old, new)
        fields = out.split("\0")
        changes: list[Change] = []
        i = 0
        while i < len(fields) - 1:
            meta = fields[i]
            if not meta.startswith(":"):
                i += 1
                continue
            _, new_mode, old_sha, new_sha, status = meta[1:].split(" ")
            path = fields[i + 1]
            i += 2
            regular = new_mode in ("100644", "100755")
            if status.startswith("R"):
                new_path = fields[i]
                i += 1
                changes.append(
                    Change("rename", new_path, new_sha if regular else None, path, old_sha)
                )
            elif status == "D" or not regular:
                changes.append(Change("delete", path, None, old_blob=old_sha))
            elif status == "A":
                changes.append(Change("add", path, new_sha))
            else:  # M, T (type change), C (copy, never asked for)
                changes.append(Change("modify", path, new_sha, old_blob=old_sha))
        return changes

    # -- blobs -------------------------------------------------------------------------

    def blobs(self) -> BlobReader:
        return BlobReader(self.git_dir)

    # -- plumbing ----------------------------------------------------------------------

    def _git(self, *args: str, check: bool = True, transient: bool = False) -> str:
        return _run(
            ["git", f"--git-dir={self._dot_git()}", *args], check=check, transient=transient
        )

    def _returncode(self, *args: str) -> int:
        proc = subprocess.run(
            ["git", f"--git-dir={self._dot_git()}", *args],
            capture_output=True,
            env={**os.environ, **_GIT_ENV},
            check=False,
        )
        return proc.returncode

    def _dot_git(self) -> Path:
        dot = self.git_dir / ".git"
        return dot if dot.exists() else self.git_dir


class BlobReader:
    """``git cat-file --batch``: read many blobs through one process. Use as a context.

    A failure of the pipe (the process died, a short read) is ``TransientError`` and
    marks the process broken: the next ``read`` starts a new one, so a retry works.
    """

    def __init__(self, git_dir: Path) -> None:
        dot = git_dir / ".git"
        self._cmd = ["git", f"--git-dir={dot if dot.exists() else git_dir}", "cat-file", "--batch"]
        self._proc = self._start()
        self._broken = False

    def _start(self) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                self._cmd,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                env={**os.environ, **_GIT_ENV},
            )
        except OSError as exc:
            raise TransientError(f"cannot run git cat-file: {exc}") from exc

    def read(self, sha: str, *, max_bytes: int | None = None) -> bytes:
        """The content of blob ``sha``; a vanished process is ``TransientError``.

        A blob over ``max_bytes`` is drained from the pipe unread and refused with
        ``InputError`` (stage ``read``), so one huge file never sits in memory.
        """
        if self._broken or self._proc.poll() is not None:
            self._restart()
        try:
            return self._read(sha, max_bytes)
        except TransientError:
            self._broken = True
            raise

    def _read(self, sha: str, max_bytes: int | None) -> bytes:
        stdin, stdout = self._pipes()
        try:
            stdin.write(sha.encode() + b"\n")
            stdin.flush()
            header = stdout.readline().split()
        except OSError as exc:
            raise TransientError(f"git cat-file failed: {exc}") from exc
        if len(header) != 3 or header[1] != b"blob":
            raise TransientError(f"git cat-file: cannot read blob {sha}: {header!r}")
        size = int(header[2])
        if max_bytes is not None and size > max_bytes:
            left = size + 1  # the content and its trailing newline
            while left:
                chunk = stdout.read(min(1 << 20, left))
                if not chunk:
                    raise TransientError(f"git cat-file: short read of {sha}")
                left -= len(chunk)
            raise InputError(
                f"{size} bytes is over the {max_bytes}-byte limit for one file", stage="read"
            )
        data = stdout.read(size)
        stdout.read(1)  # the newline after each object
        if len(data) != size:
            raise TransientError(f"git cat-file: short read of {sha}")
        return data

    def _pipes(self) -> tuple[IO[bytes], IO[bytes]]:
        if self._proc.stdin is None or self._proc.stdout is None or self._proc.poll() is not None:
            raise TransientError("git cat-file is not running")
        return self._proc.stdin, self._proc.stdout

    def _restart(self) -> None:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            self._proc.kill()
            self.close()
        self._proc = self._start()
        self._broken = False

    def close(self) -> None:
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):  # the pipe of a dead process
                self._proc.stdin.close()
        self._proc.wait(timeout=10)
        if self._proc.stdout is not None:
            self._proc.stdout.close()

    def __enter__(self) -> BlobReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class PathFilter:
    """Which repository paths count: gitignore-style ``include`` / ``exclude`` globs."""

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self._include = compile_rules(list(include), "include")
        self._exclude = compile_rules(list(exclude), "exclude")

    def __call__(self, path: str) -> bool:
        if self._include is not None and not self._include.matches(path):
            return False
        return not (self._exclude is not None and self._exclude.matches(path))

    def changes(self, changes: Iterable[Change]) -> list[Change]:
        """Filtered changes; a rename across the filter becomes an add or a delete."""
        return filter_changes(changes, self)


def filter_changes(changes: Iterable[Change], accept: Callable[[str], bool]) -> list[Change]:
    """The changes that concern paths ``accept`` takes, as seen through it.

    A rename whose old path is accepted and new path is not is a deletion; the other
    way round an addition. A modification or deletion of a path that is not accepted
    concerns nothing stored, so it is dropped.
    """
    out: list[Change] = []
    for ch in changes:
        new_in = accept(ch.path)
        if ch.kind != "rename":
            if new_in:
                out.append(ch)
            continue
        old_in = accept(ch.old_path or "")
        if new_in and old_in:
            out.append(ch)
        elif new_in:
            out.append(Change("add", ch.path, ch.blob))
        elif old_in:
            out.append(Change("delete", ch.old_path or "", None, old_blob=ch.old_blob))
    return out


def _remove_abandoned_clones(git_dir: Path) -> None:
    """Delete ``<mirror>.tmp<pid>`` folders of clones whose process is gone (killed)."""
    for tmp in git_dir.parent.glob(git_dir.name + ".tmp*"):
        pid = tmp.name.rsplit(".tmp", 1)[1]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    return True


GIT_TIMEOUT_S = 600  # a fetch that hangs (dead network) must end, as a transient failure


def _run(cmd: list[str], *, check: bool = True, transient: bool = False) -> str:
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            env={**os.environ, **_GIT_ENV},
            check=False,
            timeout=GIT_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        raise TransientError(f"git {' '.join(cmd[1:3])}: no answer in {GIT_TIMEOUT_S} s") from exc
    except OSError as exc:
        raise TransientError(f"cannot run git: {exc}") from exc
    if check and proc.returncode != 0:
        message = proc.stderr.decode("utf-8", "replace").strip()
        if transient:
            raise TransientError(f"{' '.join(cmd[1:3])}: {message}")
        raise RootUnavailableError(f"git {' '.join(cmd[1:4])}: {message}")
    return proc.stdout.decode("utf-8", "surrogateescape")


__all__ = ["BlobReader", "Change", "GitRepo", "PathFilter", "filter_changes", "is_url"]
