"""``headrace graph …`` (SQL schema graph) and ``headrace cache …`` (parse cache).

Graph commands: ``ingest`` (folders of SQL files), ``show NAME`` (an entity with
its columns, keys, indexes and relations), ``neighbors NAME``, ``path A B``
(tables joined through foreign keys), ``stats``, ``failed`` and ``export``.
Exit codes as for the rest of headrace: 0 success, 1 some inputs failed (or a
name was not found), 2 bad usage, 3 the graph store or a root is unavailable,
130 ``ingest`` stopped by SIGTERM/SIGINT (what it wrote is recorded; run it again).
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from headrace.config.settings import data_dir
from headrace.errors import ConfigError
from headrace.parsers.cache import DEFAULT_MAX_ENTRIES, DEFAULT_TTL_S, ParseCache
from headrace.sinks.graph_base import GraphNode, GraphReader, GraphStore

if TYPE_CHECKING:  # imported where used: sqlglot alone adds ~31 MB to every CLI process
    from headrace.graph.ingest import GraphRunStats

graph_app = typer.Typer(
    no_args_is_help=True,
    help="SQL schema files as a knowledge graph: tables, columns, keys, views, routines.",
)
cache_app = typer.Typer(no_args_is_help=True, help="The parse cache shared by all parsers.")

GraphOpt = Annotated[
    str | None,
    typer.Option(
        "--graph",
        envvar="HEADRACE_GRAPH",
        help="graph file (ledger; graph too with --store sqlite): name or path",
    ),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store", envvar="HEADRACE_GRAPH_STORE", help="sqlite (embedded, default) | neo4j"
    ),
]
UriOpt = Annotated[
    str | None,
    typer.Option("--uri", envvar="HEADRACE_NEO4J_URI", help="Neo4j URI, e.g. neo4j://host:7687"),
]
UserOpt = Annotated[str | None, typer.Option("--user", envvar="HEADRACE_NEO4J_USER")]
Neo4jDbOpt = Annotated[
    str | None, typer.Option("--neo4j-database", envvar="HEADRACE_NEO4J_DATABASE")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache",
        envvar="HEADRACE_PARSE_CACHE",
        help="parse cache file (default: <cache dir>/parse-cache.sqlite)",
    ),
]


def graph_path(value: str | None) -> Path:
    """A name is stored as ``<data dir>/<name>.graph.sqlite``; a path is used as is."""
    value = value or "default"
    if os.sep in value or value.endswith((".db", ".sqlite")):
        return Path(value).expanduser()
    return data_dir() / f"{value}.graph.sqlite"


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False) if as_json else text)


def _make_store(
    store: str | None, uri: str | None, user: str | None, neo4j_db: str | None
) -> GraphStore | None:
    kind = (store or "sqlite").lower()
    if kind == "sqlite":
        return None  # GraphIndex opens the embedded store in the graph file
    if kind != "neo4j":
        raise ConfigError(f"unknown graph store {store!r} (sqlite | neo4j)")
    from headrace.sinks.graph_neo4j import Neo4jGraphStore

    if not uri:
        raise ConfigError("--store neo4j needs --uri (or HEADRACE_NEO4J_URI)")
    password = os.environ.get("HEADRACE_NEO4J_PASSWORD", "")
    return Neo4jGraphStore.connect(uri, user or "neo4j", password, database=neo4j_db)


def _cache(path: Path | None, enabled: bool = True) -> ParseCache | None:
    if not enabled:
        return None
    entries = int(os.environ.get("HEADRACE_PARSE_CACHE_ENTRIES", DEFAULT_MAX_ENTRIES))
    ttl_days = float(os.environ.get("HEADRACE_PARSE_CACHE_TTL_DAYS", DEFAULT_TTL_S / 86400))
    if entries < 1 or ttl_days <= 0:
        raise ConfigError("HEADRACE_PARSE_CACHE_ENTRIES and _TTL_DAYS must be positive")
    return ParseCache(path, max_entries=entries, ttl_s=ttl_days * 86400)


@graph_app.command()
def ingest(
    roots: Annotated[list[Path], typer.Argument(help="folders of SQL files")],
    graph: GraphOpt = None,
    store: StoreOpt = None,
    uri: UriOpt = None,
    user: UserOpt = None,
    neo4j_database: Neo4jDbOpt = None,
    database: Annotated[
        str | None, typer.Option(help="database of unqualified objects (default: folder name)")
    ] = None,
    dialect: Annotated[
        str | None,
        typer.Option(help="auto | mysql | postgres | sqlite | tsql | oracle | db2 | cockroachdb"),
    ] = None,
    batch_size: Annotated[
        int, typer.Option(min=1, envvar="HEADRACE_GRAPH_BATCH_SIZE", help="rows per UNWIND write")
    ] = 500,
    cache: CacheOpt = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="parse everything again")] = False,
    include: Annotated[list[str] | None, typer.Option(help="glob to include (repeat)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="glob to exclude (repeat)")] = None,
    allow_root_deletion: Annotated[
        bool, typer.Option("--allow-root-deletion", help="drop the graph of a vanished root")
    ] = False,
    search_index: Annotated[
        str | None,
        typer.Option("--index", help="also put the schema text into this search index"),
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="embedder of the search index")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Sync SQL files into the graph: first run everything, later runs only changes."""
    from headrace.graph.ingest import GraphIndex
    from headrace.graph.writer import RetryPolicy

    parse_cache = _cache(cache, enabled=not no_cache)
    path_ = graph_path(graph)
    index = GraphIndex(
        path_,
        store=_make_store(store, uri, user, neo4j_database),
        cache=parse_cache,
        database=database,
        dialect=dialect,
        batch_size=batch_size,
        retry=RetryPolicy(),
        include=include or (),
        exclude=exclude or (),
        allow_root_deletion=allow_root_deletion,
        search_mirror=search_mirror(path_),
    )
    try:
        with stop_on_signals(index.request_stop):
            stats = index.ingest([str(r) for r in roots])
        saved = {
            "store": (store or "sqlite").lower(),
            "uri": uri,
            "user": user,
            "database": neo4j_database,
        }
        index.ledger.set_meta("graph_store", json.dumps(saved))
    finally:
        index.close()
        if parse_cache is not None:
            parse_cache.close()
    snap: dict[str, Any] = stats.snapshot()
    text = _summary(stats)
    if search_index is not None and not stats.stopped:
        snap["search"] = _refresh_search(path_, search_index, embedder)
        text += f"\nsearch index {snap['search']['index']}: {snap['search']['files_done']} pages"
    _emit(snap, as_json, text)
    if stats.stopped:  # SIGTERM/SIGINT: what was written is recorded; rerun to resume
        raise typer.Exit(130)
    if stats.files_failed or stats.dead_letters:
        raise typer.Exit(1)


