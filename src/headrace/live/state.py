"""The watcher's state file, read by ``headrace status``.

``<index>.watch.json`` next to the index, rewritten every ``state_interval_s``
atomically (temp → fsync → rename → fsync(dir)), so a reader never sees half a
file. ``version`` is the format's version; a reader ignores a newer one.
A state whose ``pid`` is gone, or that says ``stopped``, is not a running watcher.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

STATE_VERSION = 1


def state_path(index_path: Path) -> Path:
    return index_path.with_name(index_path.name + ".watch.json")


def write_state(path: Path, state: dict[str, Any]) -> None:
    """Replace ``path`` with ``state`` as JSON, atomically and durably."""
    data = {"version": STATE_VERSION, "updated": time.time(), **state}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_state(path: Path) -> dict[str, Any] | None:
    """The last state a watcher wrote, with ``running`` added; None if there is none."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("version", 0) > STATE_VERSION:
        return None
    data["running"] = data.get("phase") != "stopped" and _alive(int(data.get("pid", 0)))
    return data


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


__all__ = ["read_state", "state_path", "write_state"]
