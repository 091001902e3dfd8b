"""A new line appended to a ~10 MB Claude Code transcript: how fast is it searchable?

Builds one transcript of ``--mb`` megabytes (varied copies of the largest real
session, one session id), ingests it cold, then ``--appends`` times appends one
new prompt line carrying a unique marker word and runs the live mode's unit of
work (``Index.ingest_paths``, what ``headrace watch`` calls for a changed file);
the latency is from just before the write to the return of that call (its
transaction is committed: a search sees it), and the marker is then looked up.
Excludes the watcher's debounce (0.25 s by default) and change detection.

    flock /tmp/headrace-bench.lock python bench/claude_code_append.py --mb 10
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from claude_code_corpus import DATA, OUT, _line

from headrace import Index
from headrace.config.settings import load_settings
from headrace.embedding.registry import make_embedder
from headrace.presets import apply_settings, get_preset

SOURCE = DATA / "marot-spotter" / "8463c716-a2ea-4c14-9efa-87158ebd9f20.jsonl"
SESSION = "8463c716-a2ea-4c14-9efa-87158ebd9f20"


def build(path: Path, mb: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = SOURCE.read_text(encoding="utf-8").splitlines()
    with path.open("w", encoding="utf-8") as out:
        k = 0
        while out.tell() < mb * 1e6:
            for raw in lines:
                varied = json.loads(_line(raw, k))
                varied["sessionId"] = SESSION
                out.write(json.dumps(varied, separators=(",", ":")) + "\n")
            k += 1


def prompt(marker: str) -> str:
    record = {
        "type": "user",
        "sessionId": SESSION,
        "cwd": "/home/USER/projects/spotter",
        "timestamp": "2026-02-13T10:00:00.000Z",
        "message": {"role": "user", "content": f"please look at the {marker} module again"},
    }
    return json.dumps(record) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=10.0)
    ap.add_argument("--appends", type=int, default=20)
    ap.add_argument("--embedder", default="minilm")
    args = ap.parse_args()
    work = OUT / f"cc-append-{args.mb:g}"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "projects"
    transcript = root / "-home-USER-projects-spotter" / f"{SESSION}.jsonl"
    build(transcript, args.mb)
    settings = apply_settings(
        load_settings(index=str(work / "index.sqlite"), embedder=args.embedder),
        get_preset("claude-code"),
    )
    idx = Index(settings=settings, embedder=make_embedder(args.embedder))
    started = time.perf_counter()
    idx.ingest([str(root)])
    cold = time.perf_counter() - started
    latencies, found, resumed = [], 0, 0
    for n in range(args.appends):
        marker = f"zqmarker{n:04d}"
        started = time.perf_counter()
        with transcript.open("a", encoding="utf-8") as handle:
            handle.write(prompt(marker))
        stats = idx.ingest_paths([str(root)], [str(transcript)])
        latencies.append(time.perf_counter() - started)
        resumed += stats.bytes_resumed
        hits = idx.search(marker, 1, mode="keyword")
        found += bool(hits) and marker in hits[0].text
    idx.close()
    print(
        json.dumps(
            {
                "transcript_mb": round(transcript.stat().st_size / 1e6, 1),
                "cold_ingest_s": round(cold, 1),
                "appends": args.appends,
                "found": found,
                "bytes_resumed_per_append": round(resumed / args.appends),
                "p50_s": round(statistics.median(latencies), 3),
                "p95_s": round(sorted(latencies)[int(0.95 * (len(latencies) - 1))], 3),
                "max_s": round(max(latencies), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
