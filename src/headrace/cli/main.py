"""The ``headrace`` command: a thin layer over ``headrace.Index``.

Exit codes: 0 success; 1 some inputs failed (see ``headrace failed``); 2 bad usage
or configuration; 3 the index or a root is unavailable; 130 interrupted (the index
is consistent and the next run resumes).
"""

from __future__ import annotations

import json
import logging
import signal
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from headrace.api import Index
from headrace.cli.graph import cache_app, graph_app
from headrace.cli.ontology import ontology_app
from headrace.cli.watch import watch_command, watcher_status
from headrace.config.settings import Settings, load_settings
from headrace.errors import ConfigError, HeadraceError, RootUnavailableError, StoreError
from headrace.observability.progress import show_progress
from headrace.pipeline.switch import SwitchReport
from headrace.presets import apply_settings, get_preset
from headrace.runtime.stats import RunStats
from headrace.sinks.filters import SearchFilters, parse_time


def _settings_help() -> str:
    rows = [
        f"{name} (HEADRACE_{name.upper()}, default "
        f"{[] if field.default_factory else field.default!r}): {field.description}"
        for name, field in Settings.model_fields.items()
    ]
    return "Settings, as TOML keys:\n\n" + "\n\n".join(rows)


app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Keep a searchable index in sync with folders. Settings: flags > HEADRACE_* "
    "environment > TOML file (--config / HEADRACE_CONFIG / ./headrace.toml) > defaults.",
    epilog=_settings_help(),
)
app.add_typer(ontology_app, name="ontology")
app.add_typer(graph_app, name="graph")
app.add_typer(cache_app, name="cache")
app.command("watch")(watch_command)
state: dict[str, Any] = {}

IndexOpt = Annotated[
    str | None, typer.Option("--index", envvar="HEADRACE_INDEX", help="index file or name")
]
EmbedderOpt = Annotated[
    str | None,
    typer.Option("--embedder", envvar="HEADRACE_EMBEDDER", help="minilm | minilm-torch | none"),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


@app.callback()
def _main(
    config: Annotated[
        Path | None, typer.Option("--config", envvar="HEADRACE_CONFIG", help="TOML settings")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
) -> None:
    if config is not None:
        import os

        os.environ["HEADRACE_CONFIG"] = str(config)
    state["quiet"] = quiet
    logging.basicConfig(
        level=logging.WARNING if quiet else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        stream=sys.stderr,
    )


PresetOpt = Annotated[
    str | None, typer.Option("--preset", help="named preset, e.g. claude-code (roots, parser)")
]
StoreOpt = Annotated[
    str | None, typer.Option("--store", envvar="HEADRACE_STORE", help="sqlite | qdrant")
]
QdrantUrlOpt = Annotated[
    str | None,
    typer.Option("--qdrant-url", envvar="HEADRACE_QDRANT_URL", help="Qdrant server URL"),
]
QdrantPathOpt = Annotated[
    str | None,
    typer.Option("--qdrant-path", envvar="HEADRACE_QDRANT_PATH", help="Qdrant local-mode folder"),
]


def _open(
    index: str | None, embedder: str | None = None, preset: str | None = None, **flags: Any
) -> Index:
    settings = apply_settings(
        load_settings(index=index, **flags), get_preset(preset) if preset else None
    )
    return Index(settings=settings, embedder=embedder)


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str) if as_json else text)


