"""Tool calls and results of Claude Code transcripts: short, capped, image-free text.

A transcript's bulk is tool traffic (whole files read, long command outputs,
``toolUseResult`` copies of both). What a reader searches for is *what was done*:
the command, the file, the pattern, the first part of the answer. So each call is
summarised by tool (``Bash: <command>``, ``Read: <path>``, ``Edit: <path>`` …) and
each result is cut to a head of ``output_chars`` characters with a count of what
was left out. Base64 images never enter the text: image blocks become
``[image]`` and any long base64-looking run is replaced by ``[base64: N chars]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# A run this long of base64 characters is no prose, whatever it encodes.
_BASE64_RUN = re.compile(r"(?:data:[\w/+.-]+;base64,)?[A-Za-z0-9+/]{160,}={0,2}")
READ_TOOLS = frozenset({"Read", "NotebookRead"})
EDIT_TOOLS = frozenset({"Edit", "MultiEdit", "NotebookEdit"})
WRITE_TOOLS = frozenset({"Write"})
COMMAND_TOOLS = frozenset({"Bash", "bash"})
MAX_COMMAND_CHARS = 300
MAX_LIST_ITEMS = 50  # per turn and metadata field: a runaway turn stays filterable


def cap(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters, marking how much was left out."""
    text = scrub(text.strip())
    if len(text) <= limit:
        return text
    return f"{text[:limit].rstrip()} … [+{len(text) - limit} chars]"


def scrub(text: str) -> str:
    """Replace base64-looking runs (pasted images, binary dumps) by a placeholder."""
    if len(text) < 160:
        return text
    return _BASE64_RUN.sub(_placeholder, text)


def _placeholder(match: re.Match[str]) -> str:
    run = match.group(0)
    # Encoded bytes mix cases and digits; "xxxx…" or "----" runs are left alone.
    mixed = any(c.isdigit() for c in run) and any(c.islower() for c in run)
    if not (mixed and any(c.isupper() for c in run)):
        return run
    return f"[base64: {len(run)} chars]"


@dataclass(slots=True)
class ToolFacts:
    """What the tool calls of one turn touched, in first-seen order, deduplicated."""

    tools: dict[str, None] = field(default_factory=dict)
    files_read: dict[str, None] = field(default_factory=dict)
    files_edited: dict[str, None] = field(default_factory=dict)
    files_written: dict[str, None] = field(default_factory=dict)
    commands: dict[str, None] = field(default_factory=dict)

    def note(self, name: str, params: Mapping[str, Any]) -> None:
        _add(self.tools, name)
        path = _path_of(params)
        if path and name in READ_TOOLS:
            _add(self.files_read, path)
        elif path and name in EDIT_TOOLS:
            _add(self.files_edited, path)
        elif path and name in WRITE_TOOLS:
            _add(self.files_written, path)
        command = params.get("command")
        if name in COMMAND_TOOLS and isinstance(command, str) and command.strip():
            _add(self.commands, command.strip()[:MAX_COMMAND_CHARS])

    def metadata(self) -> dict[str, list[str]]:
        files = {**self.files_read, **self.files_edited, **self.files_written}
        return {
            "tools": list(self.tools),
            "files_read": list(self.files_read),
            "files_edited": list(self.files_edited),
            "files_written": list(self.files_written),
            "files": list(files)[:MAX_LIST_ITEMS],
            "file_names": list(dict.fromkeys(p.rsplit("/", 1)[-1] for p in files)),
            "commands": list(self.commands),
        }


def _add(target: dict[str, None], value: str) -> None:
    if len(target) < MAX_LIST_ITEMS:
        target[value] = None


def _path_of(params: Mapping[str, Any]) -> str | None:
    for key in ("file_path", "notebook_path", "path"):
        value = params.get(key)
        if isinstance(value, str) and value:
            return value
    return None


def describe_call(name: str, params: Mapping[str, Any], limit: int) -> str:
    """One line (capped) saying what a tool call does."""
    text = _summary(name, params)
    return f"Tool {name}: {cap(text, limit)}" if text else f"Tool {name}"


def _summary(name: str, p: Mapping[str, Any]) -> str:
    s = {k: v for k, v in p.items() if isinstance(v, str)}
    if name in COMMAND_TOOLS:
        desc = f"  ({s['description']})" if "description" in s else ""
        return s.get("command", "") + desc
    if name in EDIT_TOOLS:
        edits = p.get("edits")
        count = f" ({len(edits)} edits)" if isinstance(edits, list) else ""
        new = s.get("new_string") or s.get("new_source") or ""
        return f"{_path_of(p) or ''}{count}" + (f"\n{new}" if new else "")
    if name in WRITE_TOOLS:
        return f"{_path_of(p) or ''}\n{s.get('content', '')}"
    if name == "TodoWrite" and isinstance(p.get("todos"), list):
        items = [t.get("content", "") for t in p["todos"] if isinstance(t, dict)]
        return "; ".join(str(i) for i in items if i)
    ordered = ("file_path", "pattern", "path", "query", "url", "description", "prompt")
    parts = [s[k] for k in ordered if k in s]
    parts += [f"{k}={v}" for k, v in s.items() if k not in ordered]
    return " ".join(parts)


def describe_result(name: str | None, content: Any, is_error: bool, limit: int) -> str:
    """The head of a tool result (string or blocks), images as ``[image]``."""
    text = result_text(content)
    label = f"Result {name}" if name else "Result"
    if is_error:
        label += " (error)"
    return f"{label}: {cap(text, limit)}" if text.strip() else label


def result_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, dict):
                kind = block.get("type")
                if kind == "image":
                    parts.append("[image]")
                elif isinstance(block.get("text"), str):
                    parts.append(block["text"])
            elif isinstance(block, str):
                parts.append(block)
        return "\n".join(parts)
    return ""
