"""No-op re-run over 10,000 files, and a 1% change against ingesting those files alone.

    python bench/incremental.py --files 10000 [--embedder hash|minilm]

Targets (issue: foundation): no-op < 1 s; 1% change <= 1.1 x (those files alone) + no-op.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus import OUT, real_text_corpus

from headrace import Index, Settings


def _fresh(path: Path) -> Path:
    for p in path.parent.glob(path.name + "*"):
        p.unlink()
    return path


def _timed_ingest(idx: Index, root: Path) -> tuple[float, int]:
    started = time.perf_counter()
    stats = idx.ingest([str(root)])
    return time.perf_counter() - started, stats.embeddings_computed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=10_000)
    ap.add_argument("--embedder", default="hash")
    args = ap.parse_args()
    corpus = real_text_corpus(args.files, name=f"incr-{args.files}")
    settings = Settings(embedder=args.embedder)
    idx = Index(_fresh(OUT / "incr.sqlite"), settings=settings)
    cold, _ = _timed_ingest(idx, corpus)
    noops = [_timed_ingest(idx, corpus)[0] for _ in range(5)]
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "headrace",
            "--quiet",
            "ingest",
            str(corpus),
            "--index",
            str(OUT / "incr.sqlite"),
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    cli_started = time.perf_counter()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "headrace",
            "--quiet",
            "ingest",
            str(corpus),
            "--index",
            str(OUT / "incr.sqlite"),
        ],
        capture_output=True,
        check=True,
    )
    cli_wall = time.perf_counter() - cli_started
    changed = sorted(p for p in corpus.rglob("*") if p.is_file())[::100]
    alone_dir = OUT / "incr-alone"
    shutil.rmtree(alone_dir, ignore_errors=True)
    for i, path in enumerate(changed):
        with path.open("a") as fh:
            fh.write(f"\nEdited paragraph number {i} added for the incremental benchmark.\n")
        (alone_dir / path.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, alone_dir / path.parent.name / path.name)
    change, change_emb = _timed_ingest(idx, corpus)
    idx.close()
    alone_idx = Index(_fresh(OUT / "incr-alone.sqlite"), settings=settings)
    alone, alone_emb = _timed_ingest(alone_idx, alone_dir)
    alone_idx.close()
    noop = statistics.median(noops)
    print(
        json.dumps(
            {
                "files": args.files,
                "embedder": args.embedder,
                "cold_s": round(cold, 2),
                "noop_in_process_s": round(noop, 3),
                "noop_cli_wall_s": round(cli_wall, 3),
                "noop_cli_internal": json.loads(cli.stdout)["elapsed_s"],
                "changed_files": len(changed),
                "change_s": round(change, 3),
                "change_embeddings": change_emb,
                "alone_s": round(alone, 3),
                "alone_embeddings": alone_emb,
                "change_vs_alone_plus_noop": round(change / (alone + noop), 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
