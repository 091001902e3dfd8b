"""``TokenChunker``: chunks sized with the embedder's own tokenizer, cut where text breaks.

1. A section is encoded **once**, with offsets, without special tokens; the tokens of a
   char range are two bisections over those offsets. Content budget: ``max_tokens``
   minus the specials the tokenizer adds (2 for MiniLM) minus ``overlap_tokens``.
2. A section that fits is one chunk. Otherwise it is split into *units* within budget,
   by the best boundary that works: blank lines > line breaks > sentence ends (``.?!``
   and whitespace, or a CJK full stop) > whitespace > word-piece offsets (a single
   "word" over budget, e.g. a base64 run). A unit knows the boundary level before it.
3. Units are packed left to right by the **cut rule**, content-defined so that packing
   re-synchronises after an edit:

   - after adding a unit, cut if the chunk holds ``>= min_tokens`` and the CRC-32 of the
     unit's UTF-8 is ``% 4 == 0`` (paragraph, line or sentence boundary next) or
     ``% 32 == 0`` (plain whitespace next);
   - if the next unit would overflow, cut at the best boundary level in the chunk
     (latest on ties) that leaves ``>= min_tokens`` before it; units after the cut are
     packed again into the next chunk.

   Edit locality: a cut depends only on the chunk's start and on units at most one
   budget past it, so chunks starting over a budget before an edit are unchanged. A
   unit of ``>= min_tokens`` that meets the hash rule (an *anchor*) ends a chunk in any
   packing that reaches it, so all chunks after the first anchor past an edit are
   identical, ids included. Cost: chunks average ~170 tokens on prose where greedy
   packing gives ~210. CRC-32 is stable across processes, unlike the salted ``hash()``.
4. Overlap is **opt-in** (``overlap_tokens=0``): it makes a chunk's text, so its id,
   depend on the previous chunk (weaker edit locality) and embeds text twice. When on,
   a chunk starts with the tail of the previous chunk of its section: at most
   ``overlap_tokens`` tokens, from a word boundary, dropped where it would not fit.
5. Safety net (``verify``): BERT word pieces are context-free between whitespace-split
   words, so a chunk flanked by ASCII whitespace is counted exactly from the section's
   offsets. With ``"cuts"`` (default) only other chunks (a cut inside a word, after a
   CJK full stop, at a control character) are re-encoded with specials; ``"all"``
   re-encodes every chunk of a multi-chunk section (measured: ~1.8x chunker time);
   ``"off"`` trusts the offsets. A chunk over ``max_tokens`` is halved until it fits.
   A one-chunk section is exact as encoded.

Positions: ``line_*`` and ``byte_*`` add newlines and UTF-8 bytes before the chunk to the
section's ``line_start`` and ``byte_start``. They are exact when ``section.text`` is the
decoded bytes of ``[byte_start, byte_end)`` (line-preserving parsers); a parser that
rewrites text (CRLF folding, U+FFFD) makes them approximate.

Memory: one section, its offsets and chunks; per file, the occurrence counts
(``chunking.occurrences``).

Resuming: ``stream`` passes a parser's ``Seam`` items through in order and can start
at a chunk ordinal with the occurrence counts of the chunks before it, so a file
chunked in two runs, split at a seam, gets exactly the chunks (and ids) of one run.
"""

from __future__ import annotations

import re
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # tokenizers (~7 MB) loads with the first TokenChunker
    from tokenizers import Encoding, Tokenizer

from headrace.chunking.base import SectionChunker
from headrace.chunking.occurrences import Occurrences
from headrace.errors import ConfigError, InputError
from headrace.ids import chunk_id, text_hash
from headrace.records import Chunk, Section

__all__ = ["TokenChunker"]

