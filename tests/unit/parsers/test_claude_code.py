"""ClaudeCodeParser on real transcript excerpts (tests/fixtures/claude_code: MIT, SOURCES.tsv)."""

from __future__ import annotations

import base64
import json
import re
from datetime import datetime
from pathlib import Path

from headrace.parsers.claude_code import DEFAULT_CONCEPTS, ClaudeCodeParser, project_name
from headrace.readers.lines import LineReader
from headrace.records import Line, ParseIssue, Seam, Section

FIXTURES = Path(__file__).parents[2] / "fixtures" / "claude_code"
PROJECT = FIXTURES / "-home-marco-projects-spotter"
SHORT = PROJECT / "short.jsonl"
TOOL_HEAVY = PROJECT / "tool_heavy.jsonl"
COMPACTED = PROJECT / "4d5611e5-241a-462a-8d15-5122611a9569.jsonl"
SUBAGENT = PROJECT / "4d5611e5-241a-462a-8d15-5122611a9569/subagents/agent-acompact-e1f845.jsonl"
EDGE_CASES = Path(__file__).parents[2] / "fixtures" / "parsers" / "cc_edge_cases.jsonl"
BASE64_RUN = re.compile(r"[A-Za-z0-9+/]{120,}")


def parse(path: Path, parser: ClaudeCodeParser | None = None) -> list[Section | ParseIssue]:
    return list((parser or ClaudeCodeParser()).parse(LineReader(str(path)), str(path)))


def sections(path: Path, parser: ClaudeCodeParser | None = None) -> list[Section]:
    return [s for s in parse(path, parser) if isinstance(s, Section)]


def lines_of(records: list[object]) -> list[Line]:
    out, offset = [], 0
    for n, record in enumerate(records, 1):
        text = record if isinstance(record, str) else json.dumps(record)
        out.append(Line(n, offset, len(text) + 1, text))
        offset += len(text) + 1
    return out


def parse_records(records: list[object], path: str = "/p/-tmp-x/s1.jsonl") -> list[Section]:
    found = ClaudeCodeParser().parse(lines_of(records), path)
    return [s for s in found if isinstance(s, Section)]


def test_a_prompt_with_its_answer_and_tool_calls_is_one_turn() -> None:
    found = sections(SHORT)
    assert len(found) == 1
    turn = found[0]
    lines = turn.text.splitlines()
    assert lines[0] == "User: mix phx.server doesnt seem to start"
    assert "Tool Bash: mix phx.server 2>&1 | head -80" in lines
    assert "Tool Glob: mix.exs /home/marco/projects/spotter" in lines
    assert any(x.startswith("Result Bash (error): The user doesn't want") for x in lines)
    assert lines[-1] == "User: [Request interrupted by user for tool use]"  # not a new turn
    assert "Assistant: Let me check the project structure" in turn.text
    assert "signature" not in turn.text
    assert "EsMC" not in turn.text
    # lines 1-3 are a snapshot and hook progress, 14-15 local-command system records
    assert (turn.line_start, turn.line_end) == (4, 13)


def test_turn_metadata_comes_from_the_records() -> None:
    meta = sections(SHORT)[0].metadata
    assert meta["project"] == "spotter"  # the real folder, not "-home-marco-projects-spotter"
    assert meta["session"] == "55604662-cf2a-4331-851a-ec234028f8ca"
    assert meta["git_branch"] == "master"
    assert meta["cwd"] == "/home/marco/projects/spotter"
    assert meta["model"] == "claude-opus-4-6"
    assert meta["tools"] == ["Bash", "Glob"]
    assert meta["commands"] == ["mix phx.server 2>&1 | head -80"]
    assert meta["timestamp"] == "2026-02-10T21:11:56.846Z"
    assert meta["timestamp_end"] == "2026-02-10T21:12:02.480Z"
    expected = datetime.fromisoformat("2026-02-10T21:11:56.846+00:00").timestamp()
    assert meta["ts"] == expected
    assert meta["kind"] == "turn"
    assert meta["sidechain"] is False
    assert "debugging" in meta["concepts"]  # "error" in the rejected tool result


