"""``CharChunker``: chunks sized in characters, for keyword-only indexes.

A full-text index has no model input limit, so counting word pieces (the
``TokenChunker``'s cost, ~1 MB/s here) buys nothing: this chunker sizes chunks by
characters (``max_chars``, default 1,000, about MiniLM's 256 word pieces of English)
and cuts at the best boundary that works, as the token chunker does: blank lines >
line breaks > sentence ends > whitespace > a hard cut. Units are packed greedily;
chunks never span sections, so an edit moves ids only inside its own section.

``token_count`` is an estimate (characters / 4, at least 1): nothing downstream of a
keyword-only index embeds it. An index built with this chunker has another pipeline
signature than one built for a model, so binding a model later re-chunks.
Seams pass through and occurrences continue across them exactly as in
``TokenChunker.stream``.
"""

from __future__ import annotations

from collections.abc import Iterator

from headrace.chunking.base import SectionChunker
from headrace.chunking.occurrences import Occurrences
from headrace.chunking.token import _SEPARATORS, PARAGRAPH, WORD, _Cursor, _strip
from headrace.errors import ConfigError
from headrace.ids import chunk_id, text_hash
from headrace.records import Chunk, Section

__all__ = ["CharChunker"]

_HARD = WORD + 1


class CharChunker(SectionChunker):
    """Split sections into chunks of at most ``max_chars`` characters (module doc)."""

    name = "chars"

    def __init__(self, max_chars: int = 1000) -> None:
        if max_chars < 16:
            raise ConfigError(f"chunker: max_chars must be at least 16, got {max_chars}")
        self.max_chars = max_chars

    def _chunks_of(
        self, source: str, section: Section, seen: Occurrences, ordinal: int
    ) -> Iterator[Chunk]:
        spans = self._spans(section.text)
        if spans == [(0, len(section.text))]:  # the common case: the section as it is
            yield self._whole(source, section, seen, ordinal)
        else:
            yield from self._pieces(source, section, spans, seen, ordinal)

    def _whole(self, source: str, section: Section, seen: Occurrences, ordinal: int) -> Chunk:
        text, digest = section.text, text_hash(section.text)
        return Chunk(
            chunk_id(source, digest, seen.next(digest)), source, ordinal, text, digest,
            max(1, len(text) // 4), section.line_start, section.line_end,
            section.byte_start, section.byte_end, section.heading, section.metadata,
        )  # fmt: skip

    def _pieces(
        self,
        source: str,
        section: Section,
        spans: list[tuple[int, int]],
        seen: Occurrences,
        ordinal: int,
    ) -> Iterator[Chunk]:
        starts, ends = _Cursor(section.text), _Cursor(section.text)
        for n, (a, b) in enumerate(spans, start=ordinal):
            piece = section.text[a:b]
            digest = text_hash(piece)
            (l0, b0), (l1, b1) = starts.move(a), ends.move(b)
            yield Chunk(
                chunk_id(source, digest, seen.next(digest)), source, n, piece, digest,
                max(1, len(piece) // 4), section.line_start + l0, section.line_start + l1,
                section.byte_start + b0, section.byte_start + b1,
                section.heading, section.metadata,
            )  # fmt: skip

    def _spans(self, text: str) -> list[tuple[int, int]]:
        a, b = _strip(text, 0, len(text))
        if a == b:
            return []
        if b - a <= self.max_chars:
            return [(a, b)]
        units = list(self._split(text, a, b, PARAGRAPH))
        out: list[tuple[int, int]] = []
        start, end = units[0]
        for s, e in units[1:]:
            if e - start <= self.max_chars:
                end = e
            else:
                out.append((start, end))
                start, end = s, e
        out.append((start, end))
        return out

    def _split(self, text: str, a: int, b: int, level: int) -> Iterator[tuple[int, int]]:
        if b - a <= self.max_chars:
            yield a, b
        elif level == _HARD:
            for s in range(a, b, self.max_chars):
                piece = _strip(text, s, min(b, s + self.max_chars))
                if piece[0] < piece[1]:
                    yield piece
        else:
            bounds = [a]
            for m in _SEPARATORS[level].finditer(text, a, b):
                bounds += [m.start(), m.end()]
            bounds.append(b)
            for k in range(0, len(bounds), 2):
                s, e = _strip(text, bounds[k], bounds[k + 1])
                if s < e:
                    yield from self._split(text, s, e, level + 1)