@contextmanager
def stop_on_signals(request_stop: Callable[[], None]) -> Iterator[None]:
    """SIGTERM and SIGINT call ``request_stop`` (a graceful stop) while inside."""
    handler = lambda *_: request_stop()  # noqa: E731
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)


def search_mirror(graph: Path) -> Path:
    """The folder of rendered schema pages that the search index ingests."""
    return graph.with_name(graph.name + ".search")


def _refresh_search(graph: Path, index: str, embedder: str | None) -> dict[str, Any]:
    """The rendered pages → the search index (an unchanged page costs nothing)."""
    from headrace.api import Index
    from headrace.config.settings import load_settings

    mirror = search_mirror(graph)
    mirror.mkdir(parents=True, exist_ok=True)
    # The mirror is derived state: an emptied mirror is a real deletion.
    settings = load_settings(index=index, allow_root_deletion=True)
    with Index(settings=settings, embedder=embedder) as idx:
        result: dict[str, Any] = idx.ingest([str(mirror)]).snapshot()
        result["index"] = str(idx.path)
    return result


def _summary(s: GraphRunStats) -> str:
    snap = s.snapshot()
    return (
        f"{s.files_done} files ingested ({s.cache_file_hits} from the parse cache),"
        f" {s.renamed} renamed, {s.touched} touched, {s.deleted} deleted, {s.unchanged} unchanged,"
        f" {s.files_failed} failed; {s.statements} statements ({s.data_statements} data skipped,"
        f" {s.parsed_statements} parsed, {s.cached_statements} from the cache,"
        f" {s.failed_statements} unreadable); {s.nodes_written}"
        f" node and {s.edges_written} edge rows in {s.write_calls} writes ({s.retries} retries,"
        f" {s.splits} splits); {s.dead_letters} dead letters; {s.elapsed_s:.2f}s"
        + (f", p50 {snap['p50_ms']} ms/file" if "p50_ms" in snap else "")
    )


