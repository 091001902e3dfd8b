"""``headrace ontology …``: sync git repositories of ontologies, ask the model questions.

Commands: ``sync`` (a repository path or URL), ``status``, ``show TERM``,
``failed`` (dead letters with file and line) and ``dangling`` (references that
resolve nowhere). Exit codes as for the rest of headrace: 0 success, 1 some inputs
failed (or a transient failure left the cursor behind), 2 bad usage, 3 the
repository or database is unavailable, 130 interrupted.
"""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Annotated, Any

import typer

from headrace.config.settings import data_dir
from headrace.errors import ConfigError
from headrace.ontology.sync import OntologySync, SyncReport
from headrace.sinks import ontology_query as q
from headrace.sinks.ontology_sqlite import OntologyStore

ontology_app = typer.Typer(
    no_args_is_help=True,
    help="Sync git repositories of ontology files into a relational SQLite model.",
)

DbOpt = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="HEADRACE_ONTOLOGY_DB",
        help="ontology database (default: <data dir>/ontology.sqlite)",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _store(db: Path | None) -> OntologyStore:
    return OntologyStore(db if db is not None else data_dir() / "ontology.sqlite")


def _emit(data: Any, as_json: bool, text: str) -> None:
    typer.echo(json.dumps(data, indent=2, default=str, ensure_ascii=False) if as_json else text)


