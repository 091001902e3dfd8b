"""Ontology parsers on small fixtures written for these tests, and hostile XML."""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.errors import ParseError
from headrace.parsers.ontology import parse_ontology
from headrace.parsers.ontology.model import OWL, RDFS, SKOS

FIXTURES = Path(__file__).parents[2] / "fixtures" / "ontology"


def _parse(name: str):  # type: ignore[no-untyped-def]
    return parse_ontology(name, (FIXTURES / name).read_bytes())


def test_logseq_block_properties_links_and_axioms() -> None:
    doc = _parse("Lunar Rover.md")
    assert doc is not None
    assert doc.format == "logseq"
    assert doc.primary == "mv:LunarRover"
    assert doc.terms["mv:LunarRover"].kind == "class"
    roles = {(a.role, a.value) for a in doc.annotations if a.role}
    assert ("label", "Lunar Rover") in roles
    assert ("term_id", "30001") in roles
    assert any(a.property == SKOS + "definition" for a in doc.annotations)
    links = {(r.predicate, r.target, r.target_kind) for r in doc.relationships}
    assert ("has-part", "Wheel Assembly", "name") in links
    assert ("related-to", "Base Station", "name") in links
    kinds = {(a.kind, a.target, a.property) for a in doc.axioms}
    assert ("subclass_of", "mv:Vehicle", None) in kinds
    assert ("restriction", "mv:WheelAssembly", "mv:hasPart") in kinds
    # the cardinality comes first in OFN; property and filler are still found
    assert ("restriction", "mv:Wheel", "mv:hasPart") in kinds
    restriction = next(a for a in doc.axioms if a.target == "mv:WheelAssembly")
    assert restriction.line == 17  # the line in the Markdown file, not in the fence
    assert "Lunar Rover" in doc.names


def test_page_without_block_is_a_plain_document() -> None:
    assert _parse("Plain Notes.md") is None


def test_ofn_syntax_error_names_the_line() -> None:
    with pytest.raises(ParseError) as err:
        _parse("Broken Page.md")
    assert err.value.line == 6
    assert "never closed" in err.value.message


def test_jsonld_markdown_without_fetching_context() -> None:
    doc = _parse("Base Station.md")
    assert doc is not None
    assert doc.format == "jsonld"
    assert doc.iri == "urn:test:page:base-station"
    cls = "urn:test:class:base-station"
    assert doc.terms[cls].kind == "class"
    assert any(
        a.kind == "subclass_of" and a.target == "urn:test:class:facility" for a in doc.axioms
    )
    assert any(r.predicate == "supports" and r.target == "mv:LunarRover" for r in doc.relationships)
    props = {a.property for a in doc.annotations}
    assert {RDFS + "label", SKOS + "definition", "maturity", "provenance.attributedTo"} <= props


def test_jsonld_syntax_error_line() -> None:
    with pytest.raises(ParseError) as err:
        _parse("Bad JSON.md")
    assert err.value.line == 8  # where json reports the missing comma


def test_rdfxml_with_namespace_entities() -> None:
    doc = _parse("pets.owl")
    assert doc is not None
    ns = "http://example.org/pets#"
    assert doc.iri == "http://example.org/pets"
    assert doc.imports == ["http://example.invalid/never-fetched.owl"]
    assert doc.terms[ns + "Dog"].kind == "class"
    assert doc.terms[ns + "Cat"].kind == "class"  # typed through the &owl; entity
    assert doc.terms[ns + "hasOwner"].kind == "object_property"
    assert doc.terms[ns + "Rex"].kind == "individual"
    axioms = {(a.subject, a.kind, a.target, a.property) for a in doc.axioms}
    assert (ns + "Dog", "subclass_of", ns + "Animal", None) in axioms
    assert (ns + "Dog", "restriction", ns + "Person", ns + "hasOwner") in axioms
    assert (ns + "hasOwner", "domain", ns + "Animal", None) in axioms
    assert (ns + "Rex", "class_assertion", ns + "Dog", None) in axioms
    comment = next(a for a in doc.annotations if a.role == "comment")
    assert comment.value == "A domesticated canine."
    assert comment.datatype is None


def test_turtle_and_ntriples() -> None:
    ttl = _parse("people.ttl")
    nt = _parse("agents.nt")
    assert ttl is not None
    assert nt is not None
    person = "http://example.org/pets#Person"
    assert ttl.terms[person].kind == "class"
    assert any(a.role == "definition" for a in ttl.annotations)
    assert any(a.kind == "inverse_of" for a in ttl.axioms)
    assert nt.terms["http://example.org/pets#Agent"].kind == "class"


