"""JSON-LD ontology blocks in Markdown pages (the knowledgeGraph format) and ``.jsonld``.

The blocks name remote ``@context`` documents (``https://narrativegoldmine.com/…``).
Those are never fetched — a parser must not touch the network, and a context
server that changes or vanishes would change what a file means. Instead the keys
these corpora use are read with a built-in mapping (``label`` → ``rdfs:label``,
``definition`` → ``skos:definition``, ``subClassOf``, ``relations``, ``sameAs``);
any other scalar key is kept as an annotation under its own name. A block whose
``@type`` is ``Class`` defines a class; a ``Page`` block names the ontology.
A page with no ``Class`` block is an ordinary document.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from headrace.errors import ParseError
from headrace.parsers.ontology.model import OWL, RDFS, SKOS, Axiom, OntologyDoc, Relationship

_FENCE_OPEN = re.compile(r"^\s*```\s*(json-?ld)\s*$", re.IGNORECASE)
_CLASS_TYPES = frozenset({"Class", "owl:Class", OWL + "Class", "rdfs:Class", RDFS + "Class"})
_SKIP_KEYS = frozenset(
    {"@context", "@id", "@type", "label", "definition", "subClassOf", "relations", "sameAs"}
)


def json_blocks(text: str, relpath: str) -> Iterator[tuple[int, Any]]:
    """``(line, value)`` of every fenced ``json-ld`` block; a syntax error names its line."""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if _FENCE_OPEN.match(lines[i]):
            close = next((j for j in range(i + 1, len(lines)) if lines[j].strip() == "```"), None)
            if close is None:
                raise ParseError("json-ld block is never closed", path=relpath, line=i + 1)
            yield i + 1, _load("\n".join(lines[i + 1 : close]), relpath, i + 1)
            i = close
        i += 1


def _load(body: str, relpath: str, fence_line: int) -> Any:
    try:
        return json.loads(body)
    except json.JSONDecodeError as exc:
        raise ParseError(
            f"invalid JSON-LD: {exc.msg} (column {exc.colno})",
            path=relpath,
            line=fence_line + exc.lineno,
        ) from None


def parse_jsonld_markdown(text: str, relpath: str) -> OntologyDoc | None:
    """The page's classes, or ``None`` when no block defines a class."""
    if "json" not in text:
        return None
    return interpret(json_blocks(text, relpath))


def parse_jsonld_file(text: str, relpath: str) -> OntologyDoc | None:
    """A whole ``.jsonld`` file: one object, a list, or an object with ``@graph``."""
    value = _load(text, relpath, 0)
    return interpret(iter([(1, value)]))


def interpret(blocks: Iterator[tuple[int, Any]]) -> OntologyDoc | None:
    doc = OntologyDoc(format="jsonld")
    found = False
    for line, value in blocks:
        for node in _nodes(value):
            types = node.get("@type")
            types = types if isinstance(types, list) else [types]
            if any(t in _CLASS_TYPES for t in types) and isinstance(node.get("@id"), str):
                _class(doc, node, line)
                found = True
            elif "Page" in types:
                _page(doc, node)
    return doc if found else None


def _nodes(value: Any) -> Iterator[dict[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _nodes(item)
    elif isinstance(value, dict):
        yield value
        if isinstance(value.get("@graph"), list):
            yield from _nodes(value["@graph"])


def _page(doc: OntologyDoc, node: dict[str, Any]) -> None:
    if isinstance(node.get("@id"), str) and doc.iri is None:
        doc.iri = node["@id"]
    for key in ("title", "vc:slug"):
        if isinstance(node.get(key), str):
            doc.names.append(node[key])


def _class(doc: OntologyDoc, node: dict[str, Any], line: int) -> None:
    iri: str = node["@id"]
    doc.term(iri, "class", line)
    doc.primary = doc.primary or iri
    for key, prop in (("label", RDFS + "label"), ("definition", SKOS + "definition")):
        for text in _strings(node.get(key)):
            doc.annotate(iri, prop, text, line=line)
            if key == "label":
                doc.names.append(text)
    for target in _ids(node.get("subClassOf")):
        doc.axioms.append(
            Axiom(iri, "subclass_of", f"SubClassOf(<{iri}> <{target}>)", target, None, line)
        )
    relations = node.get("relations")
    if isinstance(relations, dict):
        for predicate, targets in relations.items():
            for target in _ids(targets):
                doc.relationships.append(Relationship(iri, predicate, target, "iri", line))
    for target in _ids(node.get("sameAs")):
        doc.relationships.append(Relationship(iri, OWL + "sameAs", target, "iri", line))
    for key, value in node.items():
        if key not in _SKIP_KEYS:
            _scalars(doc, iri, key, value, line)


def _scalars(doc: OntologyDoc, iri: str, key: str, value: Any, line: int) -> None:
    if isinstance(value, dict):
        if "@value" in value:
            doc.annotate(iri, key, str(value["@value"]), line=line)
        else:
            for sub, inner in value.items():
                _scalars(doc, iri, f"{key}.{sub}", inner, line)
    elif isinstance(value, list):
        for inner in value:
            _scalars(doc, iri, key, inner, line)
    elif value is not None:
        doc.annotate(iri, key, value if isinstance(value, str) else json.dumps(value), line=line)


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and isinstance(value.get("@value"), str):
        yield value["@value"]
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _ids(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict) and isinstance(value.get("@id"), str):
        yield value["@id"]
    elif isinstance(value, list):
        for item in value:
            yield from _ids(item)
