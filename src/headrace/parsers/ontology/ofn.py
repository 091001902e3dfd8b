"""OWL 2 Functional Syntax: a tokenizer, an S-expression reader and an interpreter.

Used for the ``clojure`` fenced blocks of Logseq pages and, through the same
interpreter, for OWL/XML (whose elements map one to one on OFN constructors).
Hand-written because the blocks are fragments (no ``Ontology(...)`` wrapper, no
``Prefix`` declarations) that OWL libraries refuse, and because a syntax error
must name its line in the Markdown file.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field

from headrace.errors import ParseError
from headrace.parsers.ontology.model import Axiom, OntologyDoc, Relationship, TermKind, expand

_TOKEN = re.compile(
    r"""(?P<ws>[ \t\r\f\v]+)|(?P<nl>\n)|(?P<comment>\#[^\n]*)
    |(?P<open>\()|(?P<close>\))|(?P<iri><[^<>"{}|^`\\\s]*>)
    |(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<badstring>"[^\n]*)
    |(?P<tag>\^\^|@[A-Za-z]+(?:-[A-Za-z0-9]+)*|=)
    |(?P<name>[^\s()<>"=\#^@]+)""",
    re.VERBOSE,
)


@dataclass(frozen=True, slots=True)
class Atom:
    """An IRI, a CURIE, a blank node or a literal, as written; ``line`` is 1-based."""

    text: str
    line: int
    literal: bool = False
    lang: str | None = None
    datatype: str | None = None


@dataclass(slots=True)
class Node:
    """``name(args...)``."""

    name: str
    line: int
    args: list[Node | Atom] = field(default_factory=list)


def _tokens(text: str, first_line: int, path: str) -> Iterator[tuple[str, str, int]]:
    line = first_line
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup or ""
        if kind == "nl":
            line += 1
        elif kind == "badstring":
            raise ParseError("unterminated string literal", path=path, line=line)
        elif kind not in ("ws", "comment"):
            yield kind, m.group(), line
    # finditer skips what no pattern matches only if every character matches one:
    # the name pattern is a catch-all for everything but delimiters, so nothing is lost.


def read(text: str, *, path: str, first_line: int = 1) -> list[Node | Atom]:
    """Parse OFN text into top-level nodes; raise ``ParseError`` with the line."""
    top: list[Node | Atom] = []
    stack: list[Node] = []
    pending: Atom | None = None  # a literal that may still get ^^type or @lang
    toks = _tokens(text, first_line, path)
    for kind, value, line in toks:
        args = stack[-1].args if stack else top
        if kind == "tag" and value == "^^" and pending is not None:
            _, dt, _ = next(toks, ("", "", line))
            args[-1] = pending = Atom(pending.text + "^^" + dt, pending.line, True, None, dt)
            continue
        if kind == "tag" and value.startswith("@") and pending is not None:
            args[-1] = Atom(pending.text + value, pending.line, True, value[1:], None)
            pending = None
            continue
        pending = None
        if kind == "open":
            name = args[-1] if args else None
            if not isinstance(name, Atom) or name.literal:
                raise ParseError("'(' without a constructor name", path=path, line=line)
            args.pop()
            node = Node(name.text, name.line)
            args.append(node)
            stack.append(node)
        elif kind == "close":
            if not stack:
                raise ParseError("unbalanced ')'", path=path, line=line)
            stack.pop()
        elif kind == "string":
            pending = Atom(value, line, literal=True)
            args.append(pending)
        else:
            args.append(Atom(value, line))
    if stack:
        raise ParseError(f"'{stack[-1].name}(' is never closed", path=path, line=stack[-1].line)
    return top


def render(item: Node | Atom) -> str:
    if isinstance(item, Atom):
        return item.text
    return f"{item.name}({' '.join(render(a) for a in item.args)})"


_DECLARED: dict[str, TermKind] = {
    "Class": "class",
    "ObjectProperty": "object_property",
    "DataProperty": "data_property",
    "AnnotationProperty": "annotation_property",
    "NamedIndividual": "individual",
    "Datatype": "datatype",
}
_RESTRICTIONS = frozenset(
    f"{kind}{what}"
    for kind in ("Object", "Data")
    for what in (
        "SomeValuesFrom",
        "AllValuesFrom",
        "HasValue",
        "MinCardinality",
        "MaxCardinality",
        "ExactCardinality",
        "HasSelf",
    )
)
_PAIRS: dict[str, tuple[str, TermKind]] = {
    "SubObjectPropertyOf": ("subproperty_of", "object_property"),
    "SubDataPropertyOf": ("subproperty_of", "data_property"),
    "SubAnnotationPropertyOf": ("subproperty_of", "annotation_property"),
    "ObjectPropertyDomain": ("domain", "object_property"),
    "DataPropertyDomain": ("domain", "data_property"),
    "AnnotationPropertyDomain": ("domain", "annotation_property"),
    "ObjectPropertyRange": ("range", "object_property"),
    "DataPropertyRange": ("range", "data_property"),
    "AnnotationPropertyRange": ("range", "annotation_property"),
    "InverseObjectProperties": ("inverse_of", "object_property"),
}
_CHARACTERISTICS = frozenset(
    f"{c}ObjectProperty"
    for c in (
        "Functional",
        "InverseFunctional",
        "Reflexive",
        "Irreflexive",
        "Symmetric",
        "Asymmetric",
        "Transitive",
    )
) | {"FunctionalDataProperty"}


class Interpreter:
    """Turns OFN nodes into ``OntologyDoc`` terms, axioms, annotations, relationships."""

    def __init__(self, doc: OntologyDoc, prefixes: dict[str, str] | None = None) -> None:
        self.doc = doc
        self.prefixes = dict(prefixes or {})

    def iri(self, atom: Atom) -> str:
        return expand(atom.text, self.prefixes)

    def iri_of(self, name: str) -> str:
        """``name`` expanded with the prefixes declared so far."""
        return expand(name, self.prefixes)

    def run(self, nodes: list[Node | Atom]) -> None:
        for node in nodes:
            if isinstance(node, Node):
                self.axiom(node)

    def axiom(self, node: Node) -> None:  # noqa: C901, PLR0912 - one dispatch over OWL's constructors
        name, args = node.name, node.args
        atoms = [a for a in args if isinstance(a, Atom) and not a.literal]
        if name == "Prefix":
            self._prefix(node)
        elif name == "Ontology":
            if atoms:
                self.doc.iri = self.iri(atoms[0])
            self.run([a for a in args if isinstance(a, Node)])
        elif name == "Import":
            self.doc.imports.extend(self.iri(a) for a in atoms)
        elif name == "Declaration":
            for inner in args:
                if isinstance(inner, Node) and inner.name in _DECLARED and inner.args:
                    first = inner.args[0]
                    if isinstance(first, Atom):
                        self.doc.term(self.iri(first), _DECLARED[inner.name], first.line)
        elif name == "SubClassOf" and len(args) == 2:
            self._subclass(node, args[0], args[1])
        elif name in ("EquivalentClasses", "DisjointClasses"):
            kind = "equivalent_class" if name == "EquivalentClasses" else "disjoint_with"
            self._nary(node, kind, "class")
        elif name in _PAIRS and len(args) == 2:
            kind, term_kind = _PAIRS[name]
            self._pair(node, kind, term_kind)
        elif name in _CHARACTERISTICS and atoms:
            kind_of: TermKind = "data_property" if "Data" in name else "object_property"
            self._add(node, atoms[0], "characteristic", kind_of, None)
        elif name == "ClassAssertion" and len(args) == 2:
            self._class_assertion(node)
        elif name in ("ObjectPropertyAssertion", "DataPropertyAssertion", "AnnotationAssertion"):
            self._assertion(node)
        elif atoms:
            self._add(node, atoms[0], name[0].lower() + name[1:], "resource", None)

    def _prefix(self, node: Node) -> None:
        texts = [a.text for a in node.args if isinstance(a, Atom)]
        if len(texts) == 3 and texts[1] == "=" and texts[2].startswith("<"):
            self.prefixes[texts[0].rstrip(":")] = texts[2][1:-1]

    def _add(
        self,
        node: Node,
        subject: Atom,
        kind: str,
        term_kind: TermKind,
        target: Atom | None,
        *,
        prop: Atom | None = None,
    ) -> None:
        s = self.iri(subject)
        self.doc.term(s, term_kind, subject.line)
        self.doc.axioms.append(
            Axiom(
                s,
                kind,
                render(node),
                self.iri(target) if target else None,
                self.iri(prop) if prop else None,
                node.line,
            )
        )

    def _subclass(self, node: Node, sub: Node | Atom, sup: Node | Atom) -> None:
        subject = sub if isinstance(sub, Atom) else _first_atom(sub)
        if subject is None:
            return
        if isinstance(sup, Atom):
            self._add(node, subject, "subclass_of", "class", sup)
        elif sup.name in _RESTRICTIONS and sup.args:
            # Cardinalities put the number first: ObjectMinCardinality(4 p C).
            rest = sup.args[1:] if _is_number(sup.args[0]) else sup.args
            prop = rest[0] if rest and isinstance(rest[0], Atom) else None
            filler = rest[-1] if len(rest) > 1 else None
            target = filler if isinstance(filler, Atom) and not filler.literal else None
            self._add(node, subject, "restriction", "class", target, prop=prop)
        else:
            self._add(node, subject, "subclass_of", "class", None)

    def _nary(self, node: Node, kind: str, term_kind: TermKind) -> None:
        named = [a for a in node.args if isinstance(a, Atom) and not a.literal]
        if not named:
            return
        others: list[Atom | None] = [*named[1:]] or [None]
        for other in others:
            self._add(node, named[0], kind, term_kind, other)

    def _pair(self, node: Node, kind: str, term_kind: TermKind) -> None:
        first, second = node.args
        if isinstance(first, Atom):
            target = second if isinstance(second, Atom) else None
            self._add(node, first, kind, term_kind, target)

    def _class_assertion(self, node: Node) -> None:
        cls, ind = node.args
        if isinstance(ind, Atom):
            self._add(
                node, ind, "class_assertion", "individual", cls if isinstance(cls, Atom) else None
            )

    def _assertion(self, node: Node) -> None:
        args = [a for a in node.args if isinstance(a, Atom)]
        if len(args) < 3:
            return
        prop, subject, value = args[-3], args[-2], args[-1]
        s = self.iri(subject)
        kind: TermKind = "individual" if node.name != "AnnotationAssertion" else "resource"
        self.doc.term(s, kind, subject.line)
        if value.literal:
            self.doc.annotate(
                s,
                self.iri(prop),
                _literal_value(value),
                lang=value.lang,
                datatype=value.datatype and self.iri(Atom(value.datatype, 0)),
                line=node.line,
            )
        else:
            self.doc.relationships.append(
                Relationship(s, self.iri(prop), self.iri(value), "iri", node.line)
            )


def _is_number(item: Node | Atom) -> bool:
    return isinstance(item, Atom) and item.text.isdigit()


def _first_atom(node: Node) -> Atom | None:
    for a in node.args:
        if isinstance(a, Atom) and not a.literal:
            return a
        if isinstance(a, Node) and (found := _first_atom(a)) is not None:
            return found
    return None


_ESCAPE = re.compile(r"\\(.)")


def _literal_value(atom: Atom) -> str:
    raw = atom.text
    end = raw.rfind('"')
    return _ESCAPE.sub(r"\1", raw[1:end])
