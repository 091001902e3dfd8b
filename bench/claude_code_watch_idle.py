"""``headrace watch --preset claude-code`` over 1,000 unchanged transcripts: idle CPU and
append latency.

Builds ``--files`` small transcripts from the repository's fixtures (each copy ``k``
gets new UUIDs, its own project folder and varied text, as in
``claude_code_corpus``), spread over ``--projects`` project folders, plus (unless
``--big-mb 0``) one ~``--big-mb`` MB session built from the largest shared real
session. Starts ``python -m headrace watch --preset claude-code ROOT`` as a
subprocess (users' command, default watch settings), waits for its state file to
say it caught up, then:

1. **idle CPU**: the watcher process's CPU time (user + system, its children
   included) over ``--idle-s`` seconds of wall time with nothing changing
   (rescans at the default 60 s interval do run inside the window);
2. **append latency**: ``--appends`` times, one new prompt line with a unique
   marker word is appended to the big session; the latency runs from just before
   the write until a keyword (FTS) query on a separate read-only connection finds
   the marker: debounce, change detection, parse, embed and commit included.

    flock /tmp/headrace-bench.lock python bench/claude_code_watch_idle.py
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import psutil
from claude_code_append import SESSION, prompt
from claude_code_append import build as build_big
from claude_code_corpus import OUT, _line

from headrace.ledger.db import connect
from headrace.live.state import read_state, state_path

FIXTURES = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "claude_code"
SAMPLES = ("short.jsonl",)  # 10 KB each: 1,000 copies make ~10 MB


def build_small(root: Path, files: int, projects: int) -> int:
    sources = [
        (FIXTURES / "-home-marco-projects-spotter" / name).read_text(encoding="utf-8")
        for name in SAMPLES
    ]
    total = 0
    for k in range(files):
        folder = root / f"-home-USER-projects-spotter-{k % projects}"
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"session-{k:04d}.jsonl"
        lines = sources[k % len(sources)].splitlines()
        path.write_text("".join(_line(raw, k) + "\n" for raw in lines), encoding="utf-8")
        total += path.stat().st_size
    return total


def cpu_seconds(proc: psutil.Process) -> float:
    def own(p: psutil.Process) -> float:
        t = p.cpu_times()
        return float(t.user + t.system)

    total = own(proc)
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += own(child)
    return total


def wait_caught_up(index: Path, proc: subprocess.Popen[bytes], timeout: float) -> float:
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if proc.poll() is not None:
            raise SystemExit(f"watcher exited early with {proc.returncode}")
        state = read_state(state_path(index))
        if state and state.get("phase") == "following" and state.get("queue_depth") == 0:
            return time.perf_counter() - started
        time.sleep(0.2)  # polling interval of a slow condition
    raise SystemExit(f"watcher did not catch up within {timeout:.0f} s")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--projects", type=int, default=20)
    ap.add_argument("--big-mb", type=float, default=10.0)
    ap.add_argument("--idle-s", type=float, default=60.0)
    ap.add_argument("--appends", type=int, default=10)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--catch-up-timeout", type=float, default=900.0)
    args = ap.parse_args()
    work = OUT / "cc-watch-idle"
    shutil.rmtree(work, ignore_errors=True)
    root = work / "projects"
    small_bytes = build_small(root, args.files, args.projects)
    big = root / "-home-USER-projects-spotter" / f"{SESSION}.jsonl"
    if args.big_mb > 0:
        build_big(big, args.big_mb)
    index = work / "index.sqlite"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "headrace", "watch", "--preset", "claude-code", str(root)]
    cmd += ["--index", str(index), "--embedder", args.embedder, "--quiet"]
    log = (work / "watch.log").open("wb")
    proc = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
    result: dict[str, object] = {
        "files": args.files + (1 if args.big_mb > 0 else 0),
        "small_mb": round(small_bytes / 1e6, 1),
        "big_mb": round(big.stat().st_size / 1e6, 1) if args.big_mb > 0 else 0,
        "embedder": args.embedder,
    }
    try:
        watcher = psutil.Process(proc.pid)
        result["catch_up_s"] = round(wait_caught_up(index, proc, args.catch_up_timeout), 1)
        before = read_state(state_path(index)) or {}
        cpu0, wall0 = cpu_seconds(watcher), time.perf_counter()
        time.sleep(args.idle_s)  # the measurement window itself, not a synchronisation
        cpu1, wall1 = cpu_seconds(watcher), time.perf_counter()
        after = read_state(state_path(index)) or {}
        result["idle_window_s"] = round(wall1 - wall0, 1)
        result["idle_cpu_s"] = round(cpu1 - cpu0, 3)
        result["idle_cpu_percent"] = round(100 * (cpu1 - cpu0) / (wall1 - wall0), 3)
        result["rescans_in_window"] = int(after.get("rescans", 0)) - int(before.get("rescans", 0))
        result["rss_mb"] = round(watcher.memory_info().rss / 2**20)
        if args.big_mb > 0 and args.appends > 0:
            conn = connect(index, readonly=True)
            latencies: list[float] = []
            for n in range(args.appends):
                marker = f"zqidlemarker{n:04d}"
                query = "SELECT count(*) FROM chunks_fts WHERE chunks_fts MATCH ?"
                started = time.perf_counter()
                with big.open("a", encoding="utf-8") as handle:
                    handle.write(prompt(marker))
                while not conn.execute(query, (marker,)).fetchall()[0][0]:
                    if time.perf_counter() - started > 60:
                        raise SystemExit(f"{marker} not searchable within 60 s")
                    time.sleep(0.005)  # polling interval; the query decides
                latencies.append(time.perf_counter() - started)
            conn.close()
            ordered = sorted(latencies)
            result["appends"] = len(latencies)
            result["append_p50_s"] = round(statistics.median(latencies), 3)
            result["append_p90_s"] = round(ordered[int(0.9 * (len(ordered) - 1))], 3)
            result["append_max_s"] = round(ordered[-1], 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            result["watch_exit"] = proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            result["watch_exit"] = "killed"
        log.close()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