def test_files_read_edited_written_are_collected() -> None:
    second = sections(TOOL_HEAVY)[1]
    assert second.metadata["files_read"] == ["/home/marco/projects/spotter/assets/js/app.js"]
    assert second.metadata["file_names"] == ["app.js"]
    assert second.metadata["tools"] == ["WebSearch", "Glob", "Read", "WebFetch"]
    records = [
        {"type": "user", "cwd": "/w/app", "message": {"role": "user", "content": "fix it"}},
        {
            "type": "assistant",
            "message": {
                "role": "assistant",
                "content": [
                    {"type": "tool_use", "id": "t1", "name": "Edit",
                     "input": {"file_path": "/w/app/a.py", "old_string": "x", "new_string": "y"}},
                    {"type": "tool_use", "id": "t2", "name": "Write",
                     "input": {"file_path": "/w/app/b.py", "content": "print(1)"}},
                    {"type": "tool_use", "id": "t3", "name": "MultiEdit",
                     "input": {"file_path": "/w/app/c.py", "edits": [{}, {}]}},
                ],
            },
        },
    ]  # fmt: skip
    meta = parse_records(records)[0].metadata
    assert meta["files_edited"] == ["/w/app/a.py", "/w/app/c.py"]
    assert meta["files_written"] == ["/w/app/b.py"]
    assert meta["files"] == ["/w/app/a.py", "/w/app/c.py", "/w/app/b.py"]


def test_a_compacted_session_keeps_the_summary_as_its_own_sections() -> None:
    found = sections(COMPACTED)
    kinds = [s.metadata["kind"] for s in found]
    assert "compact_summary" in kinds
    summary = [s for s in found if s.metadata["kind"] == "compact_summary"]
    assert summary[0].text.startswith("Compaction summary: This session is being continued")
    assert {s.line_start for s in summary} == {16}  # line 755 of the original file
    before = [s for s in found if s.line_end < 15]
    after = [s for s in found if s.line_start > 16]
    assert before
    assert after
    assert all(s.metadata["kind"] == "turn" for s in before + after)


def test_subagent_transcripts_carry_agent_and_sidechain() -> None:
    found = sections(SUBAGENT)
    assert found
    for s in found:
        assert s.metadata["agent"] == "acompact-e1f845"
        assert s.metadata["sidechain"] is True
        assert s.metadata["session"] == "4d5611e5-241a-462a-8d15-5122611a9569"


def test_malformed_and_non_object_lines_are_issues_with_line_numbers() -> None:
    out = parse(EDGE_CASES)
    issues = [i for i in out if isinstance(i, ParseIssue)]
    assert [(i.line, i.message) for i in issues] == [
        (13, "not a JSON object (str)"),
        (15, "not a JSON object (int)"),
        (16, "not a JSON object (list)"),
    ]
    assert all(i.offset is not None for i in issues)
    assert any(s.metadata["kind"] == "summary" for s in out if isinstance(s, Section))
    broken = parse_records(["{not json"])
    assert broken == []
    issues = [
        i
        for i in ClaudeCodeParser().parse(lines_of(["{not json"]), "x")
        if isinstance(i, ParseIssue)
    ]
    assert issues[0].line == 1
    assert issues[0].message.startswith("invalid JSON")


def test_bookkeeping_records_are_not_indexed_and_unknown_types_follow_the_rule() -> None:
    found = sections(FIXTURES / "schema_small.jsonl")
    text = "\n".join(s.text for s in found)
    for bookkeeping in ("hook_success", "Stage0 AI title", "bypassPermissions", "stage0key"):
        assert bookkeeping not in text
    records: list[object] = [
        {"type": "user", "message": {"role": "user", "content": "first question"}},
        {"type": "progress", "data": {"type": "bash_progress", "output": "noise"}},
        {"type": "brand-new-kind", "message": {"role": "assistant", "content": "kept answer"}},
        {"type": "another-new-kind", "payload": {"text": "skipped"}},
        {"silly": "no type at all"},
    ]
    found = parse_records(records)
    assert len(found) == 1
    assert found[0].text == "User: first question\nAssistant: kept answer"


