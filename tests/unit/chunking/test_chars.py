"""CharChunker: bounded chunks that cover the text, exact positions, resumable."""

from __future__ import annotations

import random

from headrace.chunking.chars import CharChunker
from headrace.chunking.occurrences import OccurrenceCounter
from headrace.records import Chunk, Seam, Section


def _section(text: str, line: int = 1, byte: int = 0) -> Section:
    return Section(text, line, line + text.count("\n"), byte, byte + len(text.encode()))


def _text(seed: int) -> str:
    rng = random.Random(seed)
    words = ["alpha", "beta", "gämma", "delta.", "x" * 40, "word"]
    paras = []
    for _ in range(rng.randint(1, 12)):
        lines = [" ".join(rng.choices(words, k=rng.randint(1, 40))) for _ in range(3)]
        paras.append("\n".join(lines))
    return "\n\n".join(paras)


def test_chunks_are_bounded_cover_the_text_and_locate_it() -> None:
    chunker = CharChunker(max_chars=120)
    for seed in range(30):
        text = _text(seed)
        section = _section(text, line=5, byte=100)
        chunks = list(chunker.chunk("s", [section]))
        assert all(len(c.text) <= 120 for c in chunks)
        assert " ".join(c.text for c in chunks).split() == text.split()
        raw = text.encode()
        for c in chunks:
            assert raw[c.byte_start - 100 : c.byte_end - 100].decode() == c.text
            before = raw[: c.byte_start - 100].decode()
            assert c.line_start == 5 + before.count("\n")
            assert c.line_end == c.line_start + c.text.count("\n")


def test_one_word_longer_than_the_budget_is_cut_hard() -> None:
    chunks = list(CharChunker(max_chars=16).chunk("s", [_section("y" * 50)]))
    assert [len(c.text) for c in chunks] == [16, 16, 16, 2]


def test_stream_passes_seams_and_resumes_with_the_same_ids() -> None:
    chunker = CharChunker(max_chars=64)
    sections = [_section("repeat me\n\n" + _text(i), line=i * 100) for i in range(12)]
    items: list[Section | Seam] = []
    for i, s in enumerate(sections):
        items.append(s)
        items.append(Seam(i, i))
    whole = [c for c in chunker.stream("s", items) if isinstance(c, Chunk)]
    cut = 12  # resume after the 6th section's seam
    head = list(chunker.stream("s", items[:cut]))
    assert isinstance(head[-1], Seam)
    done = [c for c in head if isinstance(c, Chunk)]
    counts = OccurrenceCounter(lambda h: sum(c.text_hash == h for c in done))
    tail = chunker.stream("s", items[cut:], ordinal=len(done), occurrences=counts)
    assert done + [c for c in tail if isinstance(c, Chunk)] == whole
