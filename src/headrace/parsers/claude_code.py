"""``ClaudeCodeParser``: Claude Code session transcripts as conversational turns.

A session file (``~/.claude/projects/<project-dir>/<session>.jsonl``, subagents in
``<session>/subagents/agent-*.jsonl``) is one JSON record per line. A *turn* is a
user prompt with everything the assistant did for it (text, thinking, tool calls
and their results) up to the next prompt; each turn is one section (split only
when longer than ``max_section_chars``), so a chunk reads like the exchange it
came from. Records by ``type``:

- ``user``: a prompt (string content, or text/image blocks) starts a new turn;
  ``tool_result`` blocks join the current turn; ``isMeta`` records (system
  reminders, hook context) are not indexed; ``isCompactSummary`` records are the
  summary written at a compaction: their own section, ``kind="compact_summary"``;
- ``assistant``: text, thinking (capped), ``tool_use`` (summarised), any other
  block with a ``text`` field (``fallback`` …) join the current turn;
- ``summary``: its own section, ``kind="summary"``, with the identity (project,
  session) of the next record that has one;
- ``system``: not indexed; a ``compact_boundary`` closes the current turn;
- top-level ``tool_use`` / ``tool_result`` (an older schema): as the blocks;
- bookkeeping (``progress``, ``file-history-snapshot``, ``queue-operation``,
  ``attachment``, titles, modes, links, …) and **unknown future types**: not
  indexed and not errors. The rule for an unknown type: a record carrying a
  ``message`` object with a ``role`` of ``user`` or ``assistant`` is read as that
  role (new message kinds keep their text); anything else is skipped.
- a line that is not JSON, or JSON that is not an object: a ``ParseIssue``
  (dead letter) with its line number and byte offset; parsing goes on.

Metadata of every section: ``project`` (the real project folder's name: the
ancestor of the turn's ``cwd`` that the mangled project directory names, see
``project_name``; without a ``cwd`` the directory name), ``session``, ``agent``
(subagents), ``sidechain``, ``record`` (the turn's first line), ``kind``,
``timestamp`` / ``timestamp_end`` (ISO) and ``ts`` (epoch seconds, for range
filters), ``git_branch``, ``cwd``, ``model``, ``tools``, ``files_read`` /
``files_edited`` / ``files_written`` / ``files`` / ``file_names``, ``commands``
and ``concepts`` (names of ``concepts`` patterns that match the turn's text;
default: ``DEFAULT_CONCEPTS``, the list of the importer we replace).

The parser is a pure function of the file's content and keeps no state across
turn boundaries: parsing a grown file from its start, or from any turn boundary,
gives exactly the sections of a one-shot parse. So it is *resumable*: it yields a
``Seam`` at the start of every prompt that opens a turn with nothing pending (no
seam at the end of the file: appended records may still belong to the last
turn, which is why an append resumes at that turn's start). A last line without
its newline that is not valid JSON is taken as still being written: skipped, not
a dead letter (the next sync reads it whole). ``version`` includes a digest of
the concept patterns and caps, so changing them re-parses files.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from blake3 import blake3

from headrace.parsers.base import ParserOutput
from headrace.parsers.claude_code_tools import (
    ToolFacts,
    cap,
    describe_call,
    describe_result,
    result_text,
    scrub,
)
from headrace.parsers.sections import DEFAULT_MAX_SECTION_CHARS, is_blank, split_text
from headrace.records import Line, ParseIssue, Seam, Section

# The concept patterns of the streaming importer this parser replaces (seed 000).
DEFAULT_CONCEPTS: Mapping[str, str] = {
    "docker": r"\b(?:docker|container|compose|dockerfile)\b",
    "testing": r"\b(?:test|testing|unittest|pytest)\b",
    "database": r"\b(?:database|sql|postgres|mysql|mongodb)\b",
    "api": r"\b(?:api|rest|graphql|endpoint)\b",
    "security": r"\b(?:security|auth|authentication)\b",
    "performance": r"\b(?:performance|optimization|cache)\b",
    "debugging": r"\b(?:debug|debugging|error|bug)\b",
    "deployment": r"\b(?:deploy|deployment|ci\/cd)\b",
}
BOOKKEEPING = frozenset(
    {
        "progress", "file-history-snapshot", "queue-operation", "attachment", "system",
        "permission-mode", "mode", "agent-name", "custom-title", "ai-title", "last-prompt",
        "frame-link", "pr-link", "started", "result", "relocated", "worktree-state",
        "bridge-session", "atis-latch",
    }
)  # fmt: skip
# User records that are not a new prompt: interruption markers and slash-command
# echoes (``<command-name>/model</command-name>``, ``<local-command-stdout>``).
_NOT_A_PROMPT = ("[Request interrupted", "<command-", "<local-command-")
_TAG = re.compile(r"</?[a-z-]+>")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]")
# A turn's buffered text is bounded: past this it is emitted and the turn goes on
# in a new section, so one endless turn never grows memory.
MAX_TURN_CHARS = 256_000


@dataclass(slots=True)
class _Turn:
    """The records of one turn seen so far."""

    kind: str
    first_line: int
    byte_start: int
    last_line: int = 0
    byte_end: int = 0
    parts: list[str] = field(default_factory=list)
    chars: int = 0
    facts: ToolFacts = field(default_factory=ToolFacts)
    meta: dict[str, Any] = field(default_factory=dict)
    ts_first: str | None = None
    ts_last: str | None = None
    models: dict[str, None] = field(default_factory=dict)
    tool_names: dict[str, str] = field(default_factory=dict)  # tool_use id -> name

    def add(self, label: str, text: str | None = None) -> None:
        """Append ``label`` + ``text``; nothing when ``text`` is given and blank."""
        if text is not None:
            text = text.strip()
            if not text:
                return
        line = label + (text or "")
        if line and not line.isspace():
            self.parts.append(line)
            self.chars += len(line) + 1


class ClaudeCodeParser:
    """Claude Code transcripts (see the module docstring for the record rules).

    ``tool_input_chars`` / ``tool_output_chars`` / ``thinking_chars`` cap each tool
    call summary, tool result and thinking block; ``concepts`` maps a concept name
    to a case-insensitive regular expression.
    """

    name = "claude-code"

    def __init__(
        self,
        *,
        max_section_chars: int = DEFAULT_MAX_SECTION_CHARS,
        concepts: Mapping[str, str] | None = None,
        tool_input_chars: int = 400,
        tool_output_chars: int = 800,
        thinking_chars: int = 1500,
    ) -> None:
        self.max_section_chars = max_section_chars
        self.concepts = dict(DEFAULT_CONCEPTS if concepts is None else concepts)
        self._patterns = [(n, re.compile(p, re.IGNORECASE)) for n, p in self.concepts.items()]
        self.caps = (tool_input_chars, tool_output_chars, thinking_chars)
        settings = json.dumps([sorted(self.concepts.items()), self.caps])
        self.version = f"1+{blake3(settings.encode()).hexdigest(length=4)}"

    def parse(self, lines: Iterable[Line | ParseIssue], path: str) -> ParserOutput:
        """Yield turns, summaries and compaction summaries; an issue per bad line."""
        return _Session(self, path).run(lines)

    def concepts_of(self, text: str) -> list[str]:
        return [name for name, pattern in self._patterns if pattern.search(text)]


class _Session:
    """Parsing state of one file: the open turn, and summaries awaiting an identity.

    Nothing else carries over from one turn to the next (no counters, no session
    state): a turn's identity (project, session, branch …) comes from its own
    records, so parsing from any turn boundary gives what a full parse gives there.
    """

    def __init__(self, parser: ClaudeCodeParser, path: str) -> None:
        self.p = parser
        self.path = path
        self.turn: _Turn | None = None
        # ``summary`` records carry no cwd or session: they take the identity of the
        # next record that has one (or the file's path at the end).
        self.waiting: list[_Turn] = []

    def run(self, lines: Iterable[Line | ParseIssue]) -> Iterator[Section | ParseIssue | Seam]:
        for item in lines:
            if isinstance(item, ParseIssue):
                yield item
            elif not is_blank(item.text):
                yield from self._line(item)
        yield from self._close()
        yield from self._release({})

    @property
    def idle(self) -> bool:
        """No turn open and nothing waiting: a resumable boundary."""
        return self.turn is None and not self.waiting

    def _line(self, line: Line) -> Iterator[Section | ParseIssue | Seam]:
        try:
            record = json.loads(line.text)
        except ValueError as exc:
            if not getattr(line, "terminated", True):
                return  # a last line still being written: read again when the file grows
            yield ParseIssue(f"invalid JSON: {exc}", line.number, line.offset, "ParseError")
            return
        except RecursionError:
            yield ParseIssue("invalid JSON: nested too deeply", line.number, line.offset)
            return
        if not isinstance(record, dict):
            kind = type(record).__name__
            yield ParseIssue(f"not a JSON object ({kind})", line.number, line.offset)
            return
        yield from self._record(record, line)

    def _record(self, r: dict[str, Any], line: Line) -> Iterator[Section | Seam]:
        if self.waiting and _identity(r):
            yield from self._release(_identity(r))
        kind = r.get("type")
        message = r.get("message")
        role = message.get("role") if isinstance(message, dict) else None
        if kind == "summary":
            yield from self._close()
            turn = _Turn("summary", line.number, line.offset)
            self._touch(turn, r, line)
            turn.add("Summary: ", scrub(str(r.get("summary", ""))))
            self.waiting.append(turn)
        elif kind == "system":
            if r.get("subtype") == "compact_boundary":
                yield from self._close()
        elif kind in {"tool_use", "tool_result"}:
            self._top_level_tool(kind, r, line)
        elif kind == "user" or (kind not in BOOKKEEPING and role == "user"):
            yield from self._user(r, message, line)
        elif kind == "assistant" or (kind not in BOOKKEEPING and role == "assistant"):
            yield from self._assistant(r, message, line)

    # -- records ------------------------------------------------------------------

    def _user(self, r: dict[str, Any], message: Any, line: Line) -> Iterator[Section | Seam]:
        content = message.get("content") if isinstance(message, dict) else None
        if r.get("isCompactSummary"):
            text = f"Compaction summary: {result_text(content)}"
            yield from self._standalone("compact_summary", text, r, line)
            return
        if r.get("isMeta"):
            return  # system reminders and hook context: not the user's words
        blocks = content if isinstance(content, list) else [content]
        prompt = [t for b in blocks if (t := _prompt_text(b))]
        results = [b for b in blocks if isinstance(b, dict) and b.get("type") == "tool_result"]
        if prompt and not results and not prompt[0].lstrip().startswith(_NOT_A_PROMPT):
            yield from self._close()
            if self.idle:
                yield Seam(line.offset, line.number)  # resumable: nothing is carried over
            turn = self._open("turn", r, line)
            turn.add("User: ", scrub("\n".join(prompt)))
            return
        turn = self._current(r, line)
        for text in prompt:
            turn.add("User: ", cap(_TAG.sub(" ", text), self.p.caps[1]))
        out_cap = self.p.caps[1]
        for block in results:
            name = turn.tool_names.get(str(block.get("tool_use_id")))
            error = bool(block.get("is_error"))
            turn.add(describe_result(name, block.get("content"), error, out_cap))
        yield from self._spill(turn)

    def _assistant(self, r: dict[str, Any], message: Any, line: Line) -> Iterator[Section]:
        turn = self._current(r, line)
        if isinstance(message, dict):
            if isinstance(message.get("model"), str):
                turn.models[message["model"]] = None
            content = message.get("content")
            for block in content if isinstance(content, list) else [content]:
                self._assistant_block(turn, block)
        yield from self._spill(turn)

    def _assistant_block(self, turn: _Turn, block: Any) -> None:
        in_cap, _, think_cap = self.p.caps
        if isinstance(block, str):
            turn.add("Assistant: ", scrub(block))
        elif not isinstance(block, dict):
            return
        elif block.get("type") == "thinking":
            turn.add("Thinking: ", cap(str(block.get("thinking", "")), think_cap))
        elif block.get("type") == "tool_use":
            name = str(block.get("name") or "tool")
            params = _params(block.get("input"))
            turn.tool_names[str(block.get("id"))] = name
            turn.facts.note(name, params)
            turn.add(describe_call(name, params, in_cap))
        elif block.get("type") == "image":
            turn.add("Assistant: [image]")
        elif isinstance(block.get("text"), str):
            turn.add("Assistant: ", scrub(block["text"]))

    def _top_level_tool(self, kind: str, r: dict[str, Any], line: Line) -> None:
        turn = self._current(r, line)
        name = str(r.get("name") or "tool")
        if kind == "tool_use":
            params = _params(r.get("input"))
            turn.facts.note(name, params)
            turn.add(describe_call(name, params, self.p.caps[0]))
        else:
            turn.add(describe_result(name, r.get("output"), False, self.p.caps[1]))

    # -- turns --------------------------------------------------------------------

    def _open(self, kind: str, r: dict[str, Any], line: Line) -> _Turn:
        turn = _Turn(kind, line.number, line.offset)
        self._touch(turn, r, line)
        self.turn = turn
        return turn

    def _current(self, r: dict[str, Any], line: Line) -> _Turn:
        """The open turn (a session may start with the assistant: a turn without prompt)."""
        turn = self.turn or self._open("turn", r, line)
        self._touch(turn, r, line)
        return turn

    def _touch(self, turn: _Turn, r: dict[str, Any], line: Line) -> None:
        turn.last_line = line.number
        turn.byte_end = line.offset + line.length
        stamp = r.get("timestamp")
        if isinstance(stamp, str) and _epoch(stamp) is not None:
            turn.ts_first = turn.ts_first or stamp
            turn.ts_last = stamp
        for name, value in _identity(r).items():
            turn.meta.setdefault(name, value)
        if r.get("isSidechain") is True:
            turn.meta["sidechain"] = True

    def _standalone(self, kind: str, text: str, r: dict[str, Any], line: Line) -> Iterator[Section]:
        yield from self._close()
        turn = self._open(kind, r, line)
        turn.add("", scrub(text))
        yield from self._close()

    def _spill(self, turn: _Turn) -> Iterator[Section]:
        if turn.chars > MAX_TURN_CHARS:
            yield from self._emit(turn)
            turn.parts.clear()
            turn.chars = 0

    def _close(self) -> Iterator[Section]:
        if self.turn is not None:
            yield from self._emit(self.turn)
            self.turn = None

    def _release(self, identity: Mapping[str, Any]) -> Iterator[Section]:
        for turn in self.waiting:
            for name, value in identity.items():
                turn.meta.setdefault(name, value)
            yield from self._emit(turn)
        self.waiting.clear()

    def _emit(self, turn: _Turn) -> Iterator[Section]:
        text = "\n".join(turn.parts)
        if is_blank(text):
            return
        meta = self._metadata(turn, text)
        heading = f"{meta['project']} · {meta['session']} · {turn.ts_first or '?'}"
        for piece in split_text(text, self.p.max_section_chars):
            if not is_blank(piece):
                yield Section(
                    piece, turn.first_line, turn.last_line, turn.byte_start, turn.byte_end,
                    heading, meta,
                )  # fmt: skip

    def _metadata(self, turn: _Turn, text: str) -> dict[str, Any]:
        cwd = turn.meta.get("cwd")
        meta: dict[str, Any] = {
            "kind": turn.kind,
            "project": project_name(cwd, self.path) if cwd else _project_from_path(self.path),
            "session": _session_from_path(self.path),
            "timestamp": turn.ts_first,
            "timestamp_end": turn.ts_last,
            "ts": _epoch(turn.ts_first) if turn.ts_first else None,
            "model": next(iter(turn.models), None),
            "sidechain": False,
            **turn.meta,
            **turn.facts.metadata(),
            "concepts": self.p.concepts_of(text),
            "record": turn.first_line,
        }
        return meta


def _identity(r: Mapping[str, Any]) -> dict[str, Any]:
    """Where and in which session a record was written (only the fields it has)."""
    out: dict[str, Any] = {}
    cwd = r.get("cwd") if isinstance(r.get("cwd"), str) else r.get("project")
    if isinstance(cwd, str) and cwd.startswith("/"):
        out["cwd"] = cwd
    for key, name in (("sessionId", "session"), ("gitBranch", "git_branch"), ("agentId", "agent")):
        value = r.get(key)
        if isinstance(value, str) and value:
            out[name] = value
    return out


def _params(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _prompt_text(block: Any) -> str | None:
    """The user's own words in a content block (``None`` for tool results and blanks)."""
    if isinstance(block, str):
        text = block
    elif isinstance(block, dict) and block.get("type") == "text":
        text = str(block.get("text", ""))
    elif isinstance(block, dict) and block.get("type") == "image":
        return "[image]"
    else:
        return None
    return text if text.strip() else None


