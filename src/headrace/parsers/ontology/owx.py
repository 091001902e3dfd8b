"""OWL/XML (``.owx``): each element becomes an OFN node, read by the OFN interpreter.

The XML is sanitised by ``xmlguard`` first and parsed by lxml with entity
resolution, DTD loading and network access all off.
"""

from __future__ import annotations

from urllib.parse import urljoin

from lxml import etree

from headrace.errors import ParseError
from headrace.parsers.ontology.model import OntologyDoc
from headrace.parsers.ontology.ofn import Atom, Interpreter, Node

_ENTITIES = frozenset(
    {"Class", "ObjectProperty", "DataProperty", "AnnotationProperty", "NamedIndividual", "Datatype"}
)
_SKIP = frozenset({"Annotation", "Prefix", "Import"})


def parse_owx(data: bytes, relpath: str) -> OntologyDoc:
    parser = etree.XMLParser(
        resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
    )
    try:
        root = etree.fromstring(data, parser)
    except etree.XMLSyntaxError as exc:
        raise ParseError(str(exc.msg), path=relpath, line=exc.lineno) from None
    doc = OntologyDoc(format="owx")
    base = root.get("{http://www.w3.org/XML/1998/namespace}base") or ""
    doc.iri = root.get("ontologyIRI")
    prefixes: dict[str, str] = {}
    nodes: list[Node | Atom] = []
    for child in root:
        if not isinstance(child.tag, str):
            continue  # comments, processing instructions
        name = etree.QName(child).localname
        if name == "Prefix":
            prefixes[child.get("name", "")] = child.get("IRI", "")
        elif name == "Import":
            doc.imports.append(urljoin(base, (child.text or "").strip()))
        elif name != "Annotation":
            nodes.append(_node(child, base, declaration=False))
    Interpreter(doc, prefixes).run(nodes)
    return doc


def _node(el: etree._Element, base: str, *, declaration: bool) -> Node | Atom:
    name = etree.QName(el).localname
    line = el.sourceline or 0
    if name in _ENTITIES and not declaration:
        return _iri_atom(el, base, line)
    if name in ("IRI", "AbbreviatedIRI"):
        text = (el.text or "").strip()
        return Atom(f"<{urljoin(base, text)}>" if name == "IRI" else text, line)
    if name == "Literal":
        value = (el.text or "").replace("\\", "\\\\").replace('"', '\\"')
        lang = el.get("{http://www.w3.org/XML/1998/namespace}lang")
        dt = el.get("datatypeIRI")
        return Atom(f'"{value}"', line, literal=True, lang=lang, datatype=dt and f"<{dt}>")
    if name == "AnonymousIndividual":
        return Atom(f"_:{el.get('nodeID', '')}", line)
    node = Node(name, line)
    if el.get("cardinality") is not None:
        node.args.append(Atom(el.get("cardinality", ""), line))
    for child in el:
        if isinstance(child.tag, str) and etree.QName(child).localname not in _SKIP:
            node.args.append(_node(child, base, declaration=name == "Declaration"))
    if name in _ENTITIES:
        node.args = [_iri_atom(el, base, line)]
    return node


def _iri_atom(el: etree._Element, base: str, line: int) -> Atom:
    if el.get("IRI") is not None:
        return Atom(f"<{urljoin(base, el.get('IRI', ''))}>", line)
    return Atom(el.get("abbreviatedIRI", ""), line)
