"""Large and growing files (issue 3): keyword-only throughput, append, resume.

    flock /tmp/headrace-bench.lock python bench/large_files.py throughput --mb 200 --mb 1000
    flock /tmp/headrace-bench.lock python bench/large_files.py append --base-mb 1000
    flock /tmp/headrace-bench.lock python bench/large_files.py append --base-mb 30 --embedder hash
    flock /tmp/headrace-bench.lock python bench/large_files.py resume --mb 1000
    flock /tmp/headrace-bench.lock python bench/large_files.py fts5 --mb 100
    flock /tmp/headrace-bench.lock python bench/large_files.py append --base-mb 1000 \
        --keep bench/out/large-append   # the base is built once, then reused

The data is a synthetic JSONL log (fixed seed: timestamps, levels, services, 8-60
words of text, a nested context), generated under ``--work`` (default /tmp) and
deleted afterwards. Every ingest runs in a fresh child process whose peak RSS is
sampled every 50 ms by the parent. Figures are printed; nothing is asserted.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psutil

_VOCAB = """request response timeout retry commit ledger segment cursor append rotate shard
replica vector index query token user session cache miss hit disk queue flush worker
thread lock latency error warning started finished accepted rejected"""
WORDS = _VOCAB.split()


def generate(path: Path, megabytes: float, seed: int = 1, start: int = 0) -> int:
    """Append about ``megabytes`` of JSONL records to ``path``; returns records written."""
    rng = random.Random(seed * 1_000_003 + start)
    target, written, n = int(megabytes * (1 << 20)), 0, start
    with path.open("a", encoding="utf-8") as out:
        while written < target:
            batch = []
            for _ in range(1000):
                rec = {
                    "ts": 1_700_000_000 + n,
                    "level": rng.choice(("INFO", "WARN", "ERROR", "DEBUG")),
                    "service": f"svc-{rng.randint(1, 20)}",
                    "message": " ".join(rng.choices(WORDS, k=rng.randint(8, 60))),
                    "ctx": {"user": f"u{rng.randint(1, 99999)}", "path": f"/api/{n % 977}"},
                }
                batch.append(json.dumps(rec, separators=(",", ":")))
                n += 1
            text = "\n".join(batch) + "\n"
            out.write(text)
            written += len(text)
    return n - start


CHILD = """
import json, sys, time
from headrace import Index, Settings
index, root, embedder = sys.argv[1], sys.argv[2], sys.argv[3]
if embedder == "hash":
    from headrace.testing.embedders import HashEmbedder
    emb = HashEmbedder()
else:
    emb = embedder
t, cpu = time.perf_counter(), time.process_time()
with Index(index, settings=Settings(), embedder=emb) as idx:
    stats = idx.ingest([root])
    snap = stats.snapshot()