def test_turtle_syntax_error_has_a_line() -> None:
    with pytest.raises(ParseError) as err:
        _parse("bad.ttl")
    assert err.value.line == 4


def test_owl_xml() -> None:
    doc = _parse("shapes.owx")
    assert doc is not None
    assert doc.format == "owx"
    square = "http://example.org/shapes#Square"
    assert doc.terms[square].kind == "class"
    axioms = {(a.kind, a.target, a.property) for a in doc.axioms if a.subject == square}
    assert ("subclass_of", "http://example.org/shapes#Shape", None) in axioms
    assert (
        "restriction",
        "http://example.org/shapes#Side",
        "http://example.org/shapes#hasSide",
    ) in axioms
    assert any(a.role == "label" and a.value == "Square" for a in doc.annotations)


RDF_HEAD = (
    '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"'
    ' xmlns:rdfs="http://www.w3.org/2000/01/rdf-schema#">'
    '<rdf:Description rdf:about="http://x/a"><rdfs:label>{body}</rdfs:label>'
    "</rdf:Description></rdf:RDF>"
)


def _xml(dtd: str, body: str) -> bytes:
    head = f'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF [\n{dtd}\n]>\n'
    return (head + RDF_HEAD.format(body=body)).encode()


@pytest.mark.parametrize("ext", [".owl", ".owx"])
def test_billion_laughs_is_refused(ext: str) -> None:
    levels = ['<!ENTITY a0 "lol">'] + [
        f'<!ENTITY a{i} "{f"&a{i - 1};" * 10}">' for i in range(1, 10)
    ]
    with pytest.raises(ParseError, match="nested expansion"):
        parse_ontology("laughs" + ext, _xml("\n".join(levels), "&a9;"))


def test_xxe_external_entity_is_refused(tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    data = _xml(f'<!ENTITY x SYSTEM "file://{secret}">', "&x;")
    with pytest.raises(ParseError, match="external entity"):
        parse_ontology("xxe.rdf", data)


@pytest.mark.parametrize(
    "dtd",
    ['<!ENTITY % p SYSTEM "http://example.invalid/p.dtd"> %p;', '<!ENTITY % q "x">'],
)
def test_parameter_entities_are_refused(dtd: str) -> None:
    with pytest.raises(ParseError):
        parse_ontology("p.rdf", _xml(dtd, "x"))


def test_external_dtd_is_refused() -> None:
    data = (
        b'<?xml version="1.0"?>\n<!DOCTYPE rdf:RDF SYSTEM "http://example.invalid/x.dtd">\n'
        + RDF_HEAD.format(body="x").encode()
    )
    with pytest.raises(ParseError, match="external DTD"):
        parse_ontology("x.rdf", data)


def test_wide_entity_expansion_is_bounded() -> None:
    big = "x" * 100_000
    data = _xml(f'<!ENTITY big "{big}">', "&big;" * 200)  # 20 MB if expanded
    with pytest.raises(ParseError, match="size budget"):
        parse_ontology("wide.rdf", data)


def test_plain_internal_entities_are_text_only() -> None:
    data = _xml('<!ENTITY t "&lt;b&gt;">', "&t;")
    doc = parse_ontology("t.rdf", data.replace(b"&lt;b&gt;", b"<b>"))
    assert doc is not None
    assert doc.annotations[0].value == "<b>"  # markup in an entity value stays text


def test_owl_rdfxml_sniffing_of_turtle_content() -> None:
    doc = parse_ontology("really-turtle.rdf", (FIXTURES / "people.ttl").read_bytes())
    assert doc is not None
    assert doc.format == "turtle"


def test_owl_constant_sanity() -> None:
    assert OWL.endswith("#")


def test_no_parser_touches_the_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """owl:imports, remote JSON-LD contexts and DTD URLs are all in these files."""
    import socket

    attempts: list[object] = []

    def refuse(*args: object, **kwargs: object) -> None:
        attempts.append(args)
        raise OSError("network access from a parser")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    files = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.suffix != ".tsv")
    parsed = 0
    for path in files:
        try:
            doc = parse_ontology(path.name, path.read_bytes())
        except ParseError:
            continue
        parsed += doc is not None
    assert parsed >= 10
    assert attempts == []
