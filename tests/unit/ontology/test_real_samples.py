"""Real ontology files from public repositories (tests/fixtures/ontology/real/SOURCES.tsv).

One file per family the corpora contain: a VisionFlow Logseq page, a knowledgeGraph
JSON-LD page, OWL in RDF/XML (koala) and OWL/XML from the OWLAPI test resources, and
W3C negative syntax tests plus an OWLAPI file with a real syntax error, which must be
refused with the line of the defect.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.errors import ParseError
from headrace.parsers.ontology import parse_ontology
from headrace.parsers.ontology.model import RDFS, SKOS, OntologyDoc

REAL = Path(__file__).parents[2] / "fixtures" / "ontology" / "real"
KOALA = "http://protege.stanford.edu/plugins/owl/owl-library/koala.owl#"


def _parse(name: str) -> OntologyDoc:
    doc = parse_ontology(name, (REAL / name).read_bytes())
    assert doc is not None
    return doc


def test_every_real_sample_is_listed_with_its_licence() -> None:
    rows = (REAL / "SOURCES.tsv").read_text(encoding="utf-8").splitlines()[1:]
    listed = {row.split("\t")[0] for row in rows}
    assert listed == {p.name for p in REAL.iterdir() if p.name != "SOURCES.tsv"}
    assert all(row.split("\t")[4] for row in rows)


def test_visionflow_logseq_page() -> None:
    doc = _parse("API Standard.md")
    assert (doc.format, doc.primary) == ("logseq", "mv:APIStandard")
    roles = {(a.role, a.value) for a in doc.annotations if a.role}
    assert ("term_id", "20100") in roles
    assert ("label", "API Standard") in roles
    assert any(a.property == SKOS + "definition" for a in doc.annotations)
    ax = {(a.subject, a.kind, a.target, a.property) for a in doc.axioms}
    assert ("mv:APIStandard", "subclass_of", "mv:Specification", None) in ax
    assert ("mv:APIStandard", "restriction", "mv:CommunicationProtocol", "mv:defines") in ax
    assert ("mv:CommunicationProtocol", "subclass_of", "mv:VirtualObject", None) in ax
    # the supporting classes declared in the same fenced block are terms of the file
    assert {"mv:CommunicationProtocol", "mv:DataFormatSpecification"} <= set(doc.terms)
    links = {(r.predicate, r.target) for r in doc.relationships}
    assert ("has-part", "Communication Protocol") in links
    assert ("source", "ISO/IEC 30170") in links
    # axiom lines are lines of the Markdown file
    spec = next(a for a in doc.axioms if a.target == "mv:Specification")
    assert spec.line == 32


def test_knowledgegraph_jsonld_page() -> None:
    doc = _parse("Memory.md")
    assert (doc.format, doc.iri, doc.primary) == (
        "jsonld",
        "urn:visionflow:page:memory",
        "urn:ngm:class:memory",
    )
    assert [(a.kind, a.target) for a in doc.axioms] == [
        ("subclass_of", "urn:ngm:class:computer-hardware")
    ]
    labels = [a.value for a in doc.annotations if a.property == RDFS + "label"]
    assert labels == ["Memory"]
    assert "memory" in doc.names  # vc:slug, so [[memory]] resolves to the class


def test_koala_rdfxml() -> None:
    doc = _parse("koala.owl")
    assert doc.iri == KOALA[:-1]
    kinds = {iri[len(KOALA) :]: t.kind for iri, t in doc.terms.items() if iri.startswith(KOALA)}
    assert kinds["Koala"] == kinds["Marsupials"] == kinds["Person"] == "class"
    assert kinds["hasHabitat"] == "object_property"
    # typed owl:FunctionalProperty first, owl:DatatypeProperty later: still a data property
    assert kinds["isHardWorking"] == "data_property"
    assert kinds["hasGender"] == "object_property"
    ax = {(a.subject, a.kind, a.target, a.property) for a in doc.axioms}
    assert (KOALA + "Koala", "subclass_of", KOALA + "Marsupials", None) in ax
    assert (KOALA + "Koala", "restriction", KOALA + "DryEucalyptForest", KOALA + "hasHabitat") in ax
    assert (KOALA + "PhD", "class_assertion", KOALA + "Degree", None) in ax


def test_owlapi_owl_xml() -> None:
    doc = _parse("owlxml_anonloop.owx")
    base = "http://www.derivo.de/ontologies/examples/anonymous-individuals#"
    assert doc.terms[base + "C"].kind == "class"
    assert doc.terms[base + "r"].kind == "object_property"
    assert [(a.kind, a.target) for a in doc.axioms] == [("class_assertion", base + "C")]


@pytest.mark.parametrize(
    ("name", "line"),
    [
        ("turtle-syntax-bad-struct-01.ttl", 2),
        ("nt-syntax-bad-uri-01.nt", 2),
        # pyoxigraph's RDF/XML errors carry no position: located by the quoted value
        ("error001.rdf", 24),
        # a real defect in the OWLAPI resources: a '.' inside a [ ... ] property list
        ("primer.turtle.rdf", 84),
    ],
)
def test_real_syntax_errors_name_the_line(name: str, line: int) -> None:
    with pytest.raises(ParseError) as err:
        parse_ontology(name, (REAL / name).read_bytes())
    assert err.value.line == line
    assert err.value.path == name
