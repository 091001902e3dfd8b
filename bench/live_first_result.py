"""Time to first result while a producer writes 500 scraped-item files (seed 001).

    flock /tmp/headrace-bench.lock python bench/live_first_result.py [--items 500]
        [--rate 0] [--embedder minilm]

Items are real scraped pages from ../shared/data/scraped: goose3 pages (raw HTML),
Mozilla readability pages (raw HTML), the scrapinghub benchmark's article bodies
(text) and a news-please item (text). They are cycled to ``--items``; a cycled
copy gets a distinct URL and a distinct closing sentence, so its text differs.
The producer writes ``item_<n>.json`` files into a folder that ``headrace watch``
(default settings, real model) follows, as fast as it can (``--rate 0``) or at a
fixed rate. Measured: first item searchable (commit) after the producer started,
and all items searchable. Seed 001 reports 2 s to first result.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from live_support import fresh, quantiles, watching

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scraped"


def real_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for meta in sorted((DATA / "goose3-content").glob("*.json")):
        html = meta.with_suffix(".html")
        if html.exists():
            data = json.loads(meta.read_text(encoding="utf-8"))
            items.append({"url": data.get("url", ""), "html": html.read_text(errors="replace")})
    for page in sorted((DATA / "mozilla-readability-test-pages").iterdir()):
        source = page / "source.html"
        if source.exists():
            items.append({"url": f"https://{page.name}.example/", "html": source.read_text()})
    truth = json.loads((DATA / "scrapinghub-article-extraction-benchmark" / "ground-truth.json")
                       .read_text(encoding="utf-8"))  # fmt: skip
    items += [{"url": v["url"], "text": v["articleBody"]} for v in truth.values()]
    news = json.loads((DATA / "news-please" / "sample.json").read_text(encoding="utf-8"))
    items.append({"url": news["url"], "title": news["title"], "text": news["maintext"]})
    return [i for i in items if i["url"] and (i.get("html") or i.get("text"))]


def variant(item: dict[str, Any], n: int, distinct: int) -> dict[str, Any]:
    if n < distinct:
        return item
    copy = dict(item, url=f"{item['url']}?copy={n}")
    tail = f" Copy {n} of this page was scraped again."
    if "text" in copy:
        copy["text"] += tail
    else:
        copy["html"] = copy["html"].replace("</body>", f"<p>{tail}</p></body>", 1)
    return copy


def produce(
    root: Path, items: list[dict[str, Any]], rate: float, written: dict[str, float]
) -> None:
    started = time.perf_counter()
    for n, item in enumerate(items):
        if rate > 0:
            time.sleep(max(0.0, started + n / rate - time.perf_counter()))
        path = root / f"item_{n:05d}.json"
        written[str(path)] = time.time()
        path.write_text(json.dumps(item), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=500)
    ap.add_argument("--rate", type=float, default=0.0, help="items/s; 0: as fast as possible")
    ap.add_argument("--embedder", default="minilm")
    args = ap.parse_args()
    base = real_items()
    items = [variant(base[n % len(base)], n, len(base)) for n in range(args.items)]
    root, index = fresh("first-result")
    written: dict[str, float] = {}
    with watching(index, root, args.embedder) as (watcher, commits):
        assert watcher.sync(120)
        producer = threading.Thread(target=produce, args=(root, items, args.rate, written))
        started_wall = time.time()
        started = time.perf_counter()
        producer.start()
        producer.join()
        produced_s = time.perf_counter() - started
        assert watcher.sync(1800)
        all_s = time.perf_counter() - started
        first = (commits.first or started_wall) - started_wall
        first_item = min(written.values())
        latencies = [commits.at[p] - t for p, t in written.items() if p in commits.at]
        hits = watcher.index.search("reservoir rain city council", 3)
        snap = watcher.snapshot()
    print(json.dumps({
        "items": len(items),
        "distinct_pages": len(base),
        "html_items": sum(1 for i in items if "html" in i),
        "bytes_total": sum(len(json.dumps(i)) for i in items),
        "producer_s": round(produced_s, 2),
        "first_result_s": round(first, 3),
        "first_result_after_first_write_s": round((commits.first or 0) - first_item, 3),
        "all_searchable_s": round(all_s, 2),
        "per_item_latency": quantiles(latencies),
        "chunks": int(snap["totals"].get("chunks_written", 0)),
        "failed": int(snap["totals"].get("files_failed", 0)),
        "batches": int(snap["totals"].get("batches", 0)),
        "search_hits": len(hits),
        "rss_mb": round(snap["governor"]["rss_bytes"] / 2**20, 1),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