PARAGRAPH, LINE, SENTENCE, WORD, TOKEN = range(5)
_SEPARATORS = {
    PARAGRAPH: re.compile(r"\n\s*\n"),
    LINE: re.compile(r"\n"),
    SENTENCE: re.compile(r"(?<=[.?!])\s+|(?<=[\u3002\uff01\uff1f])\s*"),
    WORD: re.compile(r"\s+"),
}
_CUT_MASKS = {PARAGRAPH: 3, LINE: 3, SENTENCE: 3, WORD: 31}

_ASCII_SPACE = frozenset(" \t\n\r")
Verify = Literal["cuts", "all", "off"]
_VERIFY = ("cuts", "all", "off")
_Range = tuple[int, int]  # start, end
_Sized = tuple[int, int, int]  # start, end, tokens including specials


@dataclass(frozen=True, slots=True)
class _Unit:
    start: int
    end: int
    before: int  # level of the boundary in front of the unit


class _Offsets:
    """Token offsets of one encoding; counts the tokens inside a char range."""

    __slots__ = ("ends", "starts")

    def __init__(self, encoding: Encoding) -> None:
        offsets = encoding.offsets  # a property that builds a new list on every access
        self.starts = [s for s, _ in offsets]
        self.ends = [e for _, e in offsets]

    def first(self, a: int) -> int:
        return bisect_left(self.starts, a)

    def stop(self, b: int) -> int:
        return bisect_right(self.ends, b)

    def count(self, a: int, b: int) -> int:
        return max(0, self.stop(b) - self.first(a))


class _Cursor:
    """Newlines and UTF-8 bytes before a position; cheap for small moves (either way)."""

    __slots__ = ("_bytes", "_lines", "_pos", "_text")

    def __init__(self, text: str) -> None:
        self._text, self._pos, self._lines, self._bytes = text, 0, 0, 0

    def move(self, pos: int) -> tuple[int, int]:
        sign = 1 if pos >= self._pos else -1
        seg = self._text[min(pos, self._pos) : max(pos, self._pos)]
        self._lines += sign * seg.count("\n")
        self._bytes += sign * (len(seg) if seg.isascii() else _utf8_len(seg))
        self._pos = pos
        return self._lines, self._bytes


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def is_anchor_hash(text: str, level: int) -> bool:
    """The hash half of the cut rule: may a chunk end after ``text`` at ``level``?"""
    mask = _CUT_MASKS.get(level)
    return mask is not None and zlib.crc32(text.encode("utf-8", "surrogatepass")) & mask == 0


def _strip(text: str, a: int, b: int) -> tuple[int, int]:
    while a < b and text[a].isspace():
        a += 1
    while b > a and text[b - 1].isspace():
        b -= 1
    return a, b


def _clean_edges(text: str, a: int, b: int) -> bool:
    """Is ``[a, b)`` flanked by ASCII whitespace or the section's ends?"""
    return (a == 0 or text[a - 1] in _ASCII_SPACE) and (b == len(text) or text[b] in _ASCII_SPACE)


def _pieces(text: str, a: int, b: int, level: int) -> list[tuple[int, int]]:
    bounds = [a]
    for m in _SEPARATORS[level].finditer(text, a, b):
        bounds += [m.start(), m.end()]
    bounds.append(b)
    spans = (_strip(text, bounds[k], bounds[k + 1]) for k in range(0, len(bounds), 2))
    return [(s, e) for s, e in spans if s < e]


