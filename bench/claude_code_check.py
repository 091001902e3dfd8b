"""Every shared Claude Code transcript parses without a crash; issues only where expected.

Reads ``../shared/data/claude-code`` (not available in a user's clone, hence a
bench script rather than a test). Prints per file: records, sections by kind,
issues with their line numbers, and the parse time. Exits 1 if any file raises,
or if a file other than the hand-written ``edge_cases.jsonl`` (3 non-object
lines) yields an issue.

    python bench/claude_code_check.py [DATA_DIR]
"""

from __future__ import annotations

import json
import sys
import time
from collections import Counter
from pathlib import Path

from headrace.parsers.claude_code import ClaudeCodeParser
from headrace.readers.lines import LineReader
from headrace.records import ParseIssue, Section

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "claude-code"
EXPECTED_ISSUES = {"edge_cases.jsonl": [13, 15, 16]}


def check(path: Path) -> dict[str, object]:
    started = time.perf_counter()
    kinds: Counter[str] = Counter()
    issues: list[int | None] = []
    for item in ClaudeCodeParser().parse(LineReader(str(path)), str(path)):
        if isinstance(item, Section):
            kinds[str(item.metadata["kind"])] += 1
        elif isinstance(item, ParseIssue):
            issues.append(item.line)
    return {
        "sections": dict(kinds),
        "issue_lines": issues,
        "ms": round((time.perf_counter() - started) * 1000, 1),
    }


def main() -> int:
    root = Path(sys.argv[1]) if len(sys.argv) > 1 else DATA
    files = sorted(root.rglob("*.jsonl"))
    bad = 0
    for path in files:
        try:
            result = check(path)
        except Exception as exc:  # the point of this script: report any crash
            print(f"CRASH {path}: {exc!r}")
            bad += 1
            continue
        expected = EXPECTED_ISSUES.get(path.name, [])
        ok = result["issue_lines"] == expected
        bad += not ok
        print(f"{'ok ' if ok else 'BAD'} {path.relative_to(root)} {json.dumps(result)}")
    print(f"{len(files)} files, {bad} bad")
    return 1 if bad or not files else 0


if __name__ == "__main__":
    sys.exit(main())