@app.command()
def ingest(
    roots: Annotated[
        list[Path] | None, typer.Argument(help="folders to sync (or from --preset)")
    ] = None,
    index: IndexOpt = None,
    embedder: EmbedderOpt = None,
    preset: PresetOpt = None,
    store: StoreOpt = None,
    qdrant_url: QdrantUrlOpt = None,
    qdrant_path: QdrantPathOpt = None,
    include: Annotated[list[str] | None, typer.Option(help="glob to include (repeat)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="glob to exclude (repeat)")] = None,
    overlap: Annotated[
        int | None,
        typer.Option(envvar="HEADRACE_OVERLAP_TOKENS", help="overlap tokens between chunks"),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(envvar="HEADRACE_WORKERS", help="reader/parser threads")
    ] = None,
    allow_root_deletion: Annotated[
        bool | None,
        typer.Option(
            "--allow-root-deletion",
            envvar="HEADRACE_ALLOW_ROOT_DELETION",
            help="delete the files of a missing or emptied root",
        ),
    ] = None,
    reembed: Annotated[
        bool,
        typer.Option(
            "--reembed", help="switch an index of another model to --embedder first (see reembed)"
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sync folders into the index: first run everything, later runs only changes."""
    paths = [str(r) for r in roots or []] or (get_preset(preset).expanded_roots() if preset else [])
    if not paths:
        raise ConfigError("ingest needs ROOTS or a --preset that names them")
    idx = _open(
        index,
        embedder,
        preset,
        store=store,
        qdrant_url=qdrant_url,
        qdrant_path=qdrant_path,
        include=include or None,
        exclude=exclude or None,
        overlap_tokens=overlap,
        workers=workers,
        allow_root_deletion=allow_root_deletion,
    )
    stats = RunStats()
    handler = lambda *_: idx.request_stop()  # noqa: E731
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with show_progress(stats, enabled=not state.get("quiet") and not as_json):
            if reembed:  # files under ROOTS are re-read by the ingest itself
                _switched(idx.reembed(stats=stats, reprocess=False), as_json)
            idx.ingest(paths, stats=stats)
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
    _finish(idx, stats, as_json)


@app.command("reembed")
def reembed_command(
    embedder: Annotated[
        str, typer.Option("--embedder", envvar="HEADRACE_EMBEDDER", help="the model to switch to")
    ],
    index: IndexOpt = None,
    preset: PresetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Switch the index to another model: vectors from the embedding cache where
    present, only missing texts embedded; never two models' vectors in one index.
    Files whose chunks must change (from or to `none`, another tokenizer) are re-read."""
    idx = _open(index, embedder, preset)
    stats = RunStats()
    handler = lambda *_: idx.request_stop()  # noqa: E731
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with show_progress(stats, enabled=not state.get("quiet") and not as_json):
            report = idx.reembed(stats=stats)
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
    _switched(report, as_json)
    _finish(idx, stats, as_json)


def _switched(report: SwitchReport, as_json: bool) -> None:
    text = (
        f"model {report.old_model} -> {report.new_model} ({report.mode}):"
        f" {report.chunks} chunks re-embedded in place ({report.embeddings_computed} computed,"
        f" {report.embeddings_cached} from the cache), {report.files_reprocessed} files to re-read"
    )
    typer.echo(json.dumps(report.__dict__) if as_json else text, err=True)  # stdout: run stats


def _finish(idx: Index, stats: RunStats, as_json: bool) -> None:
    snap = stats.snapshot()
    stopped = idx.stopped
    idx.close()
    _emit(snap, as_json, _summary(snap) + (" (stopped: run again to resume)" if stopped else ""))
    if stopped:
        raise typer.Exit(130)
    if snap["files_failed"] or snap["dead_letters"]:
        raise typer.Exit(1)


def _summary(s: dict[str, Any]) -> str:
    return (
        f"{s['files_done']} files indexed, {s['renamed']} renamed, {s['touched']} touched,"
        f" {s['deleted']} deleted, {s['unchanged']} unchanged, {s['files_skipped']} skipped,"
        f" {s['files_failed']} failed; {s['chunks_written']} chunks,"
        f" {s['embeddings_computed']} embeddings computed ({s['embeddings_cached']} cached),"
        f" {s['dead_letters']} dead letters in {s['elapsed_s']:.2f}s"
    )


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="what to look for")],
    k: Annotated[int, typer.Option("-k", help="number of results")] = 10,
    mode: Annotated[str, typer.Option(help="hybrid | vector | keyword")] = "hybrid",
    index: IndexOpt = None,
    preset: PresetOpt = None,
    store: StoreOpt = None,
    qdrant_url: QdrantUrlOpt = None,
    qdrant_path: QdrantPathOpt = None,
    project: Annotated[str | None, typer.Option(help="only this project")] = None,
    session: Annotated[str | None, typer.Option(help="only this session id")] = None,
    since: Annotated[str | None, typer.Option(help="from: 2026-02-10, …T21:00Z or 7d")] = None,
    until: Annotated[str | None, typer.Option(help="up to: a date, a time or an age")] = None,
    tool: Annotated[str | None, typer.Option(help="turns that used this tool (Bash …)")] = None,
    file: Annotated[str | None, typer.Option(help="turns that touched this path or name")] = None,
    concept: Annotated[str | None, typer.Option(help="turns about this concept")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the index: vector and keyword results fused (RRF), optionally filtered."""
    filters = SearchFilters(
        project, session, tool, file, concept, parse_time(since), parse_time(until)
    )
    with _open(
        index, None, preset, store=store, qdrant_url=qdrant_url, qdrant_path=qdrant_path
    ) as idx:
        hits = idx.search(query, k, mode=mode, filters=filters)
    if as_json:
        typer.echo(
            json.dumps(
                [h.__dict__ if hasattr(h, "__dict__") else _hit_dict(h) for h in hits],
                indent=2,
                default=str,
            )
        )
        return
    for n, h in enumerate(hits, 1):
        where = f"{h.path}:{h.line_start}-{h.line_end}" + (f"  [{h.heading}]" if h.heading else "")
        snippet = " ".join(h.text.split())[:300]
        typer.echo(f"{n}. {where}  score={h.score:.4f}{_said(h.metadata)}\n   {snippet}\n")


def _said(meta: Any) -> str:
    """When and where a conversation passage was said (transcript metadata only)."""
    if not isinstance(meta, dict) or "session" not in meta or "project" not in meta:
        return ""
    parts = [str(meta.get("timestamp") or "?"), f"project={meta['project']}"]
    parts += [f"{k}={meta[k]}" for k in ("session", "git_branch", "cwd") if meta.get(k)]
    return "\n   said " + " ".join(parts)


def _hit_dict(h: Any) -> dict[str, Any]:
    return {name: getattr(h, name) for name in h.__slots__}


def _describe_run(run: dict[str, Any]) -> str:
    """``ok {...summary}``; ``never`` when no ``ingest`` ran (watch batches are not runs)."""
    return f"{run['status']} {json.dumps(run.get('summary', {}))}" if run else "never"


@app.command()
def status(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Files, chunks, last run, failures and index size."""
    with _open(index) as idx:
        st = idx.status()
        st["watcher"], watcher_text = watcher_status(idx.path)
    files = st["files"]
    last = st["last_run"] or {}
    text = (
        f"index      {st['index']} ({st['size_bytes'] / 1e6:.1f} MB)\nmodel      {st['model']}\n"
        f"files      {files.get('indexed', 0)} indexed, {files.get('skipped', 0)} skipped,"
        f" {files.get('failed', 0)} failed\nchunks     {files['chunks']}\n"
        f"failures   {files['dead_letters']} dead letters (headrace failed)\n"
        f"cache      {st['embedding_cache']} vectors ({st['embedding_cache_bytes'] / 1e6:.1f} MB;"
        " headrace gc)\n"
        f"last run   {_describe_run(last)}\n"
        f"{watcher_text}"
    )
    _emit(st, as_json, text)


@app.command("gc")
def gc_command(
    index: IndexOpt = None,
    vacuum: Annotated[
        bool, typer.Option("--vacuum", help="rewrite the file to return freed space (slow)")
    ] = False,
    other_models: Annotated[
        bool,
        typer.Option("--other-models", help="also other models' vectors (a switch back re-embeds)"),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Drop every embedding-cache vector no chunk uses now (automatic pruning keeps only
    the embed_cache_max_mb bound); prints what went and the file size before/after."""
    with _open(index) as idx:
        before = idx.status()
        report = idx.prune_cache(full=True, other_models=other_models)
        idx.compact(vacuum=vacuum)
        after = idx.status()
    data = {"removed": report.__dict__, "before": before, "after": after}
    text = (
        f"removed {report.entries} cache entries ({report.bytes / 1e6:.1f} MB of vectors);"
        f" kept {after['embedding_cache']} ({after['embedding_cache_bytes'] / 1e6:.1f} MB)\n"
        f"index file {before['size_bytes'] / 1e6:.1f} MB -> {after['size_bytes'] / 1e6:.1f} MB,"
        f" {after['free_bytes'] / 1e6:.1f} MB free inside it"
        + ("" if vacuum else " (reused by later writes; --vacuum returns it)")
    )
    _emit(data, as_json, text)


@app.command()
def plan(
    roots: Annotated[list[Path], typer.Argument(help="folders to compare with the index")],
    index: IndexOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Dry run: what ingest would add, change, move or delete. Writes nothing."""
    with _open(index) as idx:
        p = idx.plan([str(r) for r in roots])
    data = {
        "summary": p.summary(),
        "added": [r.path for r in p.added],
        "changed": [r.path for r in p.changed],
        "renamed": [[o, r.path] for o, r in p.renamed],
        "deleted": p.deleted,
        "protected": p.protected,
        "skipped": [[s.path, s.reason] for s in p.skipped],
        "root_problems": [[r.root, r.reason] for r in p.root_problems],
    }
    lines = [" ".join(f"{k}={v}" for k, v in p.summary().items())]
    for key in ("added", "changed", "renamed", "deleted", "protected", "skipped"):
        lines += [f"{key[:-1] if key.endswith('d') else key} {v}" for v in data[key]][:200]
    _emit(data, as_json, "\n".join(lines))


@app.command()
def failed(index: IndexOpt = None, as_json: JsonOpt = False) -> None:
    """Dead letters: each failure with its stage, reason and location."""
    with _open(index) as idx:
        letters = idx.failed()
    rows = [_hit_dict(d) for d in letters]
    text = (
        "\n".join(
            f"{d.path}{f':{d.line}' if d.line else ''}"
            f"{f' @{d.offset}' if d.offset is not None else ''}"
            f"  [{d.stage}] {d.error_type}: {d.message}  (attempts {d.attempts})"
            for d in letters
        )
        or "no failures"
    )
    _emit(rows, as_json, text)


@app.command()
def retry(
    index: IndexOpt = None,
    preset: PresetOpt = None,
    store: StoreOpt = None,
    qdrant_url: QdrantUrlOpt = None,
    qdrant_path: QdrantPathOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Process every failed file again (with the preset and store it was ingested with)."""
    idx = _open(index, None, preset, store=store, qdrant_url=qdrant_url, qdrant_path=qdrant_path)
    stats = RunStats()
    with show_progress(stats, enabled=not state.get("quiet") and not as_json):
        idx.retry(stats=stats)
    _finish(idx, stats, as_json)


@app.command()
def export(
    index: IndexOpt = None,
    jsonl: Annotated[bool, typer.Option("--jsonl", help="one JSON object per line")] = True,
) -> None:
    """Canonical dump: id, source, position, text, metadata, vector digest."""
    with _open(index) as idx:
        out = sys.stdout
        for row in idx.export():
            out.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def main() -> None:
    """Entry point: maps headrace errors to exit codes."""
    try:
        # With standalone_mode=False click returns the code of a typer.Exit.
        code = app(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # click's usage errors: unknown option, bad value
        if message := exc.format_message():  # empty after "no arguments": help was shown
            typer.echo(f"headrace: {message}", err=True)
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        typer.echo(f"headrace: {exc}", err=True)
        sys.exit(2)
    except (RootUnavailableError, StoreError) as exc:
        typer.echo(f"headrace: {exc}", err=True)
        sys.exit(3)
    except HeadraceError as exc:
        typer.echo(f"headrace: {exc}", err=True)
        sys.exit(1)