def _epoch(stamp: str) -> float | None:
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _mangled(path: str) -> str:
    # Claude Code names a project's folder after the launch directory with its
    # separators replaced by "-"; compare in a form where every non-alphanumeric is "-".
    return _NON_ALNUM.sub("-", path)


def project_name(cwd: str, path: str) -> str:
    """The real project name: the launch directory of the session, by its base name.

    ``cwd`` follows the shell (``cd assets`` makes it ``…/spotter/assets``), so the
    ancestor of ``cwd`` whose mangled form is the transcript's project folder
    (``-home-me-projects-spotter``) is the launch directory; without such an
    ancestor (a moved or sanitised transcript) it is ``cwd`` itself.
    """
    folder = _mangled(_project_from_path(path))
    current = cwd.rstrip("/") or "/"
    while current not in ("", "/"):
        if _mangled(current) == folder:
            return os.path.basename(current)
        current = os.path.dirname(current)
    return os.path.basename(cwd.rstrip("/")) or cwd


def _session_parts(path: str) -> list[str]:
    return path.replace(os.sep, "/").split("/")


def _session_from_path(path: str) -> str:
    """``<session>.jsonl`` → session; ``<session>/subagents/agent-x.jsonl`` → session."""
    parts = _session_parts(path)
    if len(parts) >= 3 and parts[-2] == "subagents":
        return parts[-3]
    return os.path.splitext(parts[-1])[0]


def _project_from_path(path: str) -> str:
    """The project directory's name (Claude Code's mangled form: the best left)."""
    parts = _session_parts(path)
    index = -4 if len(parts) >= 4 and parts[-2] == "subagents" else -2
    return parts[index] if len(parts) >= -index else ""


__all__ = ["BOOKKEEPING", "DEFAULT_CONCEPTS", "ClaudeCodeParser"]
