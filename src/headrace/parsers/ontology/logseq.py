"""Logseq pages with an ``OntologyBlock`` (the VisionFlow / Metaverse-Ontology format).

::

    - ### OntologyBlock
      id:: api-standard-ontology
        - term-id:: 20100
        - preferred-term:: API Standard
        - owl:class:: mv:APIStandard
        - #### Relationships
                - has-part:: [[Communication Protocol]], [[Data Format Specification]]
        - #### OWL Axioms
                - ```clojure
                      Declaration(Class(mv:APIStandard))
                      SubClassOf(mv:APIStandard ObjectSomeValuesFrom(mv:defines mv:Protocol))
                      ```

The block ends at the next outline item at its own indentation or less. Properties
become annotations of the page's class (``owl:class::``); values with
``[[wikilinks]]`` become relationships to page names; fenced blocks holding OWL
Functional Syntax are read by ``ofn``. A page without the block is not an ontology.
"""

from __future__ import annotations

import re

from headrace.errors import ParseError
from headrace.parsers.ontology.model import RDFS, SKOS, Annotation, OntologyDoc, Relationship
from headrace.parsers.ontology.ofn import Interpreter, read

_BLOCK = re.compile(r"^(\s*)-\s+#{1,6}\s*OntologyBlock\b")
_ITEM = re.compile(r"^(\s*)-(\s|$)")
_PROPERTY = re.compile(r"^\s*(?:-\s+)?([A-Za-z][\w.:\-]*)::(?:\s(.*))?$")
_FENCE = re.compile(r"^\s*(?:-\s+)?```\s*([\w+-]*)")
_WIKILINK = re.compile(r"\[\[([^\[\]]+)\]\]")
_OFN_HINT = re.compile(r"\b(?:Declaration|SubClassOf|EquivalentClasses|Ontology|Prefix)\(")
_INTERNAL = frozenset({"id", "collapsed", "owl:class"})
_ROLE_KEYS = {"preferred-term": RDFS + "label", "definition": SKOS + "definition"}


def page_name(relpath: str) -> str:
    """Logseq's page name for a file: the stem, with ``___`` standing for ``/``."""
    stem = relpath.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    return stem.replace("___", "/")


def parse_logseq(text: str, relpath: str) -> OntologyDoc | None:
    """The page's ontology, or ``None`` when it has no ``OntologyBlock``."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _BLOCK.match(line)), None)
    if start is None:
        return None
    indent = len(_BLOCK.match(lines[start]).group(1))  # type: ignore[union-attr]
    end = _block_end(lines, start, indent)
    doc = OntologyDoc(format="logseq")
    name = page_name(relpath)
    doc.names.append(name)
    props, fences = _scan(lines, start + 1, end, relpath)
    subject = next((v.strip() for k, v, _ in props if k == "owl:class" and v.strip()), None)
    interp = Interpreter(doc)
    for lang, first_line, body in fences:
        if lang in ("clojure", "owl", "ofn", "owl-functional") or _OFN_HINT.search(body):
            interp.run(read(body, path=relpath, first_line=first_line))
    if subject is None:
        declared = [t.iri for t in doc.terms.values() if t.kind == "class"]
        subject = declared[0] if declared else f"page:{name}"
    subject = interp.iri_of(subject)
    doc.term(subject, "class", start + 1)
    doc.primary = subject
    _properties(doc, subject, props)
    return doc


def _block_end(lines: list[str], start: int, indent: int) -> int:
    in_fence = False
    for i in range(start + 1, len(lines)):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        m = _ITEM.match(line)
        if not in_fence and ((m and len(m.group(1)) <= indent) or line.startswith("#")):
            return i
    return len(lines)


def _scan(
    lines: list[str], first: int, end: int, relpath: str
) -> tuple[list[tuple[str, str, int]], list[tuple[str, int, str]]]:
    props: list[tuple[str, str, int]] = []
    fences: list[tuple[str, int, str]] = []
    i = first
    while i < end:
        fence = _FENCE.match(lines[i])
        if fence:
            close = next((j for j in range(i + 1, end) if lines[j].strip() == "```"), None)
            if close is None:
                raise ParseError("fenced block is never closed", path=relpath, line=i + 1)
            fences.append((fence.group(1).lower(), i + 2, "\n".join(lines[i + 1 : close])))
            i = close + 1
            continue
        prop = _PROPERTY.match(lines[i])
        if prop:
            props.append((prop.group(1), (prop.group(2) or "").strip(), i + 1))
        i += 1
    return props, fences


def _properties(doc: OntologyDoc, subject: str, props: list[tuple[str, str, int]]) -> None:
    for key, value, line in props:
        if key in _INTERNAL or not value:
            continue
        if key == "term-id":
            doc.annotations.append(_term_id(subject, value, line))
            continue
        if key == "preferred-term":
            doc.names.append(value)
        links = _WIKILINK.findall(value)
        if links and key not in _ROLE_KEYS:
            for target in links:
                doc.relationships.append(_link(subject, key, target.strip(), line))
        else:
            doc.annotate(subject, _ROLE_KEYS.get(key, key), value, line=line)


def _term_id(subject: str, value: str, line: int) -> Annotation:
    return Annotation(subject, "term-id", value, None, None, "term_id", line)


def _link(subject: str, key: str, target: str, line: int) -> Relationship:
    return Relationship(subject, key, target, "name", line)
