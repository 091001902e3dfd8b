"""Ontology sync: git repositories of ontology files into a relational SQLite model.

``OntologySync`` (sync.py) drives the flow ``GitRepo`` (sources/git.py) → ontology
parsers (parsers/ontology/) → ``OntologyStore`` (sinks/ontology_sqlite.py), and
optionally renders the terms into a search index (search.py).
"""

from headrace.ontology.sync import OntologySync, SyncReport

__all__ = ["OntologySync", "SyncReport"]
