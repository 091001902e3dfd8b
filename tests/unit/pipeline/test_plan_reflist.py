"""RefList: the plan's compact list of files gives back exactly the refs put in."""

from __future__ import annotations

import os
import sys
import tracemalloc

import pytest

from headrace.pipeline.plan import RefList
from headrace.records import FileRef


def _refs(n: int, root: str = "/data/notes") -> list[FileRef]:
    return [
        FileRef(root, f"d{i % 7}/file-{i}.md", f"{root}/d{i % 7}/file-{i}.md", i * 10, 17 * i, i)
        for i in range(n)
    ]


def test_round_trip_order_and_equality() -> None:
    refs = _refs(50) + _refs(5, root="/other")
    compact = RefList(refs)
    assert len(compact) == 55
    assert list(compact) == refs
    assert compact == refs
    assert compact[0] == refs[0]
    assert compact[-1] == refs[-1]
    assert compact[10:13] == refs[10:13]
    assert compact != refs[:-1]
    with pytest.raises(IndexError):
        compact[55]


def test_odd_refs_are_kept_as_they_are() -> None:
    odd = [
        FileRef("/r", "a.md", "/elsewhere/a.md", 1, 2, 3),  # path is not root/relpath
        FileRef("/r", "b.md", "/r/b.md", 1, 2, 2**64 - 1),  # inode beyond int64
        FileRef("/r", "c.md", "/r/c.md", 1, -5, 3),  # mtime before 1970
        FileRef("/", "top.md", "/top.md", 0, 0, 0),  # the root is "/"
    ]
    if sys.platform != "darwin":
        name = os.fsdecode(b"caf\xe9.txt")  # not UTF-8: a surrogate-escaped name
        odd.append(FileRef("/r", name, "/r/" + name, 4, 5, 6))
    assert list(RefList(odd)) == odd


def test_smaller_than_a_list_of_refs() -> None:
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        refs = [
            FileRef(r.root, r.relpath, r.path, r.size, r.mtime_ns, r.inode) for r in _refs(5000)
        ]
        as_list = tracemalloc.get_traced_memory()[0] - before
        before = tracemalloc.get_traced_memory()[0]
        compact = RefList(refs)
        as_reflist = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(compact) == 5000
    assert as_reflist * 3 < as_list, (as_reflist, as_list)
