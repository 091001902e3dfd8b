"""Shared fixtures: a small corpus builder and indexes using the shipped test double."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Named indexes and config files must never leak between tests or to $HOME.
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    for var in ("HEADRACE_INDEX", "HEADRACE_CONFIG", "HEADRACE_EMBEDDER"):
        monkeypatch.delenv(var, raising=False)
    return


# Vocabulary of the generated corpora of the kill and stop tests.
WORDS = [
    "alpha",
    "beta",
    "gamma",
    "delta",
    "index",
    "ledger",
    "chunk",
    "vector",
    "shard",
    "replay",
    "commit",
]


def write_corpus(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path → text) under ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root
