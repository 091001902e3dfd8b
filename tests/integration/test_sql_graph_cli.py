"""``headrace graph …`` and ``headrace cache …`` on the Sakila fixtures."""

from __future__ import annotations

import json
from pathlib import Path

from tests.integration.sql_graph_support import SAKILA, copy_sql
from typer.testing import CliRunner

from headrace.cli.main import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def _ingested(tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    root = copy_sql(SAKILA, tmp_path / "sakila", ["sqlite-sakila-schema.sql"])
    graph = tmp_path / "g.sqlite"
    code, out = run(
        "graph", "ingest", str(root), "--graph", str(graph), "--cache", str(tmp_path / "c.sqlite"),
        "--json", *extra,
    )  # fmt: skip
    assert code == 0, out
    return root, graph


def test_neighbors_and_path(tmp_path: Path) -> None:
    _root, graph = _ingested(tmp_path)
    code, out = run("graph", "neighbors", "film", "--graph", str(graph), "--json")
    assert code == 0, out
    rows = json.loads(out)
    refs = {(r["direction"], r["key"]) for r in rows if r["type"] == "REFERENCES"}
    assert ("out", "relation:sakila.main.language") in refs
    assert ("in", "relation:sakila.main.inventory") in refs
    assert ("in", "relation:sakila.main.film_actor") in refs
    columns = [r["name"] for r in rows if r["type"] == "HAS_COLUMN"]
    assert len(columns) == 13
    assert "title" in columns

    code, out = run("graph", "path", "payment", "film", "--graph", str(graph))
    assert code == 0, out
    assert out.strip() == (
        "sakila.main.payment -> sakila.main.rental -> sakila.main.inventory -> sakila.main.film"
    )
    code, out = run("graph", "path", "country", "category", "--graph", str(graph))
    assert code == 1  # 7 foreign keys apart: beyond the default 6 hops
    code, out = run(
        "graph", "path", "country", "category", "--max-hops", "8", "--graph", str(graph), "--json"
    )  # fmt: skip
    assert code == 0, out
    (trail,) = json.loads(out)
    assert trail[0] == "relation:sakila.main.country"
    assert trail[-1] == "relation:sakila.main.category"
    assert len(trail) == 8
    code, _ = run("graph", "path", "film", "film_text", "--graph", str(graph))
    assert code == 1  # film_text has no foreign key: no path
    code, out = run("graph", "neighbors", "no_such_table", "--graph", str(graph))
    assert code == 1


def test_show_stats_failed_and_export(tmp_path: Path) -> None:
    root, graph = _ingested(tmp_path)
    code, out = run("graph", "show", "rental", "--graph", str(graph))
    assert code == 0, out
    assert "table sakila.main.rental" in out
    assert f"defined in {root / 'sqlite-sakila-schema.sql'}" in out
    assert "REFERENCES  -> table inventory" in out
    code, out = run("graph", "stats", "--graph", str(graph), "--json")
    counts = json.loads(out)
    assert counts["nodes"]["table"] == 16
    assert counts["edges"]["REFERENCES"] == 44  # 22 table-level + 22 column-level
    code, out = run("graph", "failed", "--graph", str(graph))
    assert (code, out.strip()) == (0, "no failures")
    code, out = run("graph", "export", "--graph", str(graph))
    rows = [json.loads(line) for line in out.splitlines()]
    assert sum(1 for r in rows if "node" in r) == sum(counts["nodes"].values())
    assert sum(1 for r in rows if "edge" in r) == sum(counts["edges"].values())


def test_cache_stats_and_clear(tmp_path: Path) -> None:
    root, _graph = _ingested(tmp_path)
    cache = str(tmp_path / "c.sqlite")
    again = tmp_path / "g2.sqlite"  # the ledger is gone: every file is read, none parsed
    code, out = run("graph", "ingest", str(root), "--graph", str(again), "--cache", cache, "--json")
    assert code == 0, out
    assert json.loads(out)["cache_file_hits"] == 1
    code, out = run("cache", "stats", "--cache", cache, "--json")
    assert code == 0, out
    stats = json.loads(out)
    assert stats["entries"] > 1
    assert stats["hits"] >= 1
    assert stats["bytes"] > 0
    assert 0 < stats["hit_rate"] < 1
    code, out = run("cache", "clear", "--cache", cache, "--json")
    assert code == 0, out
    assert json.loads(out)["removed"] == stats["entries"]
    _code, out = run("cache", "stats", "--cache", cache, "--json")
    assert json.loads(out)["entries"] == 0


def test_schema_text_enters_the_search_index(tmp_path: Path) -> None:
    index = str(tmp_path / "search.sqlite")
    root, graph = _ingested(tmp_path, "--index", index, "--embedder", "hash")
    code, out = run("search", "rental_date inventory_id", "--index", index, "--json", "-k", "3")
    assert code == 0, out
    hits = json.loads(out)
    assert hits
    assert "## table rental" in hits[0]["text"] or hits[0]["heading"].endswith("table rental")
    # Deleting the SQL file removes its page from the search index too.
    (root / "sqlite-sakila-schema.sql").unlink()
    code, out = run(
        "graph", "ingest", str(root), "--graph", str(graph), "--index", index,
        "--embedder", "hash", "--allow-root-deletion", "--json",
    )  # fmt: skip
    assert code == 0, out
    code, out = run("search", "rental_date", "--index", index, "--json")
    assert json.loads(out) == []
