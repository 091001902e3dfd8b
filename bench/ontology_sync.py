"""Ontology sync from git: cold sync, incremental sync, resume after SIGKILL, search index.

    python bench/ontology_sync.py [--data /work/shared/data/ontology] [--copies 5]
                                  [--embedders none,hash,minilm]

The corpus is the shared ontology sample (218 files: Logseq, JSON-LD Markdown, RDF/XML,
Turtle, N-Triples, OWL/XML), replicated ``--copies`` times with changed identifiers
(``mv:`` → ``mvK:``, ``urn:ngm:`` → ``urn:ngmK:``, non-W3C ``http://`` hosts prefixed)
to reach the seed's ~974 files, committed into a throwaway git repository.

Phases (one process each, so peak RSS is per phase):
- cold: first sync of the whole tree (files/s, peak RSS above the interpreter+imports);
- incremental: a commit touching 10 files, then a sync;
- no-op: a sync with nothing new;
- resume: a cold sync killed with SIGKILL half-way, then the resuming run;
- search: cold sync plus rendering the terms into a search index per embedder.
Seed (VisionFlow, 002): 974 files in 235 s, 4.1 files/s, 85 MB.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
OUT = Path(os.environ.get("HEADRACE_BENCH_DIR", "/tmp/headrace-bench")) / "ontology"
GIT_ENV = {
    "GIT_AUTHOR_NAME": "b",
    "GIT_AUTHOR_EMAIL": "b@x",
    "GIT_COMMITTER_NAME": "b",
    "GIT_COMMITTER_EMAIL": "b@x",
}


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args],
        cwd=repo,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        check=True,
        text=True,
    ).stdout


def _variant(data: bytes, k: int) -> bytes:
    if k == 0:
        return data
    data = re.sub(rb"\bmv:", f"mv{k}:".encode(), data)
    data = data.replace(b"urn:ngm:", f"urn:ngm{k}:".encode())
    return re.sub(rb"http://(?!www\.w3\.org|purl\.org|xmlns\.com)", f"http://c{k}.".encode(), data)


def build_repo(data: Path, copies: int) -> tuple[Path, int, int]:
    repo = OUT / f"repo-{copies}"
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    files = nbytes = 0
    for src in sorted(p for p in data.rglob("*") if p.is_file()):
        for k in range(copies):
            target = repo / f"copy{k}" / src.relative_to(data)
            target.parent.mkdir(parents=True, exist_ok=True)
            content = _variant(src.read_bytes(), k)
            target.write_bytes(content)
            files, nbytes = files + 1, nbytes + len(content)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "corpus")
    return repo, files, nbytes


def child(phase: str, repo: str, db: str, extra: list[str]) -> None:
    """Run one phase in this (fresh) process and print its figures as JSON."""
    import psutil

    from headrace.ontology import OntologySync, SyncReport
    from headrace.sinks.ontology_sqlite import OntologyStore

    embedder = None
    if extra:
        from headrace.embedding.registry import make_embedder

        embedder = make_embedder(extra[0])
        if embedder is not None:  # load the model now: the figure is RSS beyond it
            embedder.embed(["warm up the model"])
    base_rss = psutil.Process().memory_info().rss
    store = OntologyStore(Path(db))
    first: list[float] = []

    def on_file(r: SyncReport) -> None:  # time to the first file stored by this run
        if not first and r.stored:
            first.append(time.perf_counter() - started)

    started = time.perf_counter()
    report = OntologySync(store, repo, on_file=on_file).run()
    elapsed = time.perf_counter() - started
    out: dict[str, Any] = {
        "phase": phase,
        "elapsed_s": elapsed,
        "first_store_s": first[0] if first else None,
        "report": report.as_dict(),
    }
    if extra:
        from headrace.api import Index
        from headrace.config.settings import load_settings
        from headrace.ontology.search import render_pending

        mirror = Path(db + ".search")
        t = time.perf_counter()
        out["pages"] = render_pending(store, mirror)
        settings = load_settings(index=db + ".index.sqlite", allow_root_deletion=True)
        with Index(settings=settings, embedder=embedder or extra[0]) as idx:
            stats = idx.ingest([str(mirror)])
            out["search_s"] = time.perf_counter() - t
            out["search"] = stats.snapshot()
            out["hits"] = [
                f"{h.heading} [{h.path.split('/terms/')[-1]}]" for h in idx.search(SEED_QUERY, k=5)
            ]
    store.close()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out |= {
        "base_rss_mb": base_rss / 1e6,
        "peak_rss_mb": peak / 1e6,
        "peak_above_base_mb": (peak - base_rss) / 1e6,
    }
    print(json.dumps(out))


SEED_QUERY = "physical object in the metaverse"


def _phase(phase: str, repo: Path, db: Path, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", phase, str(repo), str(db), *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return data


def _fresh_db(name: str) -> Path:
    for p in OUT.glob(name + "*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()
    return OUT / name


def _rows(db: Path) -> int:
    import apsw

    try:
        conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
        row = conn.execute("SELECT count(*) FROM ontologies").fetchone()
        n = int(row[0]) if row else 0
        conn.close()
        return n
    except apsw.Error:
        return 0


def _touch_ten(repo: Path) -> None:
    pages = sorted((repo / "copy0" / "visionflow-logseq-md").glob("*.md"))[:10]
    for page in pages:
        page.write_text(
            page.read_text(encoding="utf-8") + "\n- edited by the bench\n", encoding="utf-8"
        )
    _git(repo, "commit", "-q", "-am", "touch 10 files")


def _kill_half(repo: Path, db: Path, files: int) -> int:
    cmd = [
        sys.executable,
        "-c",
        "from headrace.cli.main import main; main()",
        "ontology",
        "sync",
        str(repo),
        "--db",
        str(db),
        "--json",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while _rows(db) < files // 3 and proc.poll() is None:
        time.sleep(0.001)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    return _rows(db)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/ontology")
    ap.add_argument("--copies", type=int, default=5)
    ap.add_argument("--embedders", default="hash,minilm")
    ap.add_argument("--child", nargs="+")
    args = ap.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.child[2], args.child[3:])
        return
    OUT.mkdir(parents=True, exist_ok=True)
    repo, files, nbytes = build_repo(Path(args.data), args.copies)
    print(f"corpus: {files} files ({nbytes / 1e6:.1f} MB), {args.copies} copies of the sample")
    db = _fresh_db("cold.sqlite")
    cold = _phase("cold", repo, db)
    r = cold["report"]
    print(
        f"cold sync: {cold['elapsed_s']:.2f} s, {files / cold['elapsed_s']:.0f} files/s"
        f" (stored {r['stored']}, plain documents {r['documents']}, failed {r['failed']});"
        f" peak RSS {cold['peak_rss_mb']:.0f} MB, {cold['peak_above_base_mb']:.0f} MB above"
        f" interpreter+imports ({cold['base_rss_mb']:.0f} MB)"
    )
    _touch_ten(repo)
    inc = _phase("incremental", repo, db)
    print(
        f"incremental (10 files changed): {inc['elapsed_s']:.3f} s,"
        f" {inc['report']['stored']} stored,"
        f" {inc['report']['documents']} plain documents"
    )
    noop = _phase("noop", repo, db)
    print(f"no-op: {noop['elapsed_s']:.3f} s")
    kdb = _fresh_db("kill.sqlite")
    done = _kill_half(repo, kdb, files)
    resume = _phase("resume", repo, kdb)
    print(
        f"resume after SIGKILL with {done} files stored: first new file stored after"
        f" {resume['first_store_s']:.3f} s; whole resumed run {resume['elapsed_s']:.3f} s"
        f" for the remaining {resume['report']['stored']} files"
    )
    for name in [e for e in args.embedders.split(",") if e]:
        sdb = _fresh_db(f"search-{name}.sqlite")
        res = _phase("search", repo, sdb, name)
        s = res["search"]
        total = res["elapsed_s"] + res["search_s"]
        print(
            f"with search index ({name}): sync {res['elapsed_s']:.2f} s + index"
            f" {res['search_s']:.2f} s = {total:.2f} s, {files / total:.1f} files/s;"
            f" {res['pages']} pages, {s['chunks_written']} chunks,"
            f" {s['embeddings_computed']} embeddings;"
            f" peak RSS {res['peak_rss_mb']:.0f} MB, {res['peak_above_base_mb']:.0f} MB above"
            f" interpreter+imports+loaded model ({res['base_rss_mb']:.0f} MB)"
        )
        _touch_ten(repo)
        inc = _phase("search-incremental", repo, sdb, name)
        print(
            f"  incremental with search index ({name}, 10 files changed): sync"
            f" {inc['elapsed_s']:.3f} s + render and index {inc['search_s']:.2f} s;"
            f" {inc['pages']} pages, {inc['search']['embeddings_computed']} embeddings"
        )
        print(f"  search {SEED_QUERY!r}: " + "; ".join(inc["hits"]))


if __name__ == "__main__":
    main()
