"""RDF/XML, Turtle and N-Triples through pyoxigraph, mapped onto the ontology model.

pyoxigraph was measured against rdflib and py-horned-owl on the shared samples
(``bench/ontology_parsers.py``): 48 MB/s vs 2.1 MB/s for rdflib, and it rejects
the W3C negative syntax tests that rdflib accepts. It never dereferences
``owl:imports`` (they are recorded, not followed). RDF/XML goes through
``xmlguard`` first.

Mapping: ``rdf:type`` with an OWL/RDFS meta-class gives the term's kind, any
other type a class assertion; ``rdfs:subClassOf`` to a named class is a
sub-class axiom, to a blank-node restriction a ``restriction`` axiom (property and
filler extracted); equivalence, disjointness, domain, range, sub-property and
inverse are axioms; literals are annotations; other IRI objects are relationships.
Blank-node class expressions are rendered in OWL Functional Syntax.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

import pyoxigraph as ox

from headrace.errors import ParseError
from headrace.parsers.ontology.model import (
    OWL,
    RDF,
    RDFS,
    WELL_KNOWN_PREFIXES,
    XSD,
    Axiom,
    OntologyDoc,
    Relationship,
    TermKind,
    base_iri,
)

FORMATS = {
    "rdfxml": ox.RdfFormat.RDF_XML,
    "turtle": ox.RdfFormat.TURTLE,
    "ntriples": ox.RdfFormat.N_TRIPLES,
}
_TYPE = RDF + "type"
_KINDS: dict[str, TermKind] = {
    OWL + "Class": "class",
    RDFS + "Class": "class",
    OWL + "Restriction": "class",
    OWL + "ObjectProperty": "object_property",
    OWL + "DatatypeProperty": "data_property",
    OWL + "AnnotationProperty": "annotation_property",
    RDF + "Property": "property",
    OWL + "NamedIndividual": "individual",
    OWL + "Ontology": "ontology",
    RDFS + "Datatype": "datatype",
}
_CHARACTERISTICS = frozenset(
    OWL + c
    for c in (
        "FunctionalProperty",
        "InverseFunctionalProperty",
        "TransitiveProperty",
        "SymmetricProperty",
        "AsymmetricProperty",
        "ReflexiveProperty",
        "IrreflexiveProperty",
    )
)
_AXIOMS: dict[str, tuple[str, str, TermKind]] = {
    RDFS + "subClassOf": ("subclass_of", "SubClassOf", "class"),
    OWL + "equivalentClass": ("equivalent_class", "EquivalentClasses", "class"),
    OWL + "disjointWith": ("disjoint_with", "DisjointClasses", "class"),
    RDFS + "domain": ("domain", "PropertyDomain", "property"),
    RDFS + "range": ("range", "PropertyRange", "property"),
    RDFS + "subPropertyOf": ("subproperty_of", "SubPropertyOf", "property"),
    OWL + "inverseOf": ("inverse_of", "InverseObjectProperties", "object_property"),
}
_RESTRICTION_FILLERS = {
    "someValuesFrom": "SomeValuesFrom",
    "allValuesFrom": "AllValuesFrom",
    "hasValue": "HasValue",
    "minCardinality": "MinCardinality",
    "maxCardinality": "MaxCardinality",
    "cardinality": "ExactCardinality",
    "minQualifiedCardinality": "MinCardinality",
    "maxQualifiedCardinality": "MaxCardinality",
    "qualifiedCardinality": "ExactCardinality",
    "hasSelf": "HasSelf",
}
_SHORT = sorted(((v, k) for k, v in WELL_KNOWN_PREFIXES.items()), key=lambda kv: -len(kv[0]))
Term = Any  # a pyoxigraph NamedNode, BlankNode, Literal or Triple


def parse_rdf(data: bytes, fmt: str, relpath: str) -> OntologyDoc:
    """Parse ``data`` (already XML-sanitised for RDF/XML) into an ``OntologyDoc``."""
    try:
        quads = list(
            ox.parse(
                data, format=FORMATS[fmt], base_iri=base_iri(relpath), without_named_graphs=True
            )
        )
    except SyntaxError as exc:
        message = str(exc.msg or exc)
        line = exc.lineno if exc.lineno is not None else _locate(data, message, fmt)
        raise ParseError(message, path=relpath, line=line) from None
    except ValueError as exc:
        raise ParseError(str(exc), path=relpath, line=_locate(data, str(exc), fmt)) from None
    return _Mapper(fmt).run(quads)


_QUOTED = re.compile(r"'([^']{2,200})'|\"([^\"]{2,200})\"")


def _locate(data: bytes, message: str, fmt: str) -> int | None:
    """A line for an error pyoxigraph reports without one (its RDF/XML parser).

    A well-formedness error is located by lxml (entities and network off; the data
    is already sanitised); otherwise the first line holding the value the message
    quotes (``'a b'``) or starts with (``333-555-666 is not a valid rdf:nodeID``).
    """
    if fmt == "rdfxml":
        from lxml import etree

        parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
        try:
            etree.fromstring(data, parser)
        except etree.XMLSyntaxError as exc:
            return int(exc.lineno) if exc.lineno else None
    quoted = _QUOTED.search(message)
    token = (quoted.group(1) or quoted.group(2)) if quoted else message.split(" ", 1)[0]
    at = data.find(token.encode()) if len(token) > 1 else -1
    return data.count(b"\n", 0, at) + 1 if at >= 0 else None


def short(iri: str) -> str:
    for base, prefix in _SHORT:
        if iri.startswith(base) and iri != base:
            return f"{prefix}:{iri[len(base) :]}"
    return f"<{iri}>"


class _Mapper:
    def __init__(self, fmt: str) -> None:
        self.doc = OntologyDoc(format=fmt)
        self.bnodes: dict[str, list[tuple[str, Term]]] = defaultdict(list)

    def run(self, quads: list[Any]) -> OntologyDoc:
        named = []
        for q in quads:
            s = q.subject
            if isinstance(s, ox.BlankNode):
                self.bnodes[s.value].append((q.predicate.value, q.object))
            elif isinstance(s, ox.NamedNode):
                named.append((s.value, q.predicate.value, q.object))
        for s, p, o in named:
            if p == _TYPE and isinstance(o, ox.NamedNode):
                self._type(s, o.value)
        for s, p, o in named:
            if p != _TYPE:
                self._statement(s, p, o)
        return self.doc

    def _type(self, s: str, t: str) -> None:
        if t in _KINDS:
            self.doc.term(s, _KINDS[t])
            if t == OWL + "Ontology" and self.doc.iri is None:
                self.doc.iri = s
        elif t in _CHARACTERISTICS:
            # Functional applies to data properties too; the others only to object ones.
            self.doc.term(s, "property" if t == OWL + "FunctionalProperty" else "object_property")
            self.doc.axioms.append(
                Axiom(s, "characteristic", f"{t[len(OWL) :]}({short(s)})", None, None, None)
            )
        elif not t.startswith((OWL, RDF, RDFS)):
            self.doc.term(s, "individual")
            self.doc.axioms.append(
                Axiom(s, "class_assertion", f"ClassAssertion({short(t)} {short(s)})", t)
            )

    def _statement(self, s: str, p: str, o: Term) -> None:
        doc = self.doc
        if p == OWL + "imports" and isinstance(o, ox.NamedNode):
            doc.imports.append(o.value)
        elif p in _AXIOMS:
            self._axiom(s, p, o)
        elif isinstance(o, ox.Literal):
            doc.term(s, "resource")
            dt: str | None = o.datatype.value if o.datatype is not None else None
            if dt in (XSD + "string", RDF + "langString"):
                dt = None
            doc.annotate(s, p, o.value, lang=o.language, datatype=dt)
        elif isinstance(o, ox.NamedNode):
            doc.term(s, "resource")
            doc.relationships.append(Relationship(s, p, o.value, "iri"))
        elif isinstance(o, ox.BlankNode):
            doc.term(s, "resource")
            doc.axioms.append(
                Axiom(s, "statement", f"{short(p)}({short(s)} {self.render(o)})", None, p)
            )

    def _axiom(self, s: str, p: str, o: Term) -> None:
        kind, ofn, term_kind = _AXIOMS[p]
        self.doc.term(s, term_kind)
        expr = f"{ofn}({short(s)} {self.render(o)})"
        if isinstance(o, ox.NamedNode):
            self.doc.axioms.append(Axiom(s, kind, expr, o.value))
            return
        restriction = self._restriction(o) if kind == "subclass_of" else None
        if restriction is not None:
            prop, filler = restriction
            self.doc.axioms.append(Axiom(s, "restriction", expr, filler, prop))
        else:
            self.doc.axioms.append(Axiom(s, kind, expr))

    def _restriction(self, node: Term) -> tuple[str | None, str | None] | None:
        if not isinstance(node, ox.BlankNode):
            return None
        props = dict(self.bnodes.get(node.value, []))
        on = props.get(OWL + "onProperty")
        if on is None:
            return None
        filler = next((props[OWL + k] for k in _RESTRICTION_FILLERS if OWL + k in props), None)
        qualified = props.get(OWL + "onClass") or props.get(OWL + "onDataRange")
        filler = qualified if qualified is not None else filler
        prop = on.value if isinstance(on, ox.NamedNode) else None
        target = filler.value if isinstance(filler, ox.NamedNode) else None
        return prop, target

    def render(self, node: Term, depth: int = 0) -> str:  # noqa: PLR0911 - one case per node type
        """OWL Functional Syntax for a term; blank nodes as class expressions."""
        if isinstance(node, ox.NamedNode):
            return short(node.value)
        if isinstance(node, ox.Literal):
            return _literal(node)
        if not isinstance(node, ox.BlankNode) or depth > 20:
            return "_:b"
        props = dict(self.bnodes.get(node.value, []))
        if OWL + "onProperty" in props:
            return self._render_restriction(props, depth)
        for key, name in (
            ("unionOf", "ObjectUnionOf"),
            ("intersectionOf", "ObjectIntersectionOf"),
            ("oneOf", "ObjectOneOf"),
        ):
            if OWL + key in props:
                items = self._list(props[OWL + key])
                return f"{name}({' '.join(self.render(i, depth + 1) for i in items)})"
        if OWL + "complementOf" in props:
            return f"ObjectComplementOf({self.render(props[OWL + 'complementOf'], depth + 1)})"
        return f"_:{node.value}"

    def _render_restriction(self, props: dict[str, Term], depth: int) -> str:
        prop = self.render(props[OWL + "onProperty"], depth + 1)
        for key, name in _RESTRICTION_FILLERS.items():
            if OWL + key in props:
                value = props[OWL + key]
                qualified = props.get(OWL + "onClass") or props.get(OWL + "onDataRange")
                if "Cardinality" in name:
                    n = value.value if isinstance(value, ox.Literal) else self.render(value)
                    tail = f" {self.render(qualified, depth + 1)}" if qualified is not None else ""
                    return f"Object{name}({n} {prop}{tail})"
                return f"Object{name}({prop} {self.render(value, depth + 1)})"
        return f"ObjectRestriction({prop})"

    def _list(self, node: Term) -> list[Term]:
        items: list[Term] = []
        seen: set[str] = set()
        while isinstance(node, ox.BlankNode) and node.value not in seen and len(items) < 10_000:
            seen.add(node.value)
            props = dict(self.bnodes.get(node.value, []))
            if RDF + "first" in props:
                items.append(props[RDF + "first"])
            node = props.get(RDF + "rest")
        return items


def _literal(lit: Any) -> str:
    text = '"' + str(lit.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if lit.language:
        return f"{text}@{lit.language}"
    if lit.datatype is not None and lit.datatype.value != XSD + "string":
        return f"{text}^^{short(lit.datatype.value)}"
    return text
