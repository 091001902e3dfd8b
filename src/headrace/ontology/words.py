"""Terms and axioms as words, for the search index.

An embedding model reads ``ObjectSomeValuesFrom(<http://…/pizza.owl#hasTopping>
<http://…/pizza.owl#TomatoTopping>)`` as a long run of URL pieces; it reads
"has topping some tomato topping" as meaning. So the rendered pages name things
by their local names, split into words, and restrictions read as Manchester-style
phrases. The exact identifier of each term stays on its page once (keyword search
on ``mv:APIStandard`` still finds it).
"""

from __future__ import annotations

import re

from headrace.parsers.ontology.model import local_name

_IRI = re.compile(r"<([^<>\s]+)>")
_CURIE = re.compile(r"\b[A-Za-z][\w.-]*:([A-Za-z_][\w.-]*)")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_QUANTIFIERS = (
    ("SomeValuesFrom", "some"),
    ("AllValuesFrom", "only"),
    ("HasValue", "value"),
    ("MinCardinality", "at least"),
    ("MaxCardinality", "at most"),
    ("ExactCardinality", "exactly"),
    ("HasSelf", "self"),
)
_NUMBER = re.compile(r"Cardinality\((\d+)")


def words(ref: str) -> str:
    """``mv:APIStandard`` → "API Standard"; ``has_part`` → "has part"."""
    name = local_name(ref).replace("_", " ").replace("-", " ")
    return " ".join(_CAMEL.sub(" ", name).split()) or ref


def readable(expression: str) -> str:
    """An OFN expression with every IRI and CURIE replaced by its words."""
    text = _IRI.sub(lambda m: words(m.group(1)), expression)
    return _CURIE.sub(lambda m: words(m.group(1)), text)


def restriction(expression: str, prop: str | None, filler: str | None) -> str:
    """``SubClassOf(A ObjectSomeValuesFrom(p B))`` → "p some B" (words)."""
    if prop is None:
        return readable(expression)
    quantifier = next((q for key, q in _QUANTIFIERS if key in expression), "")
    count = _NUMBER.search(expression)
    parts = [words(prop), quantifier, count.group(1) if count else "", words(filler or "")]
    return " ".join(p for p in parts if p)
