"""Ontology terms into the search index: one rendered Markdown page per ontology file.

Each stored ontology is rendered to ``<mirror>/<source digest>/terms/<path>.md`` — one
heading per term with its labels, definition, super-classes, restrictions and
relations as text — and the mirror folder is ingested by the ordinary pipeline
(``Index.ingest``): chunking, embedding cache, crash safety and incremental sync
come from there, so a re-render of an unchanged page embeds nothing.

``ontologies.rendered`` is set only after the page is on disk (temp → fsync →
rename), so a crash between the ontology commit and the render is repaired by
the next refresh; pages of ontologies that no longer exist are deleted.
"""

from __future__ import annotations

import hashlib
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import apsw

from headrace.ontology.words import readable, restriction, words
from headrace.sinks.ontology_sqlite import OntologyStore


def mirror_path(mirror: Path, source: str, path: str) -> Path:
    return source_dir(mirror, source) / "terms" / f"{path}.md"


def source_dir(mirror: Path, source: str) -> Path:
    """The mirror folder of one repository: ``terms/`` (rendered) and ``docs/`` (copied)."""
    return mirror / hashlib.blake2b(source.encode(), digest_size=6).hexdigest()


def render_pending(store: OntologyStore, mirror: Path) -> int:
    """Render every ontology not rendered yet and delete orphan pages; returns pages written."""
    conn = store.conn
    pending: list[Any] = conn.execute(
        "SELECT id, source, path, commit_sha FROM ontologies WHERE rendered = 0"
    ).fetchall()
    for oid, source, path, commit in pending:
        target = mirror_path(mirror, source, path)
        _write_atomic(target, render(conn, oid, path, commit))
        with store.transaction() as c:
            c.execute(
                "UPDATE ontologies SET rendered = 1 WHERE id = ? AND commit_sha = ?", (oid, commit)
            )
    _delete_orphans(store, mirror)
    return len(pending)


def render(conn: apsw.Connection, oid: int, path: str, commit: str) -> str:
    """The Markdown page of one ontology: a section per term worth finding.

    Classes and properties always get a section; other subjects (individuals,
    plain RDF resources) only when they carry text (label, definition, comment):
    a test manifest's hundred untitled entries would otherwise bury the classes.
    """
    notes: dict[str, list[tuple[str | None, str, str]]] = defaultdict(list)
    for subject, role, prop, value in conn.execute(
        "SELECT subject_iri, role, property, value FROM annotations WHERE ontology_id = ?"
        " ORDER BY id",
        (oid,),
    ):
        notes[subject].append((role, prop, value))
    facts: dict[str, list[str]] = defaultdict(list)
    for subject, kind, prop, target, expression in conn.execute(
        "SELECT subject_iri, kind, property_iri, target_iri, expression FROM axioms"
        " WHERE ontology_id = ? ORDER BY id",
        (oid,),
    ):
        facts[subject].append(_fact(kind, prop, target, expression))
    links: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for subject, predicate, target in conn.execute(
        "SELECT subject_iri, predicate, target FROM relationships WHERE ontology_id = ?"
        " ORDER BY id",
        (oid,),
    ):
        links[subject][words(predicate)].append(words(target))
    out = [f"<!-- ontology {path} @ {commit} -->"]
    for iri, kind in conn.execute(
        "SELECT iri, kind FROM terms WHERE ontology_id = ? AND kind != 'ontology' ORDER BY line",
        (oid,),
    ):
        texts = [n for n in notes.get(iri, ()) if n[0] is not None]
        if kind not in _SCHEMA_KINDS and not texts:
            continue
        relations = [f"{p}: {', '.join(ts[:12])}" for p, ts in links.get(iri, {}).items()]
        out.append(_section(iri, kind, path, notes.get(iri, []), facts.get(iri, []) + relations))
    return "\n\n".join(out) + "\n"


_SCHEMA_KINDS = frozenset(
    {"class", "object_property", "data_property", "annotation_property", "property", "datatype"}
)


def _section(
    iri: str, kind: str, path: str, notes: list[tuple[str | None, str, str]], facts: list[str]
) -> str:
    labels = [v for r, _, v in notes if r == "label"]
    lines = [f"# {labels[0] if labels else words(iri)}", ""]
    lines += [v for r, _, v in notes if r in ("definition", "comment")]
    lines.append(f"\n{kind.replace('_', ' ')} {iri} in {path}")
    others = [(r, p, v) for r, p, v in notes if r not in ("label", "definition", "comment")]
    lines += [f"- {(r or words(p)).replace('_', ' ')}: {v[:300]}" for r, p, v in others[:12]]
    lines += [f"- {f[:300]}" for f in facts[:24]]
    return "\n".join(lines)


def _fact(kind: str, prop: str | None, target: str | None, expression: str) -> str:
    if kind == "subclass_of" and target is not None:
        return f"sub-class of {words(target)}"
    if kind == "restriction":
        return restriction(expression, prop, target)
    return f"{kind.replace('_', ' ')}: {readable(expression)}"


def _write_atomic(target: Path, text: str) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, target)


def _delete_orphans(store: OntologyStore, mirror: Path) -> None:
    if not mirror.exists():
        return
    wanted = {
        mirror_path(mirror, s, p)
        for s, p in store.conn.execute("SELECT source, path FROM ontologies")
    }
    for terms in mirror.glob("*/terms"):
        for dirpath, _, filenames in os.walk(terms):
            for name in filenames:
                page = Path(dirpath) / name
                if page not in wanted:
                    page.unlink()
