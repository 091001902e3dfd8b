"""``GitMirror``: a folder kept equal to a filtered tree by applying git diffs."""

from __future__ import annotations

from pathlib import Path

from ontology_support import (  # foreign_keys_hold: autouse, checks every database
    Repo,
    foreign_keys_hold,  # noqa: F401
)

from headrace.sources.git import GitRepo
from headrace.sources.git_mirror import GitMirror


def _files(folder: Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): p.read_text()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_mirror_follows_commits_and_rewrites(tmp_path: Path) -> None:
    repo = Repo(tmp_path / "repo")
    repo.write("docs/a.md", "# A\n")
    repo.write("docs/b.md", "# B\n")
    repo.write("src/code.py", "print()\n")
    base = repo.commit("one")
    folder = tmp_path / "mirror"
    mirror = GitMirror(GitRepo(str(repo.root)), folder, lambda p: p.endswith(".md"))
    report = mirror.sync(base)
    assert report.mode == "full"
    assert report.written == 2
    assert _files(folder) == {"docs/a.md": "# A\n", "docs/b.md": "# B\n"}

    repo.write("docs/a.md", "# A, edited\n")
    repo.mv("docs/b.md", "notes/b.md")
    repo.write("docs/c.txt", "not mirrored\n")
    second = repo.commit("two")
    b_mtime = (folder / "docs/a.md").stat().st_mtime_ns
    report = mirror.sync(second)
    assert report.mode == "incremental"
    assert _files(folder) == {"docs/a.md": "# A, edited\n", "notes/b.md": "# B\n"}
    assert (folder / "docs/a.md").stat().st_mtime_ns >= b_mtime
    assert mirror.sync(second).written == 0  # replaying a diff writes nothing

    repo.git("reset", "-q", "--hard", base)
    repo.write("docs/d.md", "# D\n")
    third = repo.commit("rewritten")
    report = mirror.sync(third)
    assert report.mode == "full"
    assert _files(folder) == {"docs/a.md": "# A\n", "docs/b.md": "# B\n", "docs/d.md": "# D\n"}
    assert (report.written, report.deleted) == (3, 1)
    # a lost state file means a full comparison: only what differs would be rewritten
    mirror.state.unlink()
    report = mirror.sync(third)
    assert (report.mode, report.written, report.unchanged) == ("full", 0, 3)
