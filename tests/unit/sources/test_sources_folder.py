"""FolderSource: what is discovered, what is skipped and why, in which order."""

from __future__ import annotations

import errno
import os
import stat
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from headrace.errors import ConfigError
from headrace.records import FileRef
from headrace.sources.base import RootProblem, SkippedFile, Source
from headrace.sources.folder import FolderSource


def make_tree(root: Path, files: Mapping[str, str]) -> Path:
    for relpath, text in files.items():
        path = root / relpath
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def found(source: FolderSource) -> list[str]:
    return [item.relpath for item in source.discover() if isinstance(item, FileRef)]


def skipped(source: FolderSource) -> dict[str, SkippedFile]:
    return {item.path: item for item in source.discover() if isinstance(item, SkippedFile)}


def test_folder_source_satisfies_the_protocol(tmp_path: Path) -> None:
    source: Source = FolderSource([str(tmp_path)])
    assert list(source.roots) == [str(tmp_path)]


def test_file_refs_carry_given_paths_and_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"docs/a.md": "hello", "empty.txt": ""})
    monkeypatch.chdir(tmp_path)
    refs = [i for i in FolderSource(["./docs/../."]).discover() if isinstance(i, FileRef)]
    by_rel = {ref.relpath: ref for ref in refs}
    assert set(by_rel) == {"docs/a.md", "empty.txt"}  # zero-byte files are reported
    ref = by_rel["docs/a.md"]
    st = os.stat(tmp_path / "docs" / "a.md")
    assert ref.root == str(tmp_path)
    assert ref.path == os.path.join(str(tmp_path), "docs", "a.md")
    assert (ref.size, ref.mtime_ns, ref.inode) == (5, st.st_mtime_ns, st.st_ino)
    assert by_rel["empty.txt"].size == 0


def test_order_is_deterministic_and_follows_path_components(tmp_path: Path) -> None:
    names = ["b/z.txt", "a.txt", "a/c.txt", "a/b/d.txt", "B.txt", "a-b.txt", "c.txt"]
    make_tree(tmp_path, dict.fromkeys(names, "x"))
    first = found(FolderSource([str(tmp_path)]))
    assert first == sorted(names, key=lambda rel: rel.split("/"))
    assert found(FolderSource([str(tmp_path)])) == first


def test_roots_are_walked_in_the_order_given(tmp_path: Path) -> None:
    make_tree(tmp_path, {"one/a.txt": "x", "two/b.txt": "x"})
    source = FolderSource([str(tmp_path / "two"), str(tmp_path / "one")])
    refs = [i for i in source.discover() if isinstance(i, FileRef)]
    assert [(ref.root, ref.relpath) for ref in refs] == [
        (str(tmp_path / "two"), "b.txt"),
        (str(tmp_path / "one"), "a.txt"),
    ]


def test_include_and_exclude_globs(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        dict.fromkeys(
            ["a.md", "a.txt", "docs/b.md", "docs/draft/c.md", "build/d.md", "keep.log", "x.log"],
            "x",
        ),
    )
    source = FolderSource(
        [str(tmp_path)],
        include=["*.md", "*.log"],
        exclude=["draft/", "/build/", "*.log", "!keep.log"],
    )
    assert found(source) == ["a.md", "docs/b.md", "keep.log"]


def test_include_anchored_to_a_directory(tmp_path: Path) -> None:
    make_tree(tmp_path, dict.fromkeys(["docs/a.md", "docs/sub/b.py", "src/docs/c.md"], "x"))
    assert found(FolderSource([str(tmp_path)], include=["/docs/"])) == [
        "docs/a.md",
        "docs/sub/b.py",
    ]


def test_invalid_glob_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="exclude"):
        FolderSource([str(tmp_path)], exclude=["!"])


def test_nested_gitignore_stacks_with_negation(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {
            ".gitignore": "*.log\nbuild/\n/top-only.txt\n",
            "a.log": "x",
            "top-only.txt": "x",
            "build/out.txt": "x",
            "pkg/.gitignore": "!keep.log\n*.tmp\n/top-only.txt\n",
            "pkg/keep.log": "x",
            "pkg/other.log": "x",
            "pkg/top-only.txt": "x",
            "pkg/x.tmp": "x",
            "pkg/deep/keep.log": "x",
            "pkg/deep/y.tmp": "x",
            "sibling/x.tmp": "x",
            "sibling/keep.log": "x",
        },
    )
    assert found(FolderSource([str(tmp_path)])) == [
        ".gitignore",
        "pkg/.gitignore",
        "pkg/deep/keep.log",
        "pkg/keep.log",
        "sibling/x.tmp",
    ]


