"""Refuse dangerous XML before any XML parser sees it.

Real OWL files declare internal entities for namespaces
(``<!ENTITY owl "http://www.w3.org/2002/07/owl#">``, used as ``&owl;Class``), so
refusing every DTD would refuse pizza.owl. pyoxigraph's RDF/XML parser expands
nested entities (measured: 7 levels of "billion laughs", a 0.4 KB file, gave a
30 MB literal in 0.17 s; 9 levels would be 3 GB). So the DTD is read here, by
rules that admit only the harmless form, and removed:

- external entities (``SYSTEM``/``PUBLIC``: XXE) and parameter entities → refused;
- an entity whose value refers to another entity (nesting: billion laughs) → refused;
- declared entities are substituted as *text* (markup characters escaped), and the
  expanded size is bounded: at most ``max(8 MiB, 4 times the input)``;
- whatever remains of a DTD after that → refused.

The parsers then receive XML without a DOCTYPE, so nothing can be expanded or fetched.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from headrace.errors import ParseError

_DOCTYPE = re.compile(
    rb"<!DOCTYPE\s+[^\s\[>]+(?:\s+(?:SYSTEM|PUBLIC)[^\[>]*)?\s*(\[(.*?)\])?\s*>", re.S
)
_DECL = re.compile(rb"""<!ENTITY\s+(%\s+)?([\w.:-]+)\s+("[^"]*"|'[^']*'|[^>]*?)\s*>""", re.S)
_VALUE = re.compile(rb"""^(?:"([^"]*)"|'([^']*)')\s*$""", re.S)
_COMMENT = re.compile(rb"<!--.*?-->", re.S)
_OTHER_DECL = re.compile(rb"<!(?:ELEMENT|ATTLIST|NOTATION)\b[^>]*>", re.S)
_REF = re.compile(rb"&(?!#)([\w.:-]+);")


def sanitize_xml(data: bytes, path: str) -> bytes:
    """``data`` without its DOCTYPE, internal entities substituted; or ``ParseError``."""
    head = data[:65536]
    start = head.find(b"<!DOCTYPE")
    if start < 0:
        _refuse_leftovers(data, path, 0)
        return data
    m = _DOCTYPE.match(data, start)
    line = data.count(b"\n", 0, start) + 1
    if m is None:
        raise ParseError("unsupported DOCTYPE declaration", path=path, line=line)
    if re.match(rb"<!DOCTYPE\s+[^\s\[>]+\s+(?:SYSTEM|PUBLIC)", m.group(0)):
        raise ParseError("external DTD refused (would be fetched)", path=path, line=line)
    entities = _entities(m.group(2) or b"", path, line)
    body = data[m.end() :]
    if entities:
        body = _substitute(body, entities, len(data), path)
    _refuse_leftovers(body, path, line)
    return data[:start] + body


def _entities(subset: bytes, path: str, line: int) -> dict[bytes, bytes]:
    entities: dict[bytes, bytes] = {}
    rest = _COMMENT.sub(b"", subset)
    for m in _DECL.finditer(rest):
        name, spec = m.group(2), m.group(3)
        if m.group(1):
            raise ParseError(f"parameter entity %{name.decode()} refused", path=path, line=line)
        value = _VALUE.match(spec)
        if value is None:
            raise ParseError(
                f"external entity &{name.decode()}; refused (would be fetched)",
                path=path,
                line=line,
            )
        text = value.group(1) if value.group(1) is not None else value.group(2)
        if _REF.search(text) or b"%" in text:
            raise ParseError(
                f"entity &{name.decode()}; refers to another entity (nested expansion refused)",
                path=path,
                line=line,
            )
        entities[name] = escape(
            text.decode("utf-8", "replace"), {'"': "&quot;", "'": "&apos;"}
        ).encode()
    leftover = _OTHER_DECL.sub(b"", _DECL.sub(b"", rest)).strip()
    if leftover:
        raise ParseError("unsupported declaration in the DTD", path=path, line=line)
    return entities


def _substitute(body: bytes, entities: dict[bytes, bytes], size: int, path: str) -> bytes:
    budget = max(8 << 20, 4 * size)
    grown = 0
    for m in _REF.finditer(body):
        value = entities.get(m.group(1))
        if value is not None:
            grown += len(value)
            if grown > budget:
                raise ParseError("entity expansion exceeds the size budget", path=path)

    def repl(m: re.Match[bytes]) -> bytes:
        name = m.group(1)
        return entities.get(name, m.group(0))

    return _REF.sub(repl, body)


def _refuse_leftovers(body: bytes, path: str, line: int) -> None:
    # Undeclared entities need no check: without a DTD the XML parser rejects them.
    if b"<!" not in body:
        return
    visible = _COMMENT.sub(lambda m: b"\n" * m.group(0).count(b"\n"), body)
    for marker in (b"<!DOCTYPE", b"<!ENTITY"):
        at = visible.find(marker)
        if at >= 0:
            raise ParseError(
                f"{marker.decode()} outside the prolog refused",
                path=path,
                line=line + visible.count(b"\n", 0, at),
            )
