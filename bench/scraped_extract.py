"""HTML -> clean text for scraped pages: trafilatura against simpler extractors.

    flock /tmp/headrace-bench.lock python bench/scraped_extract.py

Pages with a known article text from ../shared/data/scraped: goose3's 51 pages
(``expected.cleaned_text``) and Mozilla readability's 8 (``expected.html``). For
each extractor: word-level precision, recall and F1 against the expected text
(bags of lower-cased words, micro-averaged over all pages) and milliseconds per page.
The baseline (lxml ``text_content`` without scripts/styles) keeps everything, so its
recall is the ceiling and its precision shows how much boilerplate a page carries.
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import lxml.html

from headrace.parsers.scraped import html_to_text

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "scraped"
WORD = re.compile(r"\w+")


def pages() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for meta in sorted((DATA / "goose3-content").glob("*.json")):
        html = meta.with_suffix(".html")
        expected = json.loads(meta.read_text(encoding="utf-8")).get("expected", {})
        if html.exists() and expected.get("cleaned_text"):
            found.append((html.read_text(errors="replace"), expected["cleaned_text"]))
    for page in sorted((DATA / "mozilla-readability-test-pages").iterdir()):
        source, expected = page / "source.html", page / "expected.html"
        if source.exists() and expected.exists():
            found.append(
                (source.read_text(), lxml.html.fromstring(expected.read_text()).text_content())
            )
    return found


def baseline(html: str) -> str:
    tree = lxml.html.fromstring(html)
    for bad in tree.xpath("//script|//style|//noscript"):
        bad.drop_tree()
    return str(tree.text_content())


def justext_text(html: str) -> str:
    import justext

    paragraphs = justext.justext(html.encode(), justext.get_stoplist("English"))
    return "\n".join(p.text for p in paragraphs if not p.is_boilerplate)


def trafilatura_text(html: str) -> str:
    return html_to_text(html)[1]


def score(extract: Callable[[str], str], data: list[tuple[str, str]]) -> dict[str, float]:
    tp = got = want = 0
    started = time.perf_counter()
    for html, expected in data:
        a = Counter(WORD.findall(extract(html).lower()))
        b = Counter(WORD.findall(expected.lower()))
        tp += sum((a & b).values())
        got += sum(a.values())
        want += sum(b.values())
    ms = 1000 * (time.perf_counter() - started) / len(data)
    p, r = tp / max(1, got), tp / max(1, want)
    return {"precision": round(p, 3), "recall": round(r, 3),
            "f1": round(2 * p * r / max(1e-9, p + r), 3), "ms_per_page": round(ms, 1)}  # fmt: skip


def main() -> None:
    data = pages()
    print(json.dumps({"pages": len(data)}))
    for name, fn in (("lxml text_content (no removal)", baseline), ("justext", justext_text),
                     ("trafilatura (headrace)", trafilatura_text)):  # fmt: skip
        print(json.dumps({"extractor": name, **score(fn, data)}), flush=True)


if __name__ == "__main__":
    main()
