"""A large Claude Code transcript corpus built from the shared real samples.

Copy ``k`` of every sample gets new session and message UUIDs, its own project
folder (``cwd`` ``…/spotter`` becomes ``…/spotter-k``, the project directory
mangled to match) and varied text: in every string under ``message`` (prompts,
answers, tool inputs and results), about one word in six is swapped for another
word chosen by a hash of (word, k). Each copy therefore embeds differently (no
embedding-cache hits across copies) while keeping real shapes and lengths.
Built once under ``bench/out/`` and reused.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "claude-code"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_WORD = re.compile(r"\b[a-zA-Z]{4,}\b")
_VOCAB = [
    *("alpha", "bravo", "cursor", "ledger", "vector", "window", "commit", "replay"),
    *("segment", "cache", "index", "shard", "tenant", "payload", "filter", "session"),
    *("turn", "project", "branch", "module", "parser", "chunker", "embed"),
]
_KEEP = frozenset({"type", "role", "id", "tool_use_id", "name", "model"})


def _vary_text(text: str, k: int) -> str:
    def swap(m: re.Match[str]) -> str:
        digest = hashlib.blake2b(f"{m.group(0)}{k}".encode(), digest_size=2).digest()
        n = int.from_bytes(digest, "big")
        return _VOCAB[n % len(_VOCAB)] if n % 6 == 0 else m.group(0)

    return _WORD.sub(swap, text)


def _vary(value: Any, k: int, key: str = "") -> Any:
    if isinstance(value, str):
        return value if key in _KEEP else _vary_text(value, k)
    if isinstance(value, list):
        return [_vary(v, k, key) for v in value]
    if isinstance(value, dict):
        return {name: _vary(v, k, name) for name, v in value.items()}
    return value


def _new_uuid(match: re.Match[str], k: int) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_OID, f"{k}:{match.group(0)}"))


def _renamed(text: str, k: int) -> str:
    return _UUID.sub(lambda m: _new_uuid(m, k), text)


def _line(raw: str, k: int) -> str:
    raw = _renamed(raw, k)
    try:
        record = json.loads(raw)
    except ValueError:
        return raw  # malformed sample lines stay malformed
    if not isinstance(record, dict):
        return raw
    if isinstance(record.get("cwd"), str) and record["cwd"].startswith("/"):
        record["cwd"] = f"{record['cwd'].rstrip('/')}-{k}"
    if "message" in record:
        record["message"] = _vary(record["message"], k)
    return json.dumps(record, separators=(",", ":"), ensure_ascii=False)


def _copy(src: Path, dst: Path, k: int) -> int:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with src.open(encoding="utf-8") as inp, dst.open("w", encoding="utf-8") as out:
        for raw in inp:
            out.write(_line(raw.rstrip("\n"), k) + "\n")
    return dst.stat().st_size


def build(target_mb: float) -> Path:
    """``bench/out/claude-code-<mb>mb/projects``: copies of the samples, ≥ ``target_mb``."""
    root = OUT / f"claude-code-{target_mb:g}mb" / "projects"
    done = root.parent / "done"
    if done.exists():
        return root
    samples = sorted(DATA.rglob("*.jsonl"))
    total, k = 0, 0
    while total < target_mb * 1e6:
        for src in samples:
            rel = src.relative_to(DATA)
            project = f"-home-USER-projects-{rel.parts[0]}-{k}"
            renamed = [_renamed(p, k) for p in rel.parts[1:]]
            total += _copy(src, root / project / Path(*renamed), k)
        k += 1
    done.write_text(f"{total} bytes, {k} copies\n")
    return root


if __name__ == "__main__":
    import sys

    print(build(float(sys.argv[1]) if len(sys.argv) > 1 else 200.0))
