"""Ontology parsers: one per syntax, all producing ``model.OntologyDoc``.

``parse_ontology(relpath, data)`` picks the syntax by extension (and, for ``.owl``,
by sniffing: RDF/XML, OWL/XML or Functional Syntax) and returns ``None`` for a
file that is not an ontology (a Markdown page without an ``OntologyBlock`` or a
JSON-LD class): such a file is an ordinary document, not an error. A syntax error
raises ``ParseError`` with the file and line. No parser touches the network:
``owl:imports`` are recorded, remote JSON-LD contexts are never fetched, XML
entities are refused or substituted as text by ``xmlguard``.
"""

from __future__ import annotations

import posixpath

from headrace.errors import ParseError
from headrace.parsers.ontology.jsonld import parse_jsonld_file, parse_jsonld_markdown
from headrace.parsers.ontology.logseq import page_name, parse_logseq
from headrace.parsers.ontology.model import OntologyDoc
from headrace.parsers.ontology.ofn import Interpreter, read
from headrace.parsers.ontology.xmlguard import sanitize_xml

# A bump makes the next sync re-parse every file (stored per ontology).
# 2: owl:FunctionalProperty no longer makes a data property an object property.
# 3: name keys ignore spaces and punctuation; local names of terms are names.
PARSER_VERSION = "3"

EXTENSIONS: dict[str, str] = {
    ".md": "markdown",
    ".markdown": "markdown",
    ".owl": "owl",
    ".rdf": "rdfxml",
    ".xml": "rdfxml",
    ".ttl": "turtle",
    ".turtle": "turtle",
    ".nt": "ntriples",
    ".owx": "owx",
    ".ofn": "ofn",
    ".jsonld": "jsonld",
}


def syntax_for(relpath: str) -> str | None:
    """The syntax family of ``relpath`` by extension, or ``None`` if not an ontology type."""
    return EXTENSIONS.get(posixpath.splitext(relpath)[1].lower())


# Syntaxes whose result depends on the file's path only through Logseq's page name.
_PATH_FREE = frozenset({"owx", "ofn", "jsonld"})
# RDF resolves relative IRIs against the file's path (``model.base_iri``).
_RDF = frozenset({"owl", "rdfxml", "turtle", "ntriples"})


def same_parse(old: str, new: str, *, uses_base: bool) -> bool:
    """True when the content stored for ``old`` parses to the same model at ``new``.

    ``uses_base``: whether the stored model mentions ``base_iri(old)`` (the file had
    relative IRIs). A file moved unchanged can then keep its stored rows (a rename);
    otherwise it is parsed again, or an incremental sync would differ from a fresh one
    (another format, another base IRI, another page name).
    """
    syntax = syntax_for(old)
    if syntax is None or syntax != syntax_for(new):
        return False
    if syntax == "markdown":
        return page_name(old) == page_name(new)
    if syntax in _RDF:
        return old == new or not uses_base
    return syntax in _PATH_FREE


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace").removeprefix("\ufeff")


def _sniff_xml(data: bytes, syntax: str) -> str:
    """``.owl``/``.rdf`` files are RDF/XML, OWL/XML, Functional Syntax or even Turtle."""
    head = data[:4096].lstrip(b"\xef\xbb\xbf \t\r\n")
    if head.startswith((b"Prefix(", b"Ontology(")):
        return "ofn"
    if not head.startswith(b"<"):
        return "turtle"
    if syntax == "rdfxml":
        return syntax
    if (
        b"<Ontology" in head
        and b"http://www.w3.org/2002/07/owl#" in head
        and b"<rdf:RDF" not in head
    ):
        return "owx"
    return "rdfxml"


def parse_ontology(relpath: str, data: bytes) -> OntologyDoc | None:
    """The ontology in ``data`` (the file at ``relpath``), or ``None`` if it has none."""
    syntax = syntax_for(relpath)
    if syntax in ("owl", "rdfxml"):
        syntax = _sniff_xml(data, syntax)
    doc: OntologyDoc | None
    if syntax == "markdown":
        text = _text(data)
        doc = parse_logseq(text, relpath) or parse_jsonld_markdown(text, relpath)
        if doc is not None and page_name(relpath) not in doc.names:
            doc.names.append(page_name(relpath))
        return doc
    if syntax == "jsonld":
        return parse_jsonld_file(_text(data), relpath)
    if syntax == "ofn":
        doc = OntologyDoc(format="ofn")
        Interpreter(doc).run(read(_text(data), path=relpath))
        return doc
    if syntax == "owx":
        from headrace.parsers.ontology.owx import parse_owx

        return parse_owx(sanitize_xml(data, relpath), relpath)
    if syntax in ("rdfxml", "turtle", "ntriples"):
        from headrace.parsers.ontology.rdf import parse_rdf

        if syntax == "rdfxml":
            data = sanitize_xml(data, relpath)
        return parse_rdf(data, syntax, relpath)
    raise ParseError(f"not an ontology file type: {relpath}", path=relpath)


__all__ = [
    "EXTENSIONS",
    "PARSER_VERSION",
    "OntologyDoc",
    "parse_ontology",
    "same_parse",
    "syntax_for",
]
