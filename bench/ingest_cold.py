"""Cold ingest of real text vs the raw model's ceiling on the same chunk texts.

Prints files/s, chunks/s, tokens/s and peak RSS beyond the loaded model (and the
open index: the base is taken after garbage collection and ``malloc_trim``, so the
heap freed while building the corpus listing does not hide part of the run), then
embeds exactly the chunk texts the run produced with the bare embedder (batches of
32 sorted by length, like the pipeline) to give the ceiling, and the ratio.

    python bench/ingest_cold.py --files 2000 [--embedder minilm]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from corpus import OUT, real_text_corpus
from rss import PeakRss, keep_runners

from headrace import Index, Settings
from headrace.embedding.registry import make_embedder


def ceiling(embedder: object, texts: dict[str, int], budget: int) -> tuple[float, float]:
    """The bare model over the same texts, *globally* sorted by tokens (the pipeline
    only sorts within a window) and cut by the same padded-token budget."""
    batches: list[list[str]] = [[]]
    for text in sorted(texts, key=texts.__getitem__):
        if batches[-1] and (len(batches[-1]) + 1) * texts[text] > budget:
            batches.append([])
        batches[-1].append(text)
    started, cpu = time.perf_counter(), time.process_time()
    for batch in batches:
        embedder.embed(batch)  # type: ignore[attr-defined]
    tokens = sum(texts.values())
    return tokens / (time.perf_counter() - started), tokens / (time.process_time() - cpu)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=2000)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--no-ceiling", action="store_true")
    args = ap.parse_args()
    corpus = real_text_corpus(args.files)
    size = sum(p.stat().st_size for p in corpus.rglob("*") if p.is_file())
    work = OUT / f"index-{args.files}.sqlite"
    for p in work.parent.glob(work.name + "*"):
        p.unlink()
    embedder = make_embedder(args.embedder)
    if embedder is not None:
        embedder.embed(["warm up the model"])  # load it: RSS below counts beyond it
    settings = Settings(embedder=args.embedder)
    idx = Index(work, settings=settings, embedder=embedder)
    runners = keep_runners(idx)
    rss = PeakRss()
    base = rss.settled()  # what the model and the open index hold, nothing transient
    rss.start()
    started, cpu = time.perf_counter(), time.process_time()
    stats = idx.ingest([str(corpus)])
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    peak = rss.stop()
    rows = list(idx.export())
    tokens = sum(int(r["tokens"]) for r in rows)
    result = {
        "files": args.files,
        "corpus_mb": round(size / 1e6, 2),
        "seconds": round(elapsed, 2),
        "files_per_s": round(stats.files_done / elapsed, 1),
        "chunks_per_s": round(stats.chunks_written / elapsed, 1),
        "embedded_tokens_per_s": round(stats.tokens / elapsed, 1),
        "chunks": stats.chunks_written,
        "tokens": tokens,
        "embeddings": stats.embeddings_computed,
        "rss_model_mb": round(base / 2**20, 1),
        "peak_rss_beyond_model_mb": round((peak - base) / 2**20, 1),
        # Is the model kept fed? Windows and their mean size, the seconds the embed
        # stage waited for its input queue, and the seconds it spent in the model.
        "windows": sum(r.windows for r in runners),
        "mean_window_items": round(
            sum(r.window_items for r in runners) / max(1, sum(r.windows for r in runners))
        ),
        "embed_idle_s": round(sum(r.embed_idle_seconds for r in runners), 2),
        "embed_s": round(stats.embed_seconds, 2),
    }
    if embedder is not None and not args.no_ceiling:
        unique = {str(r["text"]): int(r["tokens"]) for r in rows}
        ceil, ceil_cpu = ceiling(embedder, unique, settings.batch_tokens)
        result["ceiling_tokens_per_s"] = round(ceil, 1)
        result["pipeline_vs_ceiling"] = round(result["embedded_tokens_per_s"] / ceil, 3)
        # CPU seconds per embedded token: robust to other load on a shared machine
        # (the wall-clock ratio above is not), and it counts every stage's CPU.
        result["pipeline_vs_ceiling_cpu"] = round(stats.tokens / cpu / ceil_cpu, 3)
    idx.close()
    print(json.dumps(result, indent=2))
    shutil.rmtree(OUT / "tmp", ignore_errors=True)


if __name__ == "__main__":
    main()