@ontology_app.command()
def sync(
    repo: Annotated[str, typer.Argument(help="local repository path or remote URL")],
    ref: Annotated[str, typer.Option(help="branch, tag or commit to sync")] = "HEAD",
    db: DbOpt = None,
    include: Annotated[list[str] | None, typer.Option(help="path glob to include (repeat)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="path glob to exclude (repeat)")] = None,
    index: Annotated[
        str | None, typer.Option("--index", help="also render the terms into this search index")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", help="embedder of the search index")
    ] = None,
    docs: Annotated[
        bool,
        typer.Option(
            "--docs", help="with --index: also index the repository's .md/.txt/.rst documents"
        ),
    ] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sync REPO at REF: first run the whole tree, later runs only the diff."""
    if index is None and (docs or embedder is not None):
        raise ConfigError("--docs and --embedder need --index (the search index to feed)")
    store = _store(db)
    runner = OntologySync(store, repo, ref=ref, include=include, exclude=exclude)
    handler = lambda *_: runner.request_stop()  # noqa: E731
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        report = runner.run()
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
    data: dict[str, Any] = report.as_dict()
    if index is not None and not runner.stopped:
        data["search"] = _refresh_search(store, runner, report.commit, index, embedder, docs=docs)
    store.close()
    _emit(data, as_json, _summary(report) + _search_summary(data.get("search")))
    if runner.stopped:
        raise typer.Exit(130)
    if report.failed or report.transient_failures:
        raise typer.Exit(1)


DOC_EXTENSIONS = (".md", ".markdown", ".txt", ".rst")


def _refresh_search(
    store: OntologyStore,
    runner: OntologySync,
    commit: str,
    index: str,
    embedder: str | None,
    *,
    docs: bool,
) -> dict[str, Any]:
    """Terms rendered as pages (plus, with ``docs``, the repository's documents) → ``index``."""
    from headrace.api import Index
    from headrace.config.settings import load_settings
    from headrace.ontology.search import render_pending, source_dir
    from headrace.sources.git_mirror import GitMirror

    mirror = store.path.with_name(store.path.name + ".search")
    pages = render_pending(store, mirror)
    # Without --docs the mirror's docs/ is emptied, so turning it off removes them.
    docs_dir = source_dir(mirror, runner.source) / "docs"
    mirrored = GitMirror(
        runner.repo,
        docs_dir,
        lambda p: docs and p.lower().endswith(DOC_EXTENSIONS) and runner.filter(p),
        signature=json.dumps([docs, DOC_EXTENSIONS, runner.filter_spec]),
        state=mirror.with_name(f"{mirror.name}-{docs_dir.parent.name}.docs-commit"),
    ).sync(commit)
    # The mirror is derived state: emptying it is a real deletion, not an unmounted disk.
    settings = load_settings(index=index, allow_root_deletion=True)
    with Index(settings=settings, embedder=embedder) as idx:
        stats = idx.ingest([str(mirror)])
    return {
        "pages_rendered": pages,
        "docs_written": mirrored.written,
        "docs_deleted": mirrored.deleted,
        "index": str(idx.path),
    } | stats.snapshot()


def _summary(r: SyncReport) -> str:
    head = f"{r.source} @ {r.commit[:12]} ({r.mode}"
    head += f" from {r.previous[:12]})" if r.previous and r.mode != "full" else ")"
    text = (
        f"{head}: {r.files} changed files; {r.stored} stored, {r.renamed} renamed,"
        f" {r.deleted} deleted, {r.documents} plain documents, {r.skipped} already done,"
        f" {r.failed} failed in {r.elapsed_s:.2f}s [{r.outcome}]"
    )
    if r.dangling:
        text += f"\n{r.dangling} dangling references kept (see: headrace ontology dangling)"
    if r.transient_failures:
        text += f"\n{len(r.transient_failures)} transient failures (cursor kept; run again):"
        text += "".join(f"\n  {t}" for t in r.transient_failures[:20])
    if r.failed:
        text += "\nsee: headrace ontology failed"
    return text


def _search_summary(search: dict[str, Any] | None) -> str:
    if not search:
        return ""
    return (
        f"\nsearch index {search['index']}: {search['pages_rendered']} term pages rendered,"
        f" {search['docs_written']} documents copied,"
        f" {search['files_done']} indexed, {search['deleted']} deleted,"
        f" {search['embeddings_computed']} embeddings computed"
    )


@ontology_app.command()
def status(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Synced sources (commit, files) and the size of the model."""
    store = _store(db)
    st = q.status(store.conn)
    store.close()
    lines = [
        f"{s['source']} @ {s['commit'][:12]} ({s['ref']}): {s['files']} ontology files"
        for s in st["sources"]
    ] or ["nothing synced yet"]
    lines.append(" ".join(f"{k}={v}" for k, v in st["counts"].items()))
    _emit(st, as_json, "\n".join(lines))


@ontology_app.command()
def show(
    term: Annotated[str, typer.Argument(help="IRI, CURIE (mv:APIStandard), label or page name")],
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A term: where it is defined, its super-classes, restrictions and relations."""
    store = _store(db)
    found = q.find_terms(store.conn, term)
    if not found:
        store.close()
        typer.echo(f"headrace: no term named {term!r}", err=True)
        raise typer.Exit(1)
    described = [q.describe(store.conn, t) for t in found[:5]]
    store.close()
    _emit(described, as_json, "\n\n".join(_show_text(d) for d in described))


def _show_text(d: dict[str, Any]) -> str:
    out = [f"{d['iri']}  ({d['kind']})", f"  defined in {d['path']} @ {d['commit'][:12]}"]
    for key in ("labels", "term_ids", "definitions"):
        out += [f"  {key[:-1].replace('_', ' ')}: {v}" for v in d[key]]
    out += [f"  sub-class of {_target(s)}" for s in d["superclasses"]]
    out += [f"  restriction {r['expression']}" for r in d["restrictions"]]
    out += [f"  {a['kind'].replace('_', ' ')}: {a['expression']}" for a in d["axioms"]]
    out += [f"  {r['predicate']} → {_target(r)}" for r in d["relations"]]
    if d["subclasses"]:
        out.append(f"  sub-classes: {', '.join(d['subclasses'][:20])}")
    out += [f"  {a['property']}: {a['value']}" for a in d["annotations"][:20]]
    return "\n".join(out)


def _target(ref: dict[str, Any]) -> str:
    resolved = ref["resolved"]
    if resolved is None:
        return f"{ref['target']} (dangling)"
    where = resolved["path"]
    return (
        f"{ref['target']} [{where}]"
        if resolved["iri"] == ref["target"]
        else (f"{ref['target']} = {resolved['iri']} [{where}]")
    )


@ontology_app.command()
def failed(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Dead letters: files that did not parse or store, with line and reason."""
    store = _store(db)
    rows = q.failures(store.conn)
    store.close()
    text = (
        "\n".join(
            f"{r['path']}{':' + str(r['line']) if r['line'] else ''}  [{r['stage']}]"
            f" {r['error_type']}: {r['message']}  (commit {r['commit'][:12]})"
            for r in rows
        )
        or "no failures"
    )
    _emit(rows, as_json, text)


@ontology_app.command()
def dangling(
    db: DbOpt = None,
    limit: Annotated[int, typer.Option(help="rows to show")] = 100,
    as_json: JsonOpt = False,
) -> None:
    """References to terms that no synced file defines (kept, not fatal)."""
    if limit < 1:
        raise ConfigError("--limit must be at least 1")
    store = _store(db)
    rows = q.dangling(store.conn, limit)
    store.close()
    text = (
        "\n".join(
            f"{r['path']}{':' + str(r['line']) if r['line'] else ''}  {r['subject']}"
            f" {r['via']} → {r['target']}"
            for r in rows
        )
        or "no dangling references"
    )
    _emit(rows, as_json, text)


__all__ = ["ontology_app"]