def test_old_schema_top_level_tool_records() -> None:
    found = sections(FIXTURES / "schema_drift.jsonl")
    assert found[0].text.splitlines()[:3] == [
        "User: Open README",
        "Tool bash: cat README.md",
        "Result bash: # Title",
    ]
    assert found[0].metadata["project"] == "project"  # from the old "project" field
    assert found[0].metadata["commands"] == ["cat README.md"]


def test_base64_images_never_enter_the_text() -> None:
    blob = base64.b64encode(bytes(range(256)) * 20).decode()
    image = {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": blob}}
    records: list[object] = [
        {"type": "user", "message": {"role": "user", "content": [
            {"type": "text", "text": "see"}, image]}},
        {"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "Read", "input": {"file_path": "/a.png"}}]}},
        {"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": [image]},
            {"type": "tool_result", "tool_use_id": "t2",
             "content": f"data:image/png;base64,{blob}"},
        ]}},
    ]  # fmt: skip
    text = "\n".join(s.text for s in parse_records(records))
    assert "[image]" in text
    assert blob[:100] not in text
    assert not BASE64_RUN.search(text)
    assert "[base64:" in text


def test_tool_outputs_and_inputs_are_capped() -> None:
    huge = "line of output\n" * 5000
    records: list[object] = [
        {"type": "user", "message": {"role": "user", "content": "run it"}},
        {"type": "assistant", "message": {"role": "assistant", "content": [
            {"type": "tool_use", "id": "t1", "name": "Bash", "input": {"command": "x" * 5000}}]}},
        {"type": "user", "message": {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": huge}]}},
    ]  # fmt: skip
    parser = ClaudeCodeParser(tool_input_chars=100, tool_output_chars=200)
    found = list(parser.parse(lines_of(records), "/p/-x/s.jsonl"))
    text = "\n".join(s.text for s in found if isinstance(s, Section))
    call = next(x for x in text.splitlines() if x.startswith("Tool Bash:"))
    assert len(call) < 160
    assert "[+4900 chars]" in call
    result = text[text.index("Result Bash:") :]
    assert len(result) < 300
    assert f"[+{len(huge.strip()) - 200} chars]" in result


def test_parsing_from_a_turn_boundary_gives_the_rest_of_a_full_parse() -> None:
    lines = [x for x in LineReader(str(TOOL_HEAVY))]
    full = sections(TOOL_HEAVY)
    second = full[1]
    rest = [
        s
        for s in ClaudeCodeParser().parse(lines[second.line_start - 1 :], str(TOOL_HEAVY))
        if isinstance(s, Section)
    ]
    assert rest == full[1:]  # no state crosses a turn boundary


def test_concepts_are_configurable_and_change_the_version() -> None:
    custom = ClaudeCodeParser(concepts={"elixir": r"\b(?:phoenix|mix)\b"})
    assert custom.version != ClaudeCodeParser().version
    assert sections(SHORT, custom)[0].metadata["concepts"] == ["elixir"]
    assert set(DEFAULT_CONCEPTS) >= {"docker", "testing", "debugging", "deployment"}


def test_project_name_is_the_launch_directory() -> None:
    folder = "/home/me/.claude/projects/-home-me-src-my-app/s.jsonl"
    assert project_name("/home/me/src/my-app/assets/js", folder) == "my-app"
    assert project_name("/elsewhere/tool", folder) == "tool"
    sub = "/x/-home-me-src-my-app/s1/subagents/agent-1.jsonl"
    assert project_name("/home/me/src/my-app", sub) == "my-app"


def test_seams_mark_turn_starts_and_resuming_at_any_seam_gives_the_rest() -> None:
    path = str(TOOL_HEAVY)
    lines = list(LineReader(path))
    full = list(ClaudeCodeParser().parse(lines, path))
    seams = [s for s in full if isinstance(s, Seam)]
    assert [s.line for s in seams] == [4, 26]
    starts = {s.line_start for s in full if isinstance(s, Section)}
    for seam in seams:
        assert seam.line in starts  # a prompt opening a turn
        rest = list(ClaudeCodeParser().parse(lines[seam.line - 1 :], path))
        assert rest == full[full.index(seam) :]  # the seam itself, then the same output
