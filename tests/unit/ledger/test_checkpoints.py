"""``BackgroundCheckpoints``: while active, the writer's commits leave the WAL to a
thread's checkpoints; at ``stop`` the writer checkpoints again; a thread that cannot
checkpoint changes nothing but who copies the WAL."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from pathlib import Path

import apsw
import pytest

from headrace.ledger.checkpoints import BackgroundCheckpoints
from headrace.ledger.db import connect

ROW = "x" * 3000  # about one 4 KB page a row


def _writer(path: Path, autocheckpoint: int) -> apsw.Connection:
    conn = connect(path)
    conn.execute("CREATE TABLE IF NOT EXISTS t(v TEXT)")
    conn.wal_autocheckpoint(autocheckpoint)
    return conn


def _commits(conn: apsw.Connection, n: int, rows: int = 10) -> None:
    for _ in range(n):
        with conn:
            conn.executemany("INSERT INTO t VALUES (?)", [(ROW,)] * rows)


def _wait(cond: Callable[[], bool], seconds: float = 10.0) -> None:
    """Until ``cond()`` (the thread runs when it gets the CPU), at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not cond() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_the_thread_checkpoints_the_wal_the_writer_leaves(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    conn = _writer(path, autocheckpoint=1_000_000)  # the writer alone never would
    before = os.path.getsize(path)
    with BackgroundCheckpoints(conn, path, pages=40, restore_pages=1_000_000) as ckpt:
        _commits(conn, 12)  # ~120 pages
        _wait(lambda: ckpt.checkpoints > 0 and os.path.getsize(path) > before + 40 * 4096)
        assert ckpt.checkpoints > 0
        assert ckpt.error is None
    assert os.path.getsize(path) > before + 40 * 4096  # the rows reached the file
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (120,)
    conn.close()


def test_while_active_the_writer_does_not_checkpoint_and_after_stop_it_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "i.sqlite"
    conn = _writer(path, autocheckpoint=20)
    _commits(conn, 1)
    with conn:
        conn.execute("DELETE FROM t")
    conn.wal_checkpoint(mode=apsw.SQLITE_CHECKPOINT_TRUNCATE)
    size = os.path.getsize(path)
    ckpt = BackgroundCheckpoints(conn, path, pages=10**9, restore_pages=20)  # never wakes
    ckpt.start()
    _commits(conn, 8)  # 80 pages: the writer's auto-checkpoint (20) would have run
    assert os.path.getsize(path) == size  # everything is still in the WAL
    ckpt.stop()
    assert ckpt.checkpoints == 0
    _commits(conn, 1)  # the writer's own auto-checkpoint again
    assert os.path.getsize(path) > size
    conn.close()


def test_a_thread_that_cannot_checkpoint_leaves_the_writer_as_it_was(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "i.sqlite"
    conn = _writer(path, autocheckpoint=20)
    ckpt = BackgroundCheckpoints(conn, tmp_path / "missing" / "i.sqlite", pages=5, restore_pages=20)
    with caplog.at_level(logging.WARNING, logger="headrace.ledger.checkpoints"), ckpt:
        _commits(conn, 3)
        _wait(lambda: ckpt.error is not None)
    assert isinstance(ckpt.error, apsw.Error)
    assert "background checkpoints stopped" in caplog.text
    size = os.path.getsize(path)
    _commits(conn, 3)  # restored: the writer checkpoints its WAL itself
    assert os.path.getsize(path) > size
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (60,)
    conn.close()


def test_stop_without_start_and_start_twice_are_harmless(tmp_path: Path) -> None:
    path = tmp_path / "i.sqlite"
    conn = _writer(path, autocheckpoint=20)
    ckpt = BackgroundCheckpoints(conn, path, pages=5)
    ckpt.stop()
    ckpt.start()
    ckpt.start()
    _commits(conn, 2)
    ckpt.stop()
    ckpt.stop()
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (20,)
    conn.close()