def test_headraceignore_overrides_gitignore_in_the_same_directory(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "*.md\n", ".headraceignore": "!*.md\n", "a.md": "x"})
    assert "a.md" in found(FolderSource([str(tmp_path)]))
    assert "a.md" not in found(FolderSource([str(tmp_path)], ignore_files=[".gitignore"]))


def test_invalid_ignore_line_is_dropped_not_fatal(tmp_path: Path) -> None:
    make_tree(tmp_path, {".gitignore": "!\n*.log\n", "a.log": "x", "b.txt": "x"})
    assert found(FolderSource([str(tmp_path)])) == [".gitignore", "b.txt"]


def test_git_directory_is_never_walked(tmp_path: Path) -> None:
    make_tree(
        tmp_path,
        {".git/HEAD": "ref", ".git/objects/ab": "x", "sub/.git": "gitdir: x", "a.txt": "x"},
    )
    assert found(FolderSource([str(tmp_path)], include=["*"])) == ["a.txt"]


def test_symlink_inside_root_is_followed_once_per_path(tmp_path: Path) -> None:
    make_tree(tmp_path, {"real/a.txt": "x", "b.txt": "x"})
    (tmp_path / "alias").symlink_to(tmp_path / "real", target_is_directory=True)
    (tmp_path / "b-link.txt").symlink_to(tmp_path / "b.txt")
    refs = {
        i.relpath: i for i in FolderSource([str(tmp_path)]).discover() if isinstance(i, FileRef)
    }
    assert list(refs) == ["alias/a.txt", "b-link.txt", "b.txt", "real/a.txt"]
    assert refs["alias/a.txt"].path == str(tmp_path / "alias" / "a.txt")
    assert refs["alias/a.txt"].inode == refs["real/a.txt"].inode
    assert refs["b-link.txt"].size == 1


def test_symlink_into_another_root_is_followed(tmp_path: Path) -> None:
    make_tree(tmp_path, {"one/x.txt": "x", "two/y.txt": "x"})
    (tmp_path / "one" / "to-two").symlink_to(tmp_path / "two" / "y.txt")
    source = FolderSource([str(tmp_path / "one"), str(tmp_path / "two")])
    assert found(source) == ["to-two", "x.txt", "y.txt"]


def test_symlink_outside_the_roots_is_skipped_with_reason(tmp_path: Path) -> None:
    make_tree(tmp_path, {"root/a.txt": "x", "outside/secret.txt": "x"})
    root = tmp_path / "root"
    (root / "out-file").symlink_to(tmp_path / "outside" / "secret.txt")
    (root / "out-dir").symlink_to(tmp_path / "outside", target_is_directory=True)
    source = FolderSource([str(root)])
    assert found(source) == ["a.txt"]
    reasons = {path: (s.reason, s.unreadable) for path, s in skipped(source).items()}
    outside = ("symlink points outside the roots", False)
    assert reasons == {str(root / "out-dir"): outside, str(root / "out-file"): outside}


def test_ignored_symlink_is_not_reported(tmp_path: Path) -> None:
    make_tree(tmp_path, {"root/.gitignore": "node_modules/\n", "other/x": "x"})
    (tmp_path / "root" / "node_modules").symlink_to(tmp_path / "other", target_is_directory=True)
    assert skipped(FolderSource([str(tmp_path / "root")])) == {}


