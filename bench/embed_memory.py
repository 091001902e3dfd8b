"""Does the embedder's memory stay flat over many batches of varied shape?

    python bench/embed_memory.py [--calls 450] [--mem-pattern default|on]

Embeds ``--calls`` batches of 1-12 real-text snippets cut to 10-250 word pieces (fixed
seed), printing the process RSS every 150 calls. ``--mem-pattern on`` forces ONNX
Runtime's per-shape memory plans back on, to compare with headrace's default (off):
a long-lived ``headrace watch`` sees thousands of distinct batch shapes.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

import psutil

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_support import snippets

from headrace.embedding.minilm import MiniLMEmbedder


def force_mem_pattern() -> None:
    import onnxruntime as ort

    original = ort.SessionOptions

    class Options(original):  # type: ignore[misc, valid-type]
        def __setattr__(self, name: str, value: object) -> None:
            if name == "enable_mem_pattern":
                value = True
            super().__setattr__(name, value)

    ort.SessionOptions = Options


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=450)
    ap.add_argument("--mem-pattern", choices=["default", "on"], default="default")
    args = ap.parse_args()
    if args.mem_pattern == "on":
        force_mem_pattern()
    embedder = MiniLMEmbedder(variant="fp32")
    tokenizer = embedder.tokenizer()
    tokenizer.no_truncation()
    texts = []
    for text in snippets(1500):
        ends = [end for _, end in tokenizer.encode(text, add_special_tokens=False).offsets]
        texts.append((text, ends))
    rng = random.Random(1)
    embedder.embed(["warm"])
    proc = psutil.Process()
    rss = {"0": round(proc.memory_info().rss / 2**20, 1)}
    started = time.perf_counter()
    for i in range(1, args.calls + 1):
        batch = []
        for _ in range(rng.randint(1, 12)):
            text, ends = texts[rng.randrange(len(texts))]
            batch.append(text[: ends[min(len(ends), rng.randint(10, 250)) - 1]])
        embedder.embed(batch)
        if i % 150 == 0:
            rss[str(i)] = round(proc.memory_info().rss / 2**20, 1)
    print(json.dumps({"mem_pattern": args.mem_pattern, "rss_mb_after_calls": rss,
                      "seconds": round(time.perf_counter() - started, 1)}))  # fmt: skip


if __name__ == "__main__":
    main()