class TokenChunker(SectionChunker):
    """Split sections into chunks that fit the embedder's token limit (see module doc).

    ``tokenizer`` is the embedder's; a private copy with truncation and padding off is
    used. ``max_tokens`` is the model limit including special tokens. ``min_tokens`` is
    the size a chunk must reach before a content-defined cut. ``verify`` picks the
    chunks re-encoded so none is ever over ``max_tokens``: ``"cuts"``, ``"all"``, ``"off"``.
    """

    def __init__(
        self,
        tokenizer: Tokenizer,
        max_tokens: int = 256,
        overlap_tokens: int = 0,
        min_tokens: int = 64,
        *,
        verify: Verify = "cuts",
    ) -> None:
        from tokenizers import Tokenizer

        self._tok = Tokenizer.from_str(tokenizer.to_str())
        self._tok.no_truncation()
        self._tok.no_padding()
        self._specials = len(self._tok.encode("", add_special_tokens=True).ids)
        self._max, self._overlap, self._min = max_tokens, overlap_tokens, min_tokens
        self._budget = max_tokens - self._specials - overlap_tokens
        self._verify = verify
        if overlap_tokens < 0 or min_tokens < 0 or self._budget < 1 or verify not in _VERIFY:
            raise ConfigError(
                f"chunker: need overlap_tokens, min_tokens >= 0 and max_tokens ({max_tokens}) "
                f"> {self._specials} special tokens + overlap_tokens ({overlap_tokens}), "
                f"verify in {_VERIFY}"
            )

    def _chunks_of(
        self, source: str, section: Section, seen: Occurrences, ordinal: int
    ) -> Iterator[Chunk]:
        starts, ends = _Cursor(section.text), _Cursor(section.text)
        for n, (a, b, tokens) in enumerate(self._spans(section.text), start=ordinal):
            text = section.text[a:b]
            digest = text_hash(text)
            occurrence = seen.next(digest)
            (l0, b0), (l1, b1) = starts.move(a), ends.move(b)
            # Clamped to the section: a rendered section (JSON records, transcript
            # turns) has more newlines and bytes than the lines it came from.
            last_line, end = section.line_end, section.byte_end
            yield Chunk(
                chunk_id(source, digest, occurrence), source, n, text, digest, tokens,
                min(section.line_start + l0, last_line), min(section.line_start + l1, last_line),
                min(section.byte_start + b0, end), min(section.byte_start + b1, end),
                section.heading, section.metadata,
            )  # fmt: skip

    def _spans(self, text: str) -> list[_Sized]:
        """Char ranges ``[a, b)`` of a section's chunks with their full token counts."""
        a, b = _strip(text, 0, len(text))
        if a == b:
            return []
        offs = _Offsets(self._tok.encode(text, add_special_tokens=False))
        units = list(self._split(text, offs, (a, b), PARAGRAPH, PARAGRAPH))
        own = list(self._pack(text, offs, units))
        if len(own) == 1:  # the whole section: its encoding is exact
            return [(a, b, offs.count(a, b) + self._specials)]
        sized = list(self._sized(text, offs, own))
        return list(self._overlapped(text, offs, sized)) if self._overlap else sized

    def _split(
        self, text: str, offs: _Offsets, span: tuple[int, int], level: int, before: int
    ) -> Iterator[_Unit]:
        a, b = span
        if offs.count(a, b) <= self._budget:
            yield _Unit(a, b, before)
        elif level == TOKEN:
            yield from self._word_pieces(offs, a, b, before)
        else:
            for k, (s, e) in enumerate(_pieces(text, a, b, level)):
                yield from self._split(text, offs, (s, e), level + 1, before if k == 0 else level)

    def _word_pieces(self, offs: _Offsets, a: int, b: int, before: int) -> Iterator[_Unit]:
        first, stop = offs.first(a), offs.stop(b)
        cuts = [offs.starts[t] for t in range(first + self._budget, stop, self._budget)]
        for k, (s, e) in enumerate(zip([a, *cuts], [*cuts, b], strict=True)):
            yield _Unit(s, e, before if k == 0 else TOKEN)

    def _pack(self, text: str, offs: _Offsets, units: list[_Unit]) -> Iterator[tuple[int, int]]:
        i = 0
        while i < len(units):
            cut = self._next_cut(text, offs, units, i)
            yield units[i].start, units[cut - 1].end
            i = cut

    def _next_cut(self, text: str, offs: _Offsets, units: list[_Unit], i: int) -> int:
        """Index of the first unit of the next chunk, for a chunk starting at unit ``i``."""
        start = units[i].start
        for j in range(i + 1, len(units)):
            last = units[j - 1]
            # The hash cut is decided before looking at units[j]: an anchor must end a
            # chunk whatever follows it, or packing could not re-synchronise.
            if offs.count(start, last.end) >= self._min and is_anchor_hash(
                text[last.start : last.end], units[j].before
            ):
                return j
            if offs.count(start, units[j].end) > self._budget:
                return self._fallback(offs, units, i, j)
        return len(units)

    def _fallback(self, offs: _Offsets, units: list[_Unit], i: int, j: int) -> int:
        """Best boundary for a chunk ``units[i:]`` that cannot take ``units[j]``."""
        best = j
        for k in range(j - 1, i, -1):
            if offs.count(units[i].start, units[k - 1].end) < self._min:
                break
            if units[k].before < units[best].before:
                best = k
        return best

    def _sized(self, text: str, offs: _Offsets, spans: list[_Range]) -> Iterator[_Sized]:
        """Own spans with exact token counts, halved where the safety net finds one over."""
        for (a, b), tokens in zip(spans, self._measure(text, offs, spans), strict=True):
            if tokens <= self._max:
                yield a, b, tokens
            else:
                yield from self._fit(text, offs, a, b)

    def _measure(self, text: str, offs: _Offsets, spans: list[_Range]) -> list[int]:
        """Token counts with specials: re-encoded where ``verify`` asks, else from offsets."""
        check = [self._verify == "all" or not _clean_edges(text, a, b) for a, b in spans]
        if self._verify == "off":
            check = [False] * len(spans)
        texts = [text[a:b] for (a, b), c in zip(spans, check, strict=True) if c]
        encodings = iter(self._tok.encode_batch(texts) if texts else [])
        return [
            len(next(encodings).ids) if c else offs.count(a, b) + self._specials
            for (a, b), c in zip(spans, check, strict=True)
        ]

    def _fit(self, text: str, offs: _Offsets, a: int, b: int) -> Iterator[_Sized]:
        """Re-encode ``[a, b)`` and halve it until every piece fits ``max_tokens``."""
        tokens = len(self._tok.encode(text[a:b], add_special_tokens=True).ids)
        if tokens <= self._max:
            yield a, b, tokens
            return
        if b - a < 2:  # unreachable with a real vocabulary: one character is a few tokens
            raise InputError(f"cannot fit {text[a:b]!r} in {self._max} tokens", stage="chunk")
        first, stop = offs.first(a), offs.stop(b)
        mid = offs.starts[(first + stop) // 2] if stop - first > 1 else a
        mid = mid if a < mid < b else (a + b) // 2
        for s, e in (_strip(text, a, mid), _strip(text, mid, b)):
            if s < e:
                yield from self._fit(text, offs, s, e)

    def _overlapped(self, text: str, offs: _Offsets, sized: list[_Sized]) -> Iterator[_Sized]:
        """Prepend to each chunk the tail of the previous one; drop it where it won't fit."""
        yield sized[0]
        starts = [self._overlap_start(text, offs, p, c) for p, c in pairwise(sized)]
        spans = [(s, b) for s, (_, b, _) in zip(starts, sized[1:], strict=True)]
        measured = self._measure(text, offs, spans)
        for own, span, tokens in zip(sized[1:], spans, measured, strict=True):
            yield (*span, tokens) if tokens <= self._max else own

    def _overlap_start(self, text: str, offs: _Offsets, prev: _Sized, own: _Sized) -> int:
        room = min(self._overlap, self._max - own[2])
        first, stop = offs.first(prev[0]), offs.stop(prev[1])
        for t in range(max(first, stop - room), stop):
            if t == first:
                return prev[0]
            if offs.starts[t] > prev[0] and text[offs.starts[t] - 1].isspace():
                return offs.starts[t]
        return own[0]
