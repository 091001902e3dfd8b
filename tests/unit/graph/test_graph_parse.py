"""The parse side's rows: a file's fragment travels as ``rows_json`` (properties as
the stores' text), the same in this process, from the parse cache and from a worker."""

from __future__ import annotations

import shutil
from pathlib import Path

import orjson
import pytest
import zstandard

from headrace.graph import parse
from headrace.graph.build import build_fragment
from headrace.graph.parse import ParseContext, Parsed, parse_file
from headrace.graph.render import render
from headrace.parsers.cache import ParseCache
from headrace.parsers.sql.script import ScriptParser
from headrace.records import FileRef
from headrace.sinks.graph_base import props_json

FIXTURE = Path(__file__).parents[2] / "fixtures" / "sql" / "sakila" / "postgres-sakila-schema.sql"


def _ref(tmp_path: Path) -> FileRef:
    root = tmp_path / "sakila"
    root.mkdir()
    path = root / "schema.sql"
    shutil.copy(FIXTURE, path)
    st = path.stat()
    return FileRef(str(root), "schema.sql", str(path), st.st_size, st.st_mtime_ns, st.st_ino)


def test_rows_are_the_fragments_with_props_as_store_text_from_any_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = _ref(tmp_path)
    ctx = ParseContext("postgres", None, "t")
    fresh = parse_file(ctx, ref)
    assert isinstance(fresh, Parsed)
    assert not fresh.hit
    parts = fresh.parts("g")
    # what the builder made, props encoded as the stores encode them
    result, _ = ScriptParser("postgres").parse(Path(ref.path).read_bytes())
    frag = build_fragment(ref.path, "g", "sakila", result)
    assert parts.nodes == [[*n[:5], props_json(n.props)] for n in frag.nodes.values()]
    assert parts.edges == [[*e[:4], props_json(e.props)] for e in frag.edges.values()]
    assert any(n[5] != "{}" for n in parts.nodes)
    back = parts.fragment()  # the search mirror's view: mappings again
    assert back.nodes == frag.nodes
    assert back.edges == frag.edges
    # the same rows from the parse cache, in this process and in a worker
    with ParseCache(tmp_path / "c.sqlite") as cache:
        ctx = ParseContext("postgres", None, "t", cache)
        first = parse_file(ctx, ref)
        assert isinstance(first, Parsed)
        # stored: the counts line, then the rows compressed
        counts_line, packed = first.cache_value.split(b"\n", 1)
        assert orjson.loads(counts_line)["statements"] > 0
        rows_text = zstandard.ZstdDecompressor().decompress(packed)
        assert orjson.loads(rows_text) == first.rows
        assert len(first.cache_value) < len(rows_text) / 3
        cache.put(first.frag_parser, first.full, first.cache_value)
        cache.flush()
        hit = parse_file(ctx, ref)
        assert isinstance(hit, Parsed)
        assert hit.hit
        # a worker's context (what _init_worker sets up, without its signal handling)
        worker_cache = ParseCache(cache.path, buffer_only=True)
        monkeypatch.setitem(parse._WORKER, "ctx", ParseContext("postgres", None, "t", worker_cache))
        (worker,), _log = parse._work([ref])
        assert isinstance(worker, Parsed)
        assert worker.hit
        # a worker's result travels packed only: its rows are decoded when asked for
        assert worker.rows is None
        assert worker.shape == (len(parts.nodes), len(parts.edges))
    for other in (first, hit, worker):
        got = other.parts("g")
        assert (got.nodes, got.edges, got.issues) == (parts.nodes, parts.edges, parts.issues)


def test_a_search_page_is_rendered_where_the_file_is_parsed_the_same_from_any_path(
    tmp_path: Path,
) -> None:
    """``ParseContext.pages``: the page comes with the result (parsed, or a whole-file
    cache hit), equal to the page of the fragment built from the file; without it,
    no page is rendered."""
    ref = _ref(tmp_path)
    result, _ = ScriptParser("postgres").parse(Path(ref.path).read_bytes())
    expected = render(build_fragment(ref.path, "g", "sakila", result))
    assert "## table film" in expected
    plain = parse_file(ParseContext("postgres", None, "t"), ref)
    assert isinstance(plain, Parsed)
    assert plain.page is None
    with ParseCache(tmp_path / "c.sqlite") as cache:
        ctx = ParseContext("postgres", None, "t", cache, pages=True)
        first = parse_file(ctx, ref)
        assert isinstance(first, Parsed)
        cache.put(first.frag_parser, first.full, first.cache_value)
        hit = parse_file(ctx, ref)
        assert isinstance(hit, Parsed)
        assert hit.hit
    assert first.page == hit.page == expected
    assert first.parts("g").page == expected
