"""Claude Code transcripts under ``headrace watch``: a session growing line by line.

The watcher runs with the ``claude-code`` preset's settings (parser, index name
overridden by a temporary path) over a temporary projects folder, once in a
thread (``Watcher``) and once as users run it (``headrace watch --preset
claude-code ROOT`` in a subprocess, stopped with SIGTERM). Either way the index
must end equal to a one-shot ``ingest`` of the final files (the canonical export).
Waiting is on conditions with deadlines (the ledger has recorded the file's
current size), never on fixed sleeps. Embeddings come from the HashEmbedder.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.integration.watch_support import wait_for, watching

from headrace.api import Index
from headrace.config.settings import load_settings
from headrace.errors import HeadraceError
from headrace.ledger.db import connect
from headrace.ledger.ledger import Ledger
from headrace.presets import apply_settings, get_preset
from headrace.testing.embedders import HashEmbedder

FIXTURES = Path(__file__).parents[1] / "fixtures" / "claude_code"
PROJECT = "-home-marco-projects-spotter"
DEADLINE_S = 60.0


def _index(path: Path) -> Index:
    settings = apply_settings(load_settings(index=str(path)), get_preset("claude-code"))
    return Index(settings=settings, embedder=HashEmbedder())


def _one_shot(tmp: Path, root: Path) -> list[dict[str, Any]]:
    with _index(tmp / f"oneshot-{time.monotonic_ns()}.sqlite") as idx:
        idx.ingest([str(root)])
        return list(idx.export())


def _recorded(index_path: Path, path: Path) -> Callable[[], bool]:
    """True once the index's ledger holds ``path`` at its current size."""

    def check() -> bool:
        if not index_path.exists():
            return False
        try:
            conn = connect(index_path, readonly=True)
        except HeadraceError:
            return False  # not created yet, or busy: look again
        try:
            stored = Ledger(conn).get(str(path))
        except Exception:  # the schema may not be there yet
            return False
        finally:
            conn.close()
        return stored is not None and stored.size == path.stat().st_size

    return check


def _projects(tmp: Path) -> tuple[Path, Path, list[bytes]]:
    """A projects folder with the fixture project, and one empty session to grow."""
    root = tmp / "projects"
    shutil.copytree(FIXTURES / PROJECT, root / PROJECT)
    source = root / PROJECT / "tool_heavy.jsonl"
    lines = source.read_bytes().splitlines(keepends=True)
    source.unlink()
    live = root / PROJECT / "d6e0bada-live.jsonl"
    live.write_bytes(b"")
    return root, live, lines


def _append(path: Path, line: bytes) -> None:
    with path.open("ab") as handle:
        handle.write(line)


def test_a_watched_transcript_growing_line_by_line_ends_as_a_one_shot_ingest(
    tmp_path: Path,
) -> None:
    root, live, lines = _projects(tmp_path)
    index_path = tmp_path / "live.sqlite"
    with _index(index_path) as idx, watching(idx, root) as watcher:
        assert watcher.sync(DEADLINE_S)
        before, waits = watcher.totals.get("batches", 0), 0
        for n, line in enumerate(lines):
            _append(live, line)
            if n % 3 == 2:  # sometimes wait for it, sometimes let appends pile up
                wait_for(_recorded(index_path, live), f"line {n + 1} of {live.name}")
                waits += 1
        assert watcher.sync(DEADLINE_S)
        # Each wait saw a size only a batch after the previous wait could record.
        assert watcher.totals.get("batches", 0) - before >= waits > 10
        grown = list(idx.export())
    once = _one_shot(tmp_path, root)
    assert grown == once
    mine = [row for row in once if row["source"] == str(live)]
    assert len(mine) >= 2  # the grown session is indexed turn by turn, by the preset's parser
    assert all(row["metadata"].get("project") == "spotter" for row in mine)


def test_headrace_watch_preset_claude_code_follows_a_growing_session(tmp_path: Path) -> None:
    root, live, lines = _projects(tmp_path)
    index_path = tmp_path / "cli.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HEADRACE_EMBEDDER": "hash"}
    env.pop("HEADRACE_INDEX", None)
    command = [sys.executable, "-m", "headrace", "watch", "--preset", "claude-code"]
    command += [str(root), "--index", str(index_path), "--debounce", "0.05", "--quiet"]
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        wait_for(_recorded(index_path, root / PROJECT / "short.jsonl"), "the catch-up")
        for n, line in enumerate(lines):
            _append(live, line)
            if n % 10 == 9 or n == len(lines) - 1:
                wait_for(_recorded(index_path, live), f"line {n + 1} of {live.name}")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=DEADLINE_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, out
    settings = apply_settings(load_settings(index=str(index_path)), get_preset("claude-code"))
    with Index(settings=settings, embedder=HashEmbedder()) as idx:
        grown = list(idx.export())
    assert grown == _one_shot(tmp_path, root)
    assert any(row["source"] == str(live) for row in grown)