@contextmanager
def _reader(graph: str | None) -> Iterator[GraphReader]:
    from headrace.graph.ingest import GraphIndex

    path = graph_path(graph)
    if not path.exists():
        raise ConfigError(f"no graph at {path}: run `headrace graph ingest` first")
    index = GraphIndex(path, store=_stored_store(path))
    try:
        yield index.store  # type: ignore[misc]
    finally:
        index.close()


def _stored_store(path: Path) -> GraphStore | None:
    """The store the last ingest used (Neo4j details are kept in the graph file)."""
    from headrace.ledger.db import connect
    from headrace.ledger.ledger import Ledger

    conn = connect(path)
    try:
        saved = Ledger(conn).meta("graph_store")
    finally:
        conn.close()
    info = json.loads(saved) if saved else {}
    if info.get("store", "sqlite") == "sqlite":
        return None
    return _make_store(info["store"], info.get("uri"), info.get("user"), info.get("database"))


def _resolve(reader: GraphReader, name: str) -> list[GraphNode]:
    found = reader.find(name)
    if not found:
        typer.echo(f"headrace: nothing named {name!r} in the graph", err=True)
        raise typer.Exit(1)
    return found


def _show_text(node: GraphNode, edges: list[Any]) -> str:
    lines = [f"{node.kind} {node.props.get('qualified', node.name)}  [{node.key}]"]
    lines += [f"  defined in {f}" for f in node.files]
    lines += [f"  mentioned in {f}" for f in node.mentioned_in]
    extra = {k: v for k, v in node.props.items() if k not in ("qualified",)}
    if extra:
        lines.append("  " + ", ".join(f"{k}={v}" for k, v in sorted(extra.items())))
    for edge, other in edges:
        arrow = "->" if edge.src == node.key else "<-"
        detail = ""
        if other.kind == "column":
            p = other.props
            detail = f" {p.get('type', '')}{' NOT NULL' if p.get('nullable') is False else ''}"
            detail += " PK" if p.get("primary_key") else ""
        if edge.props:
            detail += "  " + ", ".join(f"{k}={v}" for k, v in sorted(edge.props.items()))
        lines.append(f"  {edge.type:<11} {arrow} {other.kind} {other.name}{detail}")
    return "\n".join(lines)


