"""Compare candidate RDF/OWL parsers on the shared ontology samples.

    python bench/ontology_parsers.py [--data /work/shared/data/ontology] [--repeats 5]

For every sample file that a candidate claims to read, parse it ``repeats`` times and
report the best time; files a candidate rejects are counted, not timed. Candidates:
pyoxigraph (Rust, streaming), rdflib (pure Python), py-horned-owl (Rust, OWL model).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections.abc import Callable
from pathlib import Path

FORMATS = {".owl": "rdfxml", ".rdf": "rdfxml", ".ttl": "turtle", ".nt": "ntriples", ".owx": "owx"}


def _oxigraph(path: Path, fmt: str) -> int:
    import pyoxigraph as ox

    kind = {
        "rdfxml": ox.RdfFormat.RDF_XML,
        "turtle": ox.RdfFormat.TURTLE,
        "ntriples": ox.RdfFormat.N_TRIPLES,
    }[fmt]
    return sum(1 for _ in ox.parse(path=str(path), format=kind, base_iri="file:///x"))


def _rdflib(path: Path, fmt: str) -> int:
    import rdflib

    g = rdflib.Graph()
    g.parse(str(path), format={"rdfxml": "xml", "turtle": "turtle", "ntriples": "nt"}[fmt])
    return len(g)


def _horned(path: Path, fmt: str) -> int:
    import pyhornedowl

    o = pyhornedowl.open_ontology_from_file(str(path), {"rdfxml": "rdf", "owx": "owx"}[fmt])
    return len(o.get_axioms())


CANDIDATES: dict[str, tuple[Callable[[Path, str], int], set[str]]] = {
    "pyoxigraph": (_oxigraph, {"rdfxml", "turtle", "ntriples"}),
    "rdflib": (_rdflib, {"rdfxml", "turtle", "ntriples"}),
    "py-horned-owl": (_horned, {"rdfxml", "owx"}),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="/work/shared/data/ontology")
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    files = [p for p in sorted(Path(args.data).rglob("*")) if p.suffix in FORMATS]
    warnings.simplefilter("ignore")
    print(f"{len(files)} files, {sum(p.stat().st_size for p in files) / 1e6:.2f} MB")
    for name, (fn, formats) in CANDIDATES.items():
        total, ok, bad, items, nbytes = 0.0, 0, 0, 0, 0
        for path in files:
            fmt = FORMATS[path.suffix]
            if fmt not in formats:
                continue
            best = float("inf")
            try:
                for _ in range(args.repeats):
                    t = time.perf_counter()
                    n = fn(path, fmt)
                    best = min(best, time.perf_counter() - t)
            except Exception:
                bad += 1
                continue
            ok, total, items, nbytes = ok + 1, total + best, items + n, nbytes + path.stat().st_size
        print(
            f"{name:14} files ok {ok:3} rejected {bad:3}  {total * 1000:8.1f} ms"
            f"  {nbytes / 1e6 / total if total else 0:6.1f} MB/s  {items} triples/axioms"
        )


if __name__ == "__main__":
    main()
