"""``bound_heap`` (what ``headrace watch`` sets once caught up) really changes malloc.

Run in a child process: the thresholds are process-wide and would otherwise stay
set for the rest of the test session.
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys

import pytest

import headrace.runtime.memory

_CHILD = r"""
import ctypes, importlib.util, json, sys
# The module alone (importing the package would load the whole pipeline: slow).
spec = importlib.util.spec_from_file_location("memory", sys.argv[1])
memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(memory)

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
        "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
libc.malloc.restype = ctypes.c_void_p
libc.malloc.argtypes = [ctypes.c_size_t]
libc.free.argtypes = [ctypes.c_void_p]

def mapped_by(size):
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(size)
    mapped = libc.mallinfo2().hblkhd - before
    libc.free(block)
    return mapped

# Freeing an 8 MB mapped block raises glibc's dynamic threshold to 8 MB: from then
# on a 1 MB block lands in the heap (the free-but-held memory of a long run).
libc.free(libc.malloc(8 << 20))
out = {"default": mapped_by(1 << 20)}
out["bound"] = memory.bound_heap(mmap_threshold=128 << 10, trim_threshold=128 << 10)
libc.malloc_trim(0)  # the free 1 MB at the heap's top would serve the next request
out["bounded"] = mapped_by(1 << 20)
out["small"] = mapped_by(64 << 10)
json.dump(out, sys.stdout)
"""


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's mallopt")
def test_bound_heap_maps_large_blocks_again_after_the_threshold_grew() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _CHILD, headrace.runtime.memory.__file__],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    got = json.loads(run.stdout)
    assert got["default"] == 0  # the grown dynamic threshold keeps 1 MB in the heap
    assert got["bound"] is True
    assert got["bounded"] >= 1 << 20  # fixed at 128 KiB: 1 MB gets its own mapping
    assert got["small"] == 0  # below the threshold: still the heap
