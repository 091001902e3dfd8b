"""Questions answered from the relational ontology model, without SQL.

A term is found by IRI, by CURIE (expanded with the well-known prefixes), by label
or page name (case-insensitive), in that order. References resolve across files:
an IRI to the term of that IRI in any file, a page name to the term whose page or
label has that name; what resolves nowhere is *dangling*, kept and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import apsw

from headrace.ledger.migrations import scalar
from headrace.parsers.ontology.model import expand, name_key


@dataclass(frozen=True, slots=True)
class TermRef:
    """A term as stored: which file defines it, at which commit."""

    ontology_id: int
    iri: str
    kind: str
    path: str
    commit_sha: str
    source: str


_TERM_SQL = (
    "SELECT t.ontology_id, t.iri, t.kind, o.path, o.commit_sha, o.source"
    " FROM terms t JOIN ontologies o ON o.id = t.ontology_id"
)
_KIND_ORDER = " ORDER BY CASE t.kind WHEN 'class' THEN 0 WHEN 'resource' THEN 2 ELSE 1 END, o.path"


def find_terms(conn: apsw.Connection, query: str) -> list[TermRef]:
    """Terms named ``query``: by IRI or CURIE first, else by label or page name."""
    for iri in dict.fromkeys((query, expand(query, {}), query.strip("<>"))):
        rows: list[Any] = conn.execute(
            f"{_TERM_SQL} WHERE t.iri = ?{_KIND_ORDER}", (iri,)
        ).fetchall()
        if rows:
            return [TermRef(*r) for r in rows]
    named: list[Any] = conn.execute(
        f"{_TERM_SQL} JOIN names n ON n.ontology_id = t.ontology_id AND n.iri = t.iri"
        f" WHERE n.name_key = ?{_KIND_ORDER}",
        (name_key(query),),
    ).fetchall()
    return [TermRef(*r) for r in dict.fromkeys(named)]


def resolve(conn: apsw.Connection, target: str, target_kind: str) -> TermRef | None:
    """The term a reference points at, in any file, or ``None`` (dangling)."""
    row: Any = conn.execute(
        f"{_TERM_SQL} WHERE t.iri = ?{_KIND_ORDER} LIMIT 1", (target,)
    ).fetchone()
    if row is None and target_kind == "name":
        row = conn.execute(
            f"{_TERM_SQL} JOIN names n ON n.ontology_id = t.ontology_id AND n.iri = t.iri"
            f" WHERE n.name_key = ?{_KIND_ORDER} LIMIT 1",
            (name_key(target),),
        ).fetchone()
    return TermRef(*row) if row else None


def describe(conn: apsw.Connection, term: TermRef) -> dict[str, Any]:
    """Everything the model knows about ``term``: labels, axioms, relations, where from."""
    key = (term.ontology_id, term.iri)
    annotations: list[Any] = conn.execute(
        "SELECT property, role, value, lang FROM annotations"
        " WHERE ontology_id = ? AND subject_iri = ? ORDER BY id",
        key,
    ).fetchall()
    axioms: list[Any] = conn.execute(
        "SELECT kind, property_iri, target_iri, expression, line FROM axioms"
        " WHERE ontology_id = ? AND subject_iri = ? ORDER BY id",
        key,
    ).fetchall()
    relations: list[Any] = conn.execute(
        "SELECT predicate, target, target_kind, line FROM relationships"
        " WHERE ontology_id = ? AND subject_iri = ? ORDER BY id",
        key,
    ).fetchall()
    by_role = {
        role: [v for _, r, v, _ in annotations if r == role]
        for role in ("label", "definition", "term_id", "comment")
    }
    return {
        "iri": term.iri,
        "kind": term.kind,
        "source": term.source,
        "path": term.path,
        "commit": term.commit_sha,
        "labels": by_role["label"],
        "definitions": by_role["definition"],
        "term_ids": by_role["term_id"],
        "comments": by_role["comment"],
        "annotations": [
            {"property": p, "value": v, "lang": lang} for p, r, v, lang in annotations if r is None
        ],
        "superclasses": [
            _ref(conn, t, "iri") | {"line": ln}
            for k, _, t, _, ln in axioms
            if k == "subclass_of" and t
        ],
        "restrictions": [
            {"property": p, "filler": t, "expression": e, "line": ln}
            for k, p, t, e, ln in axioms
            if k == "restriction"
        ],
        "axioms": [
            {"kind": k, "expression": e, "line": ln}
            for k, _, _, e, ln in axioms
            if k not in ("subclass_of", "restriction")
        ],
        "relations": [
            {"predicate": p} | _ref(conn, t, tk) | {"line": ln} for p, t, tk, ln in relations
        ],
        "subclasses": [
            row[0]
            for row in conn.execute(
                "SELECT DISTINCT subject_iri FROM axioms WHERE kind = 'subclass_of'"
                " AND target_iri = ? ORDER BY 1 LIMIT 200",
                (term.iri,),
            )
        ],
    }


def _ref(conn: apsw.Connection, target: str, target_kind: str) -> dict[str, Any]:
    found = resolve(conn, target, target_kind)
    if found is None:
        return {"target": target, "resolved": None}
    return {"target": target, "resolved": {"iri": found.iri, "path": found.path}}


def status(conn: apsw.Connection) -> dict[str, Any]:
    """Per source: cursor and counts; totals of terms, axioms, dangling, failures."""
    sources = [
        {"source": s, "location": loc, "ref": ref, "commit": c, "synced_at": at, "files": n}
        for s, loc, ref, c, at, n in conn.execute(
            "SELECT s.source, s.location, s.ref, s.commit_sha, s.synced_at,"
            " (SELECT count(*) FROM ontologies o WHERE o.source = s.source)"
            " FROM sync_state s ORDER BY s.source"
        )
    ]
    counts = {
        table: int(scalar(conn, f"SELECT count(*) FROM {table}"))
        for table in (
            "ontologies",
            "classes",
            "properties",
            "individuals",
            "axioms",
            "annotations",
            "relationships",
            "dead_letters",
        )
    }
    counts["dangling_references"] = int(scalar(conn, "SELECT count(*) FROM dangling_references"))
    return {"sources": sources, "counts": counts}


def dangling(conn: apsw.Connection, limit: int = 100) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT o.path, d.subject_iri, d.via, d.target, d.line FROM dangling_references d"
        " JOIN ontologies o ON o.id = d.ontology_id ORDER BY o.path, d.line LIMIT ?",
        (limit,),
    )
    return [{"path": p, "subject": s, "via": v, "target": t, "line": ln} for p, s, v, t, ln in rows]


def failures(conn: apsw.Connection) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT source, path, line, stage, error_type, message, commit_sha, attempts"
        " FROM dead_letters ORDER BY source, path"
    )
    keys = ("source", "path", "line", "stage", "error_type", "message", "commit", "attempts")
    return [dict(zip(keys, row, strict=True)) for row in rows]