snap["wall_s"] = time.perf_counter() - t
snap["ingest_cpu_s"] = time.process_time() - cpu  # all threads, start-up excluded
print(json.dumps(snap))
"""


def run_child(index: Path, root: Path, embedder: str) -> dict[str, Any]:
    """Ingest in a fresh process; returns its run statistics plus peak RSS.

    Also: the child's CPU seconds (user + system), and the peak RSS in the first
    and the second half of its run (flat memory: the two should be equal).
    """
    started = time.perf_counter()
    cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(index), str(root), embedder],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    samples: list[tuple[float, int]] = []
    ps = psutil.Process(proc.pid)
    while proc.poll() is None:
        try:
            samples.append((time.perf_counter(), ps.memory_info().rss))
        except psutil.Error:
            break
        time.sleep(0.05)
    out, _ = proc.communicate()
    cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    result: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - started
    peak = max((r for _, r in samples), default=0)
    result["peak_rss_mb"] = round(peak / (1 << 20), 1)
    if samples:
        mid = (samples[0][0] + samples[-1][0]) / 2
        halves = [max((r for t, r in samples if (t < mid) == first), default=0) for first in (1, 0)]
        result["peak_rss_halves_mb"] = [round(h / (1 << 20), 1) for h in halves]
    result["cpu_s"] = round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 1)
    return result


def cmd_throughput(args: argparse.Namespace, work: Path) -> None:
    for mb in args.mb:
        # --data DIR: the generated logs are kept there and reused by later runs.
        root = Path(args.data) / f"tp{mb}" if args.data else work / f"tp{mb}"
        log = root / "log.jsonl"
        if not log.exists():
            root.mkdir(parents=True, exist_ok=True)
            generate(log.with_suffix(".part"), mb)
            log.with_suffix(".part").rename(log)
        size = log.stat().st_size
        if args.ceilings:
            ceilings(log)
        load = os.getloadavg()[0]
        r = run_child(work / f"tp{mb}.sqlite", root, "none")
        wall, cpu = float(r["wall_s"]), float(r["cpu_s"])
        on_disk = sum(p.stat().st_size for p in work.glob(f"tp{mb}.sqlite*"))
        print(
            f"throughput --embedder none: {size / 1e6:.0f} MB JSONL, {r['chunks_written']} chunks,"
            f" {wall:.1f} s in ingest ({size / 1e6 / wall:.1f} MB/s), child CPU {cpu:.1f} s"
            f" ({size / 1e6 / cpu:.1f} MB per CPU-second), peak RSS {r['peak_rss_mb']} MB"
            f" (first/second half of the run {r.get('peak_rss_halves_mb')}), segments"
            f" {r['segments']}, index {on_disk / 1e6:.0f} MB, load average"
            f" {load:.2f} -> {os.getloadavg()[0]:.2f}",
            flush=True,
        )
        if not args.data:
            shutil.rmtree(root)
        for p in work.glob(f"tp{mb}.sqlite*"):
            p.unlink()


def ceilings(log: Path) -> None:
    """Single-thread ceilings of the stages on ``log`` (in this process, MB/s of JSONL)."""
    import apsw

    from headrace.chunking.chars import CharChunker
    from headrace.chunking.occurrences import BoundedOccurrences
    from headrace.parsers.jsonl import JsonlParser
    from headrace.readers.lines import LineReader
    from headrace.records import Chunk

    path, size = str(log), log.stat().st_size

    def rate(label: str, seconds: float) -> None:
        print(f"  ceiling {label}: {size / 1e6 / seconds:.1f} MB/s", flush=True)

    t = time.perf_counter()
    for _ in LineReader(path):
        pass
    rate("read lines", time.perf_counter() - t)
    t = time.perf_counter()
    for _ in JsonlParser().parse(LineReader(path), path):
        pass
    rate("read + parse JSONL", time.perf_counter() - t)
    texts: list[tuple[str]] = []
    occurrences = BoundedOccurrences(lambda h, below: 0, horizon=1 << 16)
    t = time.perf_counter()
    parsed = JsonlParser().parse(LineReader(path), path)
    chunks = 0
    for item in CharChunker().stream(path, parsed, occurrences=occurrences):  # type: ignore[arg-type]
        if isinstance(item, Chunk):
            chunks += 1
            if len(texts) < 400_000:  # FTS5 is timed on at most these, then scaled
                texts.append((item.text,))
    rate("read + parse + chunk + ids (the producer)", time.perf_counter() - t)
    db = log.with_suffix(".fts.sqlite")
    conn = apsw.Connection(str(db))
    conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16000")
    conn.execute(
        "CREATE VIRTUAL TABLE f USING fts5(text, heading, content='', contentless_delete=1,"
        " tokenize='unicode61 remove_diacritics 2')"
    )
    share = len(texts) / max(1, chunks)
    t = time.perf_counter()
    for start in range(0, len(texts), 4096):
        with conn:
            conn.executemany(
                "INSERT INTO f(text, heading) VALUES (?, '')", texts[start : start + 4096]
            )
    rate("FTS5 insert alone (4,096 rows a transaction)", (time.perf_counter() - t) / share)
    conn.close()
    for p in db.parent.glob(db.name + "*"):
        p.unlink()


FTS5_VARIANTS: dict[str, tuple[str, list[str], int]] = {
    # name: (extra table options, config statements, rows per transaction)
    "index schema (4,096 rows a transaction)": ("", [], 4096),
    "16,384 rows a transaction": ("", [], 16384),
    "pgsz 16000": ("", ["INSERT INTO f(f, rank) VALUES('pgsz', 16000)"], 4096),
    "automerge 16, crisismerge 64": (
        "",
        [
            "INSERT INTO f(f, rank) VALUES('automerge', 16)",
            "INSERT INTO f(f, rank) VALUES('crisismerge', 64)",
        ],
        4096,
    ),
    "automerge 0 (no merging: reference only)": (
        "",
        ["INSERT INTO f(f, rank) VALUES('automerge', 0)"],
        4096,
    ),
    "detail=column (no phrase queries: reference only)": (", detail=column", [], 4096),
    "detail=none (no phrase queries: reference only)": (", detail=none", [], 4096),
}


def cmd_fts5(args: argparse.Namespace, work: Path) -> None:
    """FTS5 insertion alone, one thread, per variant: the store's ceiling (MB/s of
    JSONL whose rendered chunk texts are inserted; CPU seconds of this process)."""
    import apsw

    from headrace.chunking.chars import CharChunker
    from headrace.ledger.migrations import scalar
    from headrace.parsers.jsonl import JsonlParser
    from headrace.readers.lines import LineReader
    from headrace.records import Chunk, ParseIssue

    log = work / "fts.jsonl"
    generate(log, args.mb)
    path, size = str(log), log.stat().st_size
    parsed = JsonlParser().parse(LineReader(path), path)
    sections = (item for item in parsed if not isinstance(item, ParseIssue))  # (as the pipeline)
    texts = [(c.text,) for c in CharChunker().stream(path, sections) if isinstance(c, Chunk)]
    print(
        f"fts5: {size / 1e6:.0f} MB JSONL, {len(texts)} chunk texts, load {os.getloadavg()[0]:.1f}"
    )
    for name, (extra, config, per_txn) in FTS5_VARIANTS.items():
        db = work / "fts.sqlite"
        conn = apsw.Connection(str(db))
        conn.execute("PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA cache_size=-16000")
        conn.execute(
            "CREATE VIRTUAL TABLE f USING fts5(text, heading, content='', contentless_delete=1,"
            f" tokenize='unicode61 remove_diacritics 2'{extra})"
        )
        for statement in config:
            conn.execute(statement)
        cpu, wall = time.process_time(), time.perf_counter()
        for start in range(0, len(texts), per_txn):
            with conn:
                conn.executemany(
                    "INSERT INTO f(text, heading) VALUES (?, '')", texts[start : start + per_txn]
                )
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
        segments = scalar(conn, "SELECT count(*) FROM f_data")
        conn.close()
        on_disk = sum(p.stat().st_size for p in work.glob("fts.sqlite*"))
        print(
            f"  {name}: {size / 1e6 / cpu:.1f} MB per CPU-second ({size / 1e6 / wall:.1f} MB/s"
            f" wall), {on_disk / 1e6:.0f} MB on disk, {segments} f_data rows",
            flush=True,
        )
        for p in work.glob("fts.sqlite*"):
            p.unlink()


def cmd_append(args: argparse.Namespace, work: Path) -> None:
    keep = Path(args.keep) if args.keep else None
    if keep is not None:  # a base built once and reused (it grows by each append)
        work = keep
        work.mkdir(parents=True, exist_ok=True)
    root = work / "app"
    log = root / "app.jsonl"
    index = work / "append.sqlite"
    count = work / "records"
    if keep is not None and index.exists() and count.exists():
        records = int(count.read_text())
        print(f"append base: reusing {log.stat().st_size / 1e6:.0f} MB log and index in {work}")
    else:
        root.mkdir()
        started = time.perf_counter()
        records = generate(log, args.base_mb)
        print(f"append base: generated in {time.perf_counter() - started:.1f} s")
        base = run_child(index, root, args.embedder)
        count.write_text(str(records))
        print(
            f"append base: {log.stat().st_size / 1e6:.0f} MB indexed in"
            f" {float(base['wall_s']):.1f} s"
            f" ({base['chunks_written']} chunks, {base['embeddings_computed']} embeddings,"
            f" peak RSS {base['peak_rss_mb']} MB)"
        )
    for _ in range(args.repeats):
        added = generate(log, args.append_mb, start=records)
        records += added
        count.write_text(str(records))
        r = run_child(index, root, args.embedder)
        print(
            f"append {args.append_mb} MB ({added} records) to the"
            f" {log.stat().st_size / 1e6:.0f} MB log: ingest {float(r['wall_s']):.2f} s"
            f" wall, {float(r['ingest_cpu_s']):.2f} s CPU"
            f" (process incl. start-up {float(r['process_s']):.2f} s; write stage"
            f" {float(r['write_seconds']):.2f} s),"
            f" bytes re-read {log.stat().st_size - int(r['bytes_resumed'])},"
            f" embeddings computed {r['embeddings_computed']}, embedder {args.embedder}"
        )
    if keep is None:
        shutil.rmtree(root)
        for p in work.glob("append.sqlite*"):
            p.unlink()


def _read_position(pid: int, path: Path) -> int | None:
    """The file offset of ``pid``'s open descriptor on ``path`` (Linux /proc)."""
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            if os.readlink(f"/proc/{pid}/fd/{fd}") == str(path):
                for line in Path(f"/proc/{pid}/fdinfo/{fd}").read_text().splitlines():
                    if line.startswith("pos:"):
                        return int(line.split()[1])
    except OSError:
        return None
    return None


