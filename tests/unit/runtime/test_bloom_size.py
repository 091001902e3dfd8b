"""The occurrence filter's size: small files get a small one, files that may keep
their filter in a final cursor the full 8 MiB (a stored filter must fit on append)."""

from __future__ import annotations

from headrace.runtime.produce import BLOOM_BYTES, FINAL_CURSOR_MIN_BYTES, bloom_bytes


def test_small_files_get_a_filter_of_their_size() -> None:
    seg = 8 << 20
    assert bloom_bytes(0, seg) == bloom_bytes(2048, seg) == 4096
    assert bloom_bytes(5000, seg) == 8192
    assert bloom_bytes(FINAL_CURSOR_MIN_BYTES - 1, seg) >= FINAL_CURSOR_MIN_BYTES - 1


def test_files_that_may_get_a_final_cursor_keep_the_full_filter() -> None:
    assert bloom_bytes(FINAL_CURSOR_MIN_BYTES, 8 << 20) == BLOOM_BYTES
    assert bloom_bytes(1 << 30, 8 << 20) == BLOOM_BYTES
    # a small segment size lowers the final-cursor threshold: the full filter again
    assert bloom_bytes(5000, 4096) == BLOOM_BYTES