@pytest.mark.timeout(10)
def test_symlink_loop_is_detected_and_the_walk_ends(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a/b/f.txt": "x"})
    (tmp_path / "a" / "b" / "up").symlink_to(tmp_path / "a", target_is_directory=True)
    (tmp_path / "self").symlink_to(tmp_path / "self")
    source = FolderSource([str(tmp_path)])
    assert found(source) == ["a/b/f.txt"]
    reasons = {path: s.reason for path, s in skipped(source).items()}
    assert reasons == {
        str(tmp_path / "a" / "b" / "up"): "symlink loop",
        str(tmp_path / "self"): "symlink loop",
    }


def test_broken_symlink_and_not_followed_symlinks(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.txt": "x"})
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    (tmp_path / "link.txt").symlink_to(tmp_path / "a.txt")
    assert skipped(FolderSource([str(tmp_path)]))[str(tmp_path / "dangling")].reason == (
        "broken symlink"
    )
    no_follow = FolderSource([str(tmp_path)], follow_symlinks=False)
    assert found(no_follow) == ["a.txt"]
    assert {s.reason for s in skipped(no_follow).values()} == {
        "symlink not followed (follow_symlinks is off)"
    }


def test_fifo_is_skipped(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.txt": "x"})
    os.mkfifo(tmp_path / "pipe")
    source = FolderSource([str(tmp_path)])
    assert found(source) == ["a.txt"]
    item = skipped(source)[str(tmp_path / "pipe")]
    assert (item.reason, item.unreadable) == ("special file (fifo)", False)


def test_file_over_the_size_cap_is_skipped(tmp_path: Path) -> None:
    make_tree(tmp_path, {"small.txt": "1234", "big.txt": "12345"})
    source = FolderSource([str(tmp_path)], max_file_bytes=4)
    assert found(source) == ["small.txt"]
    assert skipped(source)[str(tmp_path / "big.txt")].reason.startswith("larger than")


@pytest.fixture
def locked_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A directory that cannot be listed.

    Tests run as root here, and root ignores permission bits, so under root the
    denial is simulated by making ``os.scandir`` raise for that one directory.
    """
    locked = tmp_path / "locked"
    make_tree(tmp_path, {"locked/secret.txt": "x", "open/a.txt": "x"})
    if os.geteuid() != 0:
        locked.chmod(0)
        yield locked
        locked.chmod(stat.S_IRWXU)
        return
    real_scandir = os.scandir

    def scandir(path: str) -> Iterator[os.DirEntry[str]]:
        if os.fspath(path) == str(locked):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    yield locked


def test_unreadable_directory_is_reported_not_empty(tmp_path: Path, locked_dir: Path) -> None:
    source = FolderSource([str(tmp_path)])
    assert found(source) == ["open/a.txt"]
    item = skipped(source)[str(locked_dir)]
    assert item.unreadable
    assert item.reason == "cannot list directory: Permission denied"


def test_unreadable_root_is_a_root_problem(tmp_path: Path, locked_dir: Path) -> None:
    source = FolderSource([str(locked_dir)])
    assert source.check_roots() == [RootProblem(str(locked_dir), "unreadable", "Permission denied")]
    [item] = source.discover()
    assert isinstance(item, SkippedFile)
    assert item.unreadable


def test_unreadable_ignore_file_makes_its_directory_unreadable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_tree(tmp_path, {"d/.gitignore": "*.log\n", "d/a.log": "x", "b.txt": "x"})
    ignore_file = str(tmp_path / "d" / ".gitignore")
    real_open = open

    def guarded_open(file: str, *args: object, **kwargs: object) -> object:
        if file == ignore_file:
            raise PermissionError(errno.EACCES, "Permission denied", file)
        return real_open(file, *args, **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr("builtins.open", guarded_open)
    source = FolderSource([str(tmp_path)])
    assert found(source) == ["b.txt"]
    assert skipped(source)[str(tmp_path / "d")].unreadable


def test_root_problems(tmp_path: Path) -> None:
    make_tree(tmp_path, {"full/a.txt": "x", "file.txt": "x"})
    (tmp_path / "empty").mkdir()
    (tmp_path / "only-dirs" / "a" / "b").mkdir(parents=True)
    roots = ["full", "missing", "file.txt", "empty", "only-dirs"]
    source = FolderSource([str(tmp_path / name) for name in roots])
    assert [(p.root, p.reason) for p in source.check_roots()] == [
        (str(tmp_path / "missing"), "missing"),
        (str(tmp_path / "file.txt"), "not a directory"),
        (str(tmp_path / "empty"), "empty"),
        (str(tmp_path / "only-dirs"), "empty"),
    ]


def test_missing_root_is_reported_unreadable_by_discover(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.txt": "x"})
    source = FolderSource([str(tmp_path / "gone"), str(tmp_path)])
    items = list(source.discover())
    assert items[0] == SkippedFile(
        str(tmp_path / "gone"), "root unavailable: No such file or directory", unreadable=True
    )
    assert [i.relpath for i in items[1:] if isinstance(i, FileRef)] == ["a.txt"]


def test_root_whose_files_are_all_excluded_is_empty(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a.log": "x"})
    assert FolderSource([str(tmp_path)], exclude=["*.log"]).check_roots() == [
        RootProblem(str(tmp_path), "empty", "no file to index under this root")
    ]


@pytest.mark.parametrize("roots", [[], "a-string"])
def test_roots_must_be_a_non_empty_sequence(roots: list[str]) -> None:
    with pytest.raises(ConfigError):
        FolderSource(roots)


def test_negative_size_cap_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        FolderSource([str(tmp_path)], max_file_bytes=-1)


LINK_GRAPHS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 4)), max_size=6
)  # (directory holding the link, target: directory 0-3 or 4 = outside the root)


@settings(max_examples=60, deadline=None)
@given(links=LINK_GRAPHS)
def test_any_symlink_graph_terminates_inside_the_roots(links: list[tuple[int, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        dirs = [
            base / "root",
            base / "root" / "d1",
            base / "root" / "d1" / "d2",
            base / "root" / "d3",
        ]
        for directory in [*dirs, base / "outside"]:
            directory.mkdir(exist_ok=True)
            (directory / "f.txt").write_text("x")
        targets = [*dirs, base / "outside"]
        for n, (holder, target) in enumerate(links):
            (dirs[holder] / f"link{n}").symlink_to(targets[target], target_is_directory=True)
        items = list(FolderSource([str(dirs[0])]).discover())
    paths = [item.path for item in items]
    assert len(paths) == len(set(paths))
    real_files = [i for i in items if isinstance(i, FileRef)]
    assert all(ref.path.startswith(str(dirs[0]) + os.sep) for ref in real_files)
    assert all("outside" not in ref.relpath for ref in real_files)


def _tricky_tree(tmp_path: Path) -> tuple[Path, Path]:
    root = make_tree(
        tmp_path / "root",
        {
            "a.md": "x",
            "docs/.gitignore": "*.log\n!keep.log\nbuild/\n",
            "docs/one.md": "x",
            "docs/debug.log": "x",
            "docs/keep.log": "x",
            "docs/build/out.md": "x",
            "docs/deep/er/two.md": "x",
            "docs/deep/.headraceignore": "er/\n",
            "skip/tmp.md": "x",
            ".git/config": "x",
            "big.txt": "y" * 50,
            "sub/.gitignore": "!*.log\n",
            "sub/x.log": "x",
        },
    )
    outside = make_tree(tmp_path / "outside", {"o.md": "x"})
    os.symlink(outside / "o.md", root / "out-link.md")
    os.symlink(root / "docs", root / "docs-link")  # a second path into the tree
    os.symlink(root / "missing.md", root / "broken.md")
    os.symlink(root, root / "docs" / "loop")
    os.mkfifo(root / "pipe")
    return root, outside


def test_discover_paths_yields_exactly_what_the_walk_yields_for_them(
    tmp_path: Path, locked_dir: Path
) -> None:
    root, _ = _tricky_tree(tmp_path)
    make_tree(root, {"locked-inside/a.md": "x"})
    source = FolderSource([str(root), str(locked_dir)], exclude=["skip/"], max_file_bytes=20)
    walked = list(source.discover())
    asked = [
        *(item.path for item in walked),
        str(root / "docs" / "debug.log"),  # ignored: nothing
        str(root / "docs" / "build" / "out.md"),  # below an ignored directory: nothing
        str(root / "docs" / "deep" / "er" / "two.md"),  # ignored by a deeper file
        str(root / "skip" / "tmp.md"),  # excluded
        str(root / ".git" / "config"),  # never walked
        str(root / "nothing-here.md"),  # missing
        str(root / "docs"),  # a directory
        str(locked_dir / "secret.txt"),  # below an unlistable directory
        str(tmp_path / "elsewhere.md"),  # outside the roots
    ]
    targeted = list(source.discover_paths(asked))
    assert sorted(map(repr, targeted)) == sorted(map(repr, walked))
    # Some of each kind, so that the equality above says something.
    assert {"docs/keep.log", "sub/x.log", "docs-link/one.md", "a.md"} <= {
        i.relpath for i in targeted if isinstance(i, FileRef)
    }
    reasons = {Path(i.path).name: i.reason for i in targeted if isinstance(i, SkippedFile)}
    assert set(reasons) >= {"out-link.md", "broken.md", "loop", "pipe", "big.txt", "locked"}


def test_discover_paths_descends_only_the_asked_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = make_tree(tmp_path / "r", {f"d{i}/f{j}.md": "x" for i in range(20) for j in range(20)})
    listed: list[str] = []
    real_scandir = os.scandir

    def scandir(path: str) -> Iterator[os.DirEntry[str]]:
        listed.append(os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    wanted = [str(root / "d3" / "f7.md"), str(root / "d3" / "f8.md")]
    items = list(FolderSource([str(root)]).discover_paths(wanted))
    assert [i.path for i in items] == wanted
    assert sorted(set(listed)) == [str(root), str(root / "d3")]  # opened, not walked
