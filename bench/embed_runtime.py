"""Compare the MiniLM runtimes: load time, throughput and fidelity to the reference.

    python bench/embed_runtime.py [--repeats 3] [--chunks 1200] [--threads N]

Builds real chunk texts (word windows of 12-200 words, each at most 256 tokens) from the
scraped article corpora in /work/shared/data/scraped, then, for each runtime and repeat,
starts a fresh Python process (so load time includes imports, as in a CLI run) that
loads the embedder, embeds the chunks in batches of 32 sorted by length, and saves the
vectors. Runtimes are interleaved per repeat to spread machine noise. Prints medians;
asserts nothing about timings.

Also times the one-off ONNX export (fp32, then fused, then int8) into an empty cache.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from headrace.embedding.base import Embedder

DATA = Path("/work/shared/data/scraped")
RUNTIMES = {  # bench name -> key for make()
    "torch (reference)": "torch",
    "onnx fp32": "fp32",
    "onnx fp32 fused": "fp32-opt",
    "onnx int8": "int8",
}
WINDOWS = (12, 24, 40, 64, 96, 128, 160, 200)  # words per chunk, cycled
BATCH = 32


def corpus_texts() -> list[str]:
    texts = []
    for path in sorted(glob.glob(str(DATA / "goose3-content" / "*.json"))):
        expected = json.loads(Path(path).read_text(encoding="utf-8")).get("expected") or {}
        texts.append(expected.get("cleaned_text") or "")
    truth = json.loads(
        (DATA / "scrapinghub-article-extraction-benchmark" / "ground-truth.json").read_text()
    )
    texts.extend(item.get("articleBody") or "" for item in truth.values())
    return [text for text in texts if text.strip()]


def build_chunks(limit: int) -> list[str]:
    # Imported here, like the others, so a worker's load time includes every import.
    from headrace.embedding.minilm import MAX_TOKENS, load_minilm_tokenizer

    tokenizer = load_minilm_tokenizer()
    chunks: list[str] = []
    turn = 0
    for text in corpus_texts():
        words = text.split()
        start = 0
        while start < len(words) and len(chunks) < limit:
            size = WINDOWS[turn % len(WINDOWS)]
            turn += 1
            while (
                size > 1
                and len(tokenizer.encode(" ".join(words[start : start + size])).ids) > MAX_TOKENS
            ):
                size = size * 3 // 4
            chunks.append(" ".join(words[start : start + size]))
            start += size
    return chunks


def make(key: str, threads: int | None) -> Embedder:
    """``torch`` for the reference, else an ONNX variant of MiniLMEmbedder."""
    # Imported here so that a worker's load time includes every import.
    from headrace.embedding.minilm import MiniLMEmbedder
    from headrace.embedding.reference import MiniLMTorchEmbedder

    if key == "torch":
        return MiniLMTorchEmbedder(threads=threads)
    return MiniLMEmbedder(variant=key, threads=threads)  # type: ignore[arg-type]


def worker(key: str, texts_file: Path, out_file: Path, threads: int | None) -> None:
    started = time.perf_counter()
    embedder = make(key, threads)
    embedder.embed(["warm up"])  # forces the lazy model load
    load_s = time.perf_counter() - started
    texts: list[str] = json.loads(texts_file.read_text())
    tokenizer = embedder.tokenizer()
    lengths = [len(e.ids) for e in tokenizer.encode_batch(texts)]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    vectors = np.empty((len(texts), embedder.dim), dtype=np.float32)
    started = time.perf_counter()
    for i in range(0, len(order), BATCH):
        rows = order[i : i + BATCH]
        vectors[rows] = embedder.embed([texts[r] for r in rows])
    embed_s = time.perf_counter() - started
    np.save(out_file, vectors)
    print(json.dumps({"load_s": load_s, "embed_s": embed_s, "tokens": sum(lengths)}))


def paired_worker(names: list[str], texts_file: Path, threads: int | None) -> None:
    """All runtimes in one process, taking turns on every batch: background load hits
    them alike, so per-batch time ratios are far steadier than separate runs."""
    embedders = {name: make(name, threads) for name in names}
    texts: list[str] = json.loads(texts_file.read_text())
    batches = sorted_batches(texts)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for turn, batch in enumerate(batches):
        for name in names[turn % len(names) :] + names[: turn % len(names)]:
            embedder = embedders[name]
            if turn == 0:
                embedder.embed(["warm up"])
            started = time.perf_counter()
            embedder.embed(batch)
            seconds[name].append(time.perf_counter() - started)
    print(json.dumps(seconds))


def sorted_batches(texts: list[str]) -> list[list[str]]:
    from headrace.embedding.minilm import load_minilm_tokenizer

    lengths = [len(e.ids) for e in load_minilm_tokenizer().encode_batch(texts)]
    order = sorted(range(len(texts)), key=lengths.__getitem__)
    return [[texts[r] for r in order[i : i + BATCH]] for i in range(0, len(order), BATCH)]


def export_worker() -> None:
    from headrace.embedding.onnx_export import ensure_onnx_model

    times = {}
    for variant in ("fp32", "fp32-opt", "int8"):
        started = time.perf_counter()
        ensure_onnx_model(variant=variant)
        times[variant] = time.perf_counter() - started
    print(json.dumps(times))


def run_worker(args: list[str], env: dict[str, str]) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env=env, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"worker {args} failed:\n{done.stderr}")
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunks", type=int, default=1200)
    parser.add_argument("--threads", type=int, default=None, help="default: usable CPUs")
    parser.add_argument("--runtimes", default=",".join(RUNTIMES), help="comma-separated subset")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--texts", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker == "export":
        return export_worker()
    if args.worker == "paired":
        return paired_worker(args.runtimes.split(","), args.texts, args.threads)
    if args.worker:
        return worker(args.worker, args.texts, args.out, args.threads)
    benchmark(args)
    return None


def benchmark(args: argparse.Namespace) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    names = [n for n in RUNTIMES if n in args.runtimes.split(",")]
    chunks = build_chunks(args.chunks)
    threads = [] if args.threads is None else ["--threads", str(args.threads)]
    with tempfile.TemporaryDirectory(prefix="headrace-bench-") as tmp_name:
        tmp = Path(tmp_name)
        exports = [
            run_worker(["--worker", "export"], {**env, "HEADRACE_CACHE_DIR": str(tmp / f"x{r}")})
            for r in range(args.repeats)
        ]
        env["HEADRACE_CACHE_DIR"] = str(tmp / "x0")  # exports exist: loads measure loading only
        texts_file = tmp / "texts.json"
        texts_file.write_text(json.dumps(chunks))
        results: dict[str, list[dict[str, float]]] = {name: [] for name in names}
        vectors: dict[str, list[np.ndarray[Any, Any]]] = {name: [] for name in names}
        for repeat in range(args.repeats):
            for name in names:
                out = tmp / f"{RUNTIMES[name]}-{repeat}.npy"
                cmd = ["--worker", RUNTIMES[name], "--texts", str(texts_file), "--out", str(out)]
                results[name].append(run_worker([*cmd, *threads], env))
                vectors[name].append(np.load(out))
                print(f"  separate run {repeat + 1} {name}: {results[name][-1]}", file=sys.stderr)
        keys = ",".join(RUNTIMES[name] for name in names)
        paired_cmd = [
            "--worker",
            "paired",
            "--runtimes",
            keys,
            "--texts",
            str(texts_file),
        ]
        paired = [run_worker([*paired_cmd, *threads], env) for _ in range(args.repeats)]
    report(chunks, names, results, vectors, exports)
    report_paired(len(chunks), names, paired)


def report(
    chunks: list[str],
    names: list[str],
    results: dict[str, list[dict[str, float]]],
    vectors: dict[str, list[np.ndarray[Any, Any]]],
    exports: list[dict[str, float]],
) -> None:
    tokens = next(iter(results.values()))[0]["tokens"]
    print(
        f"\n{len(chunks)} chunks, {tokens:.0f} tokens (mean {tokens / len(chunks):.0f}/chunk), "
        f"batch {BATCH} sorted by length, {len(os.sched_getaffinity(0))} usable CPUs"
    )
    print(f"separate processes, medians of {len(exports)} runs (load includes imports):")
    reference = vectors.get("torch (reference)", [None])[0]
    header = (
        f"{'runtime':<20}{'load s':>8}{'chunks/s':>10}{'tokens/s':>10}"
        f"{'min cos':>11}{'mean cos':>11}"
    )
    print(header)
    print("-" * len(header))
    for name in names:
        load = statistics.median(r["load_s"] for r in results[name])
        embed = statistics.median(r["embed_s"] for r in results[name])
        cos = "" if reference is None else _cosines(reference, vectors[name])
        print(f"{name:<20}{load:>8.2f}{len(chunks) / embed:>10.1f}{tokens / embed:>10.0f}{cos}")
    print(
        "export into an empty cache (s, median): "
        + ", ".join(f"{k} {statistics.median(e[k] for e in exports):.2f}" for k in exports[0])
    )


def report_paired(chunks: int, names: list[str], runs: list[dict[str, list[float]]]) -> None:
    base = "onnx fp32" if "onnx fp32" in names else names[0]
    print(f"\none process, runtimes taking turns per batch, {len(runs)} runs:")
    header = f"{'runtime':<20}{'chunks/s':>10}{'per-batch speed-up vs ' + base:>34}"
    print(header)
    print("-" * len(header))
    for name in names:
        rate = statistics.median(chunks / sum(run[RUNTIMES[name]]) for run in runs)
        ratios = [
            b / t
            for run in runs
            for b, t in zip(run[RUNTIMES[base]], run[RUNTIMES[name]], strict=True)
        ]
        print(f"{name:<20}{rate:>10.1f}{statistics.median(ratios):>33.3f}x")


def _cosines(reference: np.ndarray[Any, Any], runs: list[np.ndarray[Any, Any]]) -> str:
    cosines = np.concatenate([(run * reference).sum(axis=1) for run in runs])
    return f"{cosines.min():>11.7f}{cosines.mean():>11.7f}"


if __name__ == "__main__":
    main()
