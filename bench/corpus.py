"""Benchmark corpora built from real text found on this machine (never committed).

Sources: Markdown, reStructuredText and text documentation shipped by installed
packages (``/usr``, ``/opt``, the virtualenv) and the shared sample data. Files of
1-64 KB are copied under ``bench/out/`` with stable names in a fixed shuffled order, so
runs are repeatable and corpora of different sizes have the same mix.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from pathlib import Path

OUT = Path(__file__).resolve().parent / "out"
SEARCH = [
    "/usr",
    "/opt",
    "/root/.pyenv",
    str(Path(__file__).resolve().parents[1] / ".venv"),
    str(Path(__file__).resolve().parents[2] / "shared" / "data"),
]
SUFFIXES = (".md", ".rst", ".txt", ".markdown")


def _candidates() -> list[Path]:
    found: dict[str, Path] = {}
    for top in SEARCH:
        for dirpath, _, names in os.walk(top):
            for name in names:
                if not name.endswith(SUFFIXES):
                    continue
                path = Path(dirpath) / name
                try:
                    size = path.stat().st_size
                except OSError:
                    continue
                if 1024 <= size <= 65536:
                    digest = hashlib.sha1(path.read_bytes()).hexdigest()
                    found.setdefault(digest, path)  # drop duplicate copies
    # A fixed shuffle: any prefix (1,000 or 10,000 files) has the same mix of sizes and
    # formats, so runs of different sizes compare like with like.
    files = sorted(found.values())
    random.Random(20261201).shuffle(files)
    return files


def real_text_corpus(n_files: int, name: str | None = None) -> Path:
    """A folder of ``n_files`` distinct real documentation files (cycled with a
    variant suffix if the machine has fewer)."""
    dest = OUT / (name or f"real-{n_files}")
    if dest.is_dir() and sum(1 for _ in dest.rglob("*") if _.is_file()) == n_files:
        return dest
    shutil.rmtree(dest, ignore_errors=True)
    files = _candidates()
    for i in range(n_files):
        src = files[i % len(files)]
        target = dest / f"d{i % 50:02d}" / f"{i:05d}-{src.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        data = src.read_bytes()
        if i >= len(files):  # a variant: distinct content, so nothing is cached
            data += f"\n\nVariant {i // len(files)} of this document.\n".encode()
        target.write_bytes(data)
    return dest
