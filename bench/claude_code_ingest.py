"""Cold ingest of a Claude Code transcript corpus, against the raw model's ceiling.

Builds (once) a corpus of ``--mb`` megabytes from the shared samples
(``claude_code_corpus.py``), ingests it with the ``claude-code`` preset's parser
into a fresh index (``--store sqlite``, or ``qdrant-local``: the Qdrant replica in
the client's local folder mode, which the client itself calls slow beyond ~20k
points), and prints turns/s, chunks/s, MB/s, the share of wall time spent in the
model, peak RSS of the whole process (model included), and the bare embedder's
ceiling: the same model over a fixed sample (``--ceiling-sample`` texts, 3000 by
default) of exactly the run's chunk texts, sorted by length and cut by the same
padded-token budget, measured once before the run (the chunks cut by a model-free
pre-pass) and once after it (the machine is shared: the mean of the two brackets
the load the run saw). The ceiling is a rate, so a sample suffices.
``cpu_pipeline_vs_ceiling`` compares CPU seconds per token instead (the whole
run's process against the bare model), which the machine's other load disturbs
far less than wall time.

Where the time goes: ``model_share`` is the embed thread's time inside the model
over the wall time (1 - it: the model waiting for input); ``model_speed_in_run_vs_bare``
is the model's token rate inside the run against the bare ceiling (below 1: the
model was slowed by other threads of this process or by other processes); and
``thread_cpu_s`` is CPU seconds per thread group, sampled from
``/proc/self/task`` (the embed thread, the producers, the writer = main thread,
and native threads: ONNX Runtime's intra-op pool and the tokenizers' pool).

    flock /tmp/headrace-bench.lock python bench/claude_code_ingest.py --mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from claude_code_corpus import OUT, build
from ingest_cold import ceiling
from rss import PeakRss
from thread_cpu import ThreadCpu

from headrace import Index
from headrace.chunking.token import TokenChunker
from headrace.config.settings import load_settings
from headrace.embedding.base import Embedder
from headrace.embedding.registry import make_embedder
from headrace.parsers.claude_code import ClaudeCodeParser
from headrace.presets import apply_settings, get_preset
from headrace.readers.lines import LineReader
from headrace.records import Section
from headrace.runtime.stats import RunStats


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mb", type=float, default=200.0)
    ap.add_argument("--embedder", default="minilm")
    ap.add_argument("--store", choices=("sqlite", "qdrant-local"), default="sqlite")
    ap.add_argument("--no-ceiling", action="store_true")
    ap.add_argument("--ceiling-sample", type=int, default=3000)
    ap.add_argument("--progress", type=Path, help="append a stats line every 30 s (JSONL)")
    args = ap.parse_args()
    corpus = build(args.mb)
    size = sum(p.stat().st_size for p in corpus.rglob("*.jsonl"))
    work = OUT / f"cc-index-{args.mb:g}-{args.store}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    qdrant = {"store": "qdrant", "qdrant_path": str(work / "qdrant")}
    flags = qdrant if args.store == "qdrant-local" else {}
    settings = apply_settings(
        load_settings(index=str(work / "index.sqlite"), embedder=args.embedder, **flags),
        get_preset("claude-code"),
    )
    rss = PeakRss().start()  # the whole process: the model's memory counts
    embedder = make_embedder(args.embedder)
    ceilings: list[tuple[float, float]] = []
    prior: dict[str, int] = {}
    if embedder is not None and not args.no_ceiling:
        prior = _sample(_chunk_texts(corpus, embedder), args.ceiling_sample)
        ceilings.append(ceiling(embedder, prior, settings.batch_tokens))
        print(f"ceiling before (tokens/s, tokens/CPU-s): {ceilings[0]}", file=sys.stderr)
    idx = Index(settings=settings, embedder=embedder)
    load = os.getloadavg()
    threads = ThreadCpu().start()
    started, cpu = time.perf_counter(), time.process_time()
    stats = RunStats()
    reporter = _Progress(stats, rss, args.progress).start() if args.progress else None
    idx.ingest([str(corpus)], stats=stats)
    if reporter is not None:
        reporter.stop()
    elapsed, run_cpu = time.perf_counter() - started, time.process_time() - cpu
    thread_cpu = threads.stop()
    peak = rss.stop()
    rows = list(idx.export())
    turns = len({(r["source"], r["metadata"].get("record")) for r in rows})
    tokens = sum(int(r["tokens"]) for r in rows)
    result: dict[str, object] = {
        "store": args.store,
        "corpus_mb": round(size / 1e6, 1),
        "files": stats.files_done,
        "turns": turns,
        "chunks": stats.chunks_written,
        "tokens": tokens,
        "embeddings": stats.embeddings_computed,
        "dead_letters": stats.dead_letters,
        "seconds": round(elapsed, 1),
        "turns_per_s": round(turns / elapsed, 1),
        "chunks_per_s": round(stats.chunks_written / elapsed, 1),
        "mb_per_s": round(size / 1e6 / elapsed, 2),
        "embedded_tokens_per_s": round(stats.tokens / elapsed, 1),
        "model_share": round(stats.embed_seconds / elapsed, 3),
        "model_tokens_per_s_in_run": round(stats.tokens / max(stats.embed_seconds, 1e-9), 1),
        "write_seconds": round(stats.write_seconds, 1),
        "run_cpu_s": round(run_cpu, 1),
        "thread_cpu_s": {k: round(v, 1) for k, v in thread_cpu.items()},
        "loadavg_at_start": [round(x, 2) for x in load],
        "loadavg_at_end": [round(x, 2) for x in os.getloadavg()],
        "peak_rss_mb_with_model": round(peak / 2**20, 1),
    }
    if embedder is not None and not args.no_ceiling:
        sample = _sample({str(r["text"]): int(r["tokens"]) for r in rows}, args.ceiling_sample)
        assert sample == prior, "the pre-pass must cut the same chunks as the run"
        ceilings.append(ceiling(embedder, sample, settings.batch_tokens))
        wall_ceil = sum(c[0] for c in ceilings) / len(ceilings)
        cpu_ceil = sum(c[1] for c in ceilings) / len(ceilings)  # tokens per CPU second
        result["ceiling_tokens_per_s"] = [round(c[0], 1) for c in ceilings]
        result["ceiling_tokens_per_cpu_s"] = [round(c[1], 1) for c in ceilings]
        result["pipeline_vs_ceiling"] = round(float(stats.tokens / elapsed) / wall_ceil, 3)
        # CPU seconds per token hardly depend on what else runs on a shared machine:
        # the run's whole process (parse, chunk, write, model) against the bare model.
        result["cpu_pipeline_vs_ceiling"] = round(stats.tokens / max(run_cpu, 1e-9) / cpu_ceil, 3)
        in_run = stats.tokens / max(stats.embed_seconds, 1e-9)
        result["model_speed_in_run_vs_bare"] = round(in_run / wall_ceil, 3)
    idx.close()
    print(json.dumps(result, indent=2))


class _Progress:
    """A line of run statistics every ``interval`` s: a run cut short keeps its rates."""

    def __init__(self, stats: RunStats, rss: PeakRss, path: Path, interval: float = 30) -> None:
        self.stats, self.rss, self.path, self.interval = stats, rss, path, interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name="progress")

    def start(self) -> _Progress:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._done.set()
        self._thread.join()

    def _loop(self) -> None:
        while not self._done.wait(self.interval):
            snap = self.stats.snapshot()
            keep = ("files_done", "chunks_written", "tokens", "embed_seconds", "bytes_done")
            line = {k: snap[k] for k in keep if k in snap}
            line.update(elapsed_s=snap["elapsed_s"], peak_rss_mb=round(self.rss.peak / 2**20, 1))
            line["loadavg"] = os.getloadavg()[0]
            line["process_cpu_s"] = round(time.process_time(), 1)  # since the process began
            with self.path.open("a", encoding="utf-8") as out:
                out.write(json.dumps(line) + "\n")


def _sample(texts: dict[str, int], n: int) -> dict[str, int]:
    keys = sorted(texts)
    return {k: texts[k] for k in random.Random(0).sample(keys, min(n, len(keys)))}


def _chunk_texts(corpus: Path, embedder: Embedder) -> dict[str, int]:
    """The run's chunk texts with token counts, cut beforehand (no model involved)."""
    chunker = TokenChunker(embedder.tokenizer(), max_tokens=embedder.max_tokens)
    texts: dict[str, int] = {}
    for path in sorted(corpus.rglob("*.jsonl")):
        name = str(path)
        sections = ClaudeCodeParser().parse(LineReader(name), name)
        for c in chunker.chunk(name, (s for s in sections if isinstance(s, Section))):
            texts[c.text] = c.token_count
    return texts


if __name__ == "__main__":
    main()