def _partial_offset(index: Path) -> int:
    import apsw

    try:
        conn = apsw.Connection(str(index), flags=apsw.SQLITE_OPEN_READONLY)
        row = conn.execute("SELECT max(offset) FROM cursors WHERE mode='partial'").fetchone()
        conn.close()
    except apsw.Error:
        return -1
    return -1 if row is None or row[0] is None else int(row[0])


def cmd_resume(args: argparse.Namespace, work: Path) -> None:
    root = work / "res"
    root.mkdir()
    log = root / "big.jsonl"
    kept = Path(args.data) / f"tp{args.mb}" / "log.jsonl" if args.data else None
    if kept is not None and kept.exists():  # the same bytes (fixed seed), not generated again
        os.link(kept, log)
    else:
        generate(log, args.mb)
    size = log.stat().st_size
    index = work / "resume.sqlite"
    cmd = [sys.executable, "-m", "headrace", "--quiet", "ingest", str(root)]
    cmd += ["--index", str(index), "--embedder", "none"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    read_at_kill = 0
    while proc.poll() is None:
        pos = _read_position(proc.pid, log)
        read_at_kill = max(read_at_kill, pos or 0)
        if _partial_offset(index) >= size // 2:
            read_at_kill = max(read_at_kill, _read_position(proc.pid, log) or 0)
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    cursor = _partial_offset(index)
    print(
        f"resume: killed at durable cursor {cursor / 1e6:.1f} MB of {size / 1e6:.0f} MB;"
        f" reader was at {read_at_kill / 1e6:.1f} MB"
    )
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first_read = first_commit = None
    first_cpu = -1.0
    while proc.poll() is None:
        pos = _read_position(proc.pid, log)
        if first_read is None and pos is not None and pos > cursor:
            first_read = time.perf_counter() - started
            with contextlib.suppress(psutil.Error):
                times = psutil.Process(proc.pid).cpu_times()
                first_cpu = times.user + times.system
        if first_commit is None and _partial_offset(index) > cursor:
            first_commit = time.perf_counter() - started
            if not args.finish:  # the resume is shown; the rest is a plain ingest
                proc.send_signal(signal.SIGKILL)
        time.sleep(0.005)
    total = time.perf_counter() - started
    shown = "never" if first_read is None else f"{first_read:.2f}"
    committed = "never" if first_commit is None else f"{first_commit:.2f} s"
    print(
        f"resume: reading past the cursor {shown} s"
        f" after process start ({first_cpu:.2f} s CPU; includes interpreter and import"
        f" start-up); load {os.getloadavg()[0]:.1f}; first new"
        f" segment cursor committed after {committed};"
        f" bytes re-read after resume {max(0, read_at_kill - cursor) / 1e6:.2f} MB"
        f" (segment 8 MiB); resumed run {'total' if args.finish else 'killed after'}"
        f" {total:.1f} s"
    )
    shutil.rmtree(root)
    for p in work.glob("resume.sqlite*"):
        p.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=tempfile.gettempdir())
    sub = parser.add_subparsers(dest="cmd", required=True)
    tp = sub.add_parser("throughput")
    tp.add_argument("--mb", type=int, action="append", default=[])
    tp.add_argument("--ceilings", action="store_true", help="also time the stages alone")
    tp.add_argument("--data", help="keep the generated logs in this folder and reuse them")
    ap = sub.add_parser("append")
    ap.add_argument("--base-mb", type=float, default=1000)
    ap.add_argument("--append-mb", type=float, default=1)
    ap.add_argument("--embedder", default="none")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--keep", help="folder to build the base in once and reuse (bench/out/...)")
    rs = sub.add_parser("resume")
    rs.add_argument("--mb", type=int, default=1000)
    rs.add_argument(
        "--no-finish",
        dest="finish",
        action="store_false",
        help="kill the resumed run once it"
        " has committed a new segment (what follows is a plain ingest)",
    )
    rs.add_argument("--data", help="reuse DATA/tp<MB>/log.jsonl of `throughput --data` (hard link)")
    ft = sub.add_parser("fts5", help="FTS5 insertion alone, per variant (the store's ceiling)")
    ft.add_argument("--mb", type=int, default=100)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="headrace-large-", dir=os.path.abspath(args.work)))
    try:
        commands = {
            "throughput": cmd_throughput,
            "append": cmd_append,
            "resume": cmd_resume,
            "fts5": cmd_fts5,
        }
        commands[args.cmd](args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
