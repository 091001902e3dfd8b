"""Terms and axioms rendered as words for the search index."""

from __future__ import annotations

import pytest

from headrace.ontology.words import local_name, readable, restriction, words


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("mv:APIStandard", "API Standard"),
        ("http://www.co-ode.org/ontologies/pizza/pizza.owl#hasTopping", "has Topping"),
        ("<http://example.org/shapes/Square>", "Square"),
        ("urn:ngm:class:computer-hardware", "computer hardware"),
        ("Communication Protocol", "Communication Protocol"),  # a page name stays as written
        ("ISO/IEC 30170", "ISO/IEC 30170"),
    ],
)
def test_words(ref: str, expected: str) -> None:
    assert words(ref) == expected


def test_local_name_of_an_iri_ending_in_a_separator_is_the_iri() -> None:
    assert local_name("http://example.org/") == "http://example.org/"


def test_restrictions_read_as_phrases() -> None:
    some = "SubClassOf(mv:Rover ObjectSomeValuesFrom(mv:hasPart mv:WheelAssembly))"
    assert restriction(some, "mv:hasPart", "mv:WheelAssembly") == "has Part some Wheel Assembly"
    exact = "SubClassOf(mv:Rover ObjectExactCardinality(4 mv:hasPart mv:Wheel))"
    assert restriction(exact, "mv:hasPart", "mv:Wheel") == "has Part exactly 4 Wheel"
    # without a property the expression is rewritten token by token
    union = "SubClassOf(<http://x/p#A> ObjectUnionOf(mv:B <http://x/p#CheeseTopping>))"
    assert (
        restriction(union, None, None)
        == readable(union)
        == "SubClassOf(A ObjectUnionOf(B Cheese Topping))"
    )
