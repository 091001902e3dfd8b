"""The ontology model every ontology parser produces, whatever the syntax.

One ``OntologyDoc`` per source file. IRIs are kept as the file wrote them after
prefix expansion: a full IRI when the prefix is declared in the file or is a
well-known vocabulary (owl, rdf, rdfs, xsd, skos, dc, dcterms), else the CURIE
as written (``mv:APIStandard``), because the Logseq corpora never declare their
prefixes and inventing a namespace would make lookups by the written name fail.

Only *subjects* become terms (a term row means "this file says something about
it"); objects of axioms and relationships are references, resolved across files
at query time, so a reference to a term defined in another file needs no order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import quote

TermKind = Literal[
    "ontology",
    "class",
    "object_property",
    "data_property",
    "annotation_property",
    "property",
    "datatype",
    "individual",
    "resource",
]
PROPERTY_KINDS = frozenset({"object_property", "data_property", "annotation_property", "property"})
AnnotationRole = Literal["label", "definition", "term_id", "comment"]
TargetKind = Literal["iri", "name"]

OWL = "http://www.w3.org/2002/07/owl#"
RDF = "http://www.w3.org/1999/02/22-rdf-syntax-ns#"
RDFS = "http://www.w3.org/2000/01/rdf-schema#"
XSD = "http://www.w3.org/2001/XMLSchema#"
SKOS = "http://www.w3.org/2004/02/skos/core#"
WELL_KNOWN_PREFIXES = {
    "owl": OWL,
    "rdf": RDF,
    "rdfs": RDFS,
    "xsd": XSD,
    "skos": SKOS,
    "dc": "http://purl.org/dc/elements/1.1/",
    "dcterms": "http://purl.org/dc/terms/",
    "obo": "http://purl.obolibrary.org/obo/",
    "prov": "http://www.w3.org/ns/prov#",
}
# Vocabularies whose terms are never reported as dangling references.
BUILTIN_NAMESPACES = (OWL, RDF, RDFS, XSD, SKOS, "http://www.w3.org/XML/1998/namespace")

ROLE_BY_PROPERTY: dict[str, AnnotationRole] = {
    RDFS + "label": "label",
    SKOS + "prefLabel": "label",
    SKOS + "definition": "definition",
    "http://purl.obolibrary.org/obo/IAO_0000115": "definition",
    RDFS + "comment": "comment",
    "http://www.geneontology.org/formats/oboInOwl#id": "term_id",
    "http://purl.org/dc/elements/1.1/identifier": "term_id",
}


@dataclass(frozen=True, slots=True)
class Term:
    """A subject the file says something about; ``line`` is where it first appears."""

    iri: str
    kind: TermKind
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Axiom:
    """A logical statement about ``subject``.

    ``kind``: ``subclass_of``, ``equivalent_class``, ``disjoint_with``, ``domain``,
    ``range``, ``subproperty_of``, ``inverse_of``, ``class_assertion``,
    ``restriction`` (a sub-class axiom whose super-class is a property restriction),
    ``characteristic`` (functional, transitive ...) or the lower-cased name of any
    other OWL axiom. ``target`` is the named object when there is one; ``property``
    and ``target`` of a restriction are its property and filler. ``expression`` is
    the whole axiom rendered in OWL Functional Syntax.
    """

    subject: str
    kind: str
    expression: str
    target: str | None = None
    property: str | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Annotation:
    """A literal about ``subject`` (a label, a definition, a term id, any property)."""

    subject: str
    property: str
    value: str
    lang: str | None = None
    datatype: str | None = None
    role: AnnotationRole | None = None
    line: int | None = None


@dataclass(frozen=True, slots=True)
class Relationship:
    """A named link from ``subject`` to another term.

    ``target_kind`` is ``iri`` for an IRI and ``name`` for a page name (a Logseq
    ``[[wikilink]]``), which resolves to the term defined by the page of that name or
    with that label, in any file.
    """

    subject: str
    predicate: str
    target: str
    target_kind: TargetKind = "iri"
    line: int | None = None


@dataclass(slots=True)
class OntologyDoc:
    """Everything one file contributes; built by a parser, stored in one transaction.

    ``primary`` is the term the file is about (a Logseq page's class); ``names``
    (page name, title) resolve ``[[wikilinks]]`` to it from any file.
    """

    format: str
    iri: str | None = None
    primary: str | None = None
    names: list[str] = field(default_factory=list)
    terms: dict[str, Term] = field(default_factory=dict)
    axioms: list[Axiom] = field(default_factory=list)
    annotations: list[Annotation] = field(default_factory=list)
    relationships: list[Relationship] = field(default_factory=list)
    imports: list[str] = field(default_factory=list)

    def term(self, iri: str, kind: TermKind, line: int | None = None) -> None:
        """Record ``iri`` as a subject; a more specific kind wins, whatever the order.

        ``resource`` yields to anything; ``property`` (e.g. ``owl:FunctionalProperty``,
        which object and data properties share) yields to a specific property kind.
        """
        old = self.terms.get(iri)
        if (
            old is None
            or (old.kind == "resource" and kind != "resource")
            or (old.kind == "property" and kind in PROPERTY_KINDS and kind != "property")
        ):
            self.terms[iri] = Term(iri, kind, line if old is None else old.line)

    def annotate(
        self,
        subject: str,
        prop: str,
        value: str,
        *,
        lang: str | None = None,
        datatype: str | None = None,
        line: int | None = None,
    ) -> None:
        role = ROLE_BY_PROPERTY.get(prop)
        self.annotations.append(Annotation(subject, prop, value, lang, datatype, role, line))


def expand(name: str, prefixes: dict[str, str]) -> str:
    """``<iri>`` → iri; a CURIE with a known prefix → full IRI; anything else as is."""
    if name.startswith("<") and name.endswith(">"):
        return name[1:-1]
    prefix, sep, local = name.partition(":")
    if sep and not local.startswith("//"):
        base = prefixes.get(prefix, WELL_KNOWN_PREFIXES.get(prefix))
        if base is not None:
            return base + local
    return name


def local_name(ref: str) -> str:
    """The part of an IRI or CURIE that names the thing; a page name as it is."""
    ref = ref.strip("<>")
    if "://" in ref or ref.startswith(("urn:", "file:")):
        cut = max(ref.rfind("#"), ref.rfind("/"), ref.rfind(":"))
        return ref[cut + 1 :] or ref
    prefix, sep, local = ref.partition(":")
    return local if sep and prefix and " " not in prefix and local else ref


_NOT_A_LETTER = re.compile(r"[\W_]+")


def name_key(name: str) -> str:
    """How names are compared: case, spaces and punctuation ignored.

    So the wikilink ``[[Communication Protocol]]``, the label "communication
    protocol" and the local name of ``mv:CommunicationProtocol`` are one name.
    """
    return _NOT_A_LETTER.sub("", name.casefold()) or name.casefold()


def base_iri(relpath: str) -> str:
    """The base IRI relative IRIs of the file at ``relpath`` resolve against (RDF)."""
    return "file:///" + quote(relpath)


def is_builtin(iri: str) -> bool:
    return iri.startswith(BUILTIN_NAMESPACES)