@graph_app.command()
def show(
    name: Annotated[str, typer.Argument(help="table, view, column, routine … (name or key)")],
    graph: GraphOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """An entity: where it is defined, its columns, keys, indexes and relations."""
    with _reader(graph) as reader:
        out = []
        for node in _resolve(reader, name):
            out.append((node, reader.edges(node.key)))
    data = [
        {
            "key": n.key,
            "kind": n.kind,
            "name": n.name,
            "props": dict(n.props),
            "files": n.files,
            "mentioned_in": n.mentioned_in,
            "edges": [
                {"type": e.type, "src": e.src, "dst": e.dst, "props": dict(e.props)} for e, _ in es
            ],
        }
        for n, es in out
    ]
    _emit(data, as_json, "\n\n".join(_show_text(n, es) for n, es in out))


@graph_app.command()
def neighbors(
    name: Annotated[str, typer.Argument(help="entity name or key")],
    type_: Annotated[
        list[str] | None,
        typer.Option("--type", help="only these relations (repeat), e.g. REFERENCES"),
    ] = None,
    graph: GraphOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Entities one relation away (a table: its columns, foreign keys, views, indexes)."""
    wanted = {t.upper() for t in type_ or ()}
    rows = []
    with _reader(graph) as reader:
        for node in _resolve(reader, name):
            for edge, other in reader.edges(node.key):
                if wanted and edge.type not in wanted:
                    continue
                direction = "out" if edge.src == node.key else "in"
                rows.append(
                    {
                        "from": node.key,
                        "type": edge.type,
                        "direction": direction,
                        "kind": other.kind,
                        "key": other.key,
                        "name": other.name,
                    }
                )
    text = "\n".join(
        f"{r['from']} {'-' if r['direction'] == 'out' else '<-'}[{r['type']}]"
        f"{'->' if r['direction'] == 'out' else '-'} {r['kind']} {r['key']}"
        for r in rows
    )
    _emit(rows, as_json, text or "no neighbors")


def _scope(key: str) -> str:
    """``relation:db.schema.name`` -> ``db.schema``."""
    return key.split(":", 1)[1].rsplit(".", 1)[0]


@graph_app.command()
def path(
    source: Annotated[str, typer.Argument(help="from table")],
    target: Annotated[str, typer.Argument(help="to table")],
    via: Annotated[
        list[str] | None, typer.Option(help="relations to follow (repeat); default REFERENCES")
    ] = None,
    max_hops: Annotated[int, typer.Option(min=1, max=12)] = 6,
    graph: GraphOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """How two tables connect through foreign keys (shortest path, either direction)."""
    types = [t.upper() for t in via or ["REFERENCES"]]
    found = []
    with _reader(graph) as reader:
        sources = [n for n in _resolve(reader, source) if n.kind in ("table", "view")]
        targets = [n for n in _resolve(reader, target) if n.kind in ("table", "view")]
        for s in sources:
            same = [t for t in targets if _scope(t.key) == _scope(s.key)] or targets
            for t in same:
                trail = reader.path(s.key, t.key, types, max_hops)
                if trail:
                    found.append(trail)
    text = "\n".join(" -> ".join(k.split(":", 1)[1] for k in trail) for trail in found)
    _emit(found, as_json, text or f"no path within {max_hops} hops")
    if not found:
        raise typer.Exit(1)


@graph_app.command()
def stats(graph: GraphOpt = None, as_json: JsonOpt = False) -> None:
    """Entities by kind, relations by type, contributing files."""
    with _reader(graph) as reader:
        counts = reader.counts()
    text = "\n".join(
        f"{group:<10} " + ", ".join(f"{k} {v}" for k, v in sorted(values.items()))
        for group, values in counts.items()
    )
    _emit(counts, as_json, text)


@graph_app.command()
def failed(graph: GraphOpt = None, as_json: JsonOpt = False) -> None:
    """Dead letters: unreadable statements (file:line) and graph rows the store refused."""
    path_ = graph_path(graph)
    if not path_.exists():
        _emit([], as_json, "no failures")
        return
    from headrace.graph.ingest import GraphIndex

    index = GraphIndex(path_)
    try:
        letters = index.failed()
    finally:
        index.close()
    rows = [{name: getattr(d, name) for name in d.__slots__} for d in letters]
    text = "\n".join(
        f"{d.path}{f':{d.line}' if d.line else ''}  [{d.stage}] {d.error_type}: {d.message}"
        for d in letters
    )
    _emit(rows, as_json, text or "no failures")


@graph_app.command()
def export(graph: GraphOpt = None) -> None:
    """The whole graph as JSON lines: nodes (with their files), then edges."""
    with _reader(graph) as reader:
        for row in reader.dump():
            typer.echo(json.dumps(row, sort_keys=True, ensure_ascii=False))


@cache_app.command("stats")
def cache_stats(cache: CacheOpt = None, as_json: JsonOpt = False) -> None:
    """Entries, bytes, hits, misses and hit rate of the parse cache."""
    pc = _cache(cache)
    assert pc is not None
    with pc:
        data = pc.stats()
    text = (
        f"cache      {data['path']}\n"
        f"entries    {data.get('entries', 0)} (max {data['max_entries']},"
        f" TTL {data['ttl_days']:g} days), {data.get('bytes', 0) / 1e6:.1f} MB\n"
        f"hits       {data.get('hits', 0)}, misses {data.get('misses', 0)},"
        f" hit rate {data.get('hit_rate', 0.0):.1%}\n"
        f"evicted    {data.get('evictions', 0)} (LRU), {data.get('expired', 0)} expired"
    )
    _emit(data, as_json, text)


@cache_app.command("clear")
def cache_clear(cache: CacheOpt = None, as_json: JsonOpt = False) -> None:
    """Delete every cached parse result."""
    pc = _cache(cache)
    assert pc is not None
    with pc:
        removed = pc.clear()
    _emit({"removed": removed}, as_json, f"{removed} entries removed")
