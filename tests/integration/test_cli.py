"""The ``headrace`` command, run as users run it: ``python -m headrace`` in a subprocess.

The hash test double stands in for the model (``HEADRACE_EMBEDDER=hash``) and each
test has its own ``XDG_DATA_HOME``, so named indexes never leak. Checked: the JSON
of ingest, status, plan, failed and search; export's canonical form; retry; exit
codes (0 ok, 1 a dead letter, 2 bad usage or configuration, 3 a vanished root);
named indexes through ``--index`` and ``HEADRACE_INDEX``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import write_corpus

BAD_JSONL = '{"title": "one"}\nnot json\n{"title": "two"}\n'
BAD_LINE, BAD_OFFSET = 2, len('{"title": "one"}\n')
CORPUS = {
    "a.md": "# Travel\n\nThe ferry to zanzibar leaves at dawn.\n\nPack light.\n",
    "b.md": "# Keys\n\nRotate the signing keys every ninety days.\n",
    "e.md": "# Backups\n\nBackups run nightly and are restored weekly.\n",
    "sub/c.txt": "plain text file\n\nwith two paragraphs\n",
}


class Cli:
    """Runs ``python -m headrace`` against one index with an isolated environment."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.index = tmp / "idx.sqlite"
        self.xdg = tmp / "xdg"
        self.env = {
            **os.environ,
            "HEADRACE_EMBEDDER": "hash",
            "HF_HUB_OFFLINE": "1",
            "XDG_DATA_HOME": str(self.xdg),
        }

    def run(
        self, *args: str, index: bool = True, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        extra = ["--index", str(self.index)] if index else []
        return subprocess.run(
            [sys.executable, "-m", "headrace", "--quiet", *args, *extra],
            env={**self.env, **(env or {})},
            cwd=self.tmp,  # no stray ./headrace.toml
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )

    def json(self, *args: str, rc: int = 0, **kwargs: Any) -> Any:
        done = self.run(*args, "--json", **kwargs)
        assert done.returncode == rc, done.stderr
        return json.loads(done.stdout)

    def export(self) -> str:
        done = self.run("export")
        assert done.returncode == 0, done.stderr
        return done.stdout


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", CORPUS)


def _rows(export: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in export.splitlines()]


def test_ingest_json_summary(cli: Cli, corpus: Path) -> None:
    first = cli.json("ingest", str(corpus))
    rows = _rows(cli.export())
    assert {k: first[k] for k in ("files_total", "files_done", "files_failed", "dead_letters")} == {
        "files_total": 4,
        "files_done": 4,
        "files_failed": 0,
        "dead_letters": 0,
    }
    assert first["chunks_written"] == len(rows) > 0
    assert first["embeddings_computed"] == len({r["text"] for r in rows})
    assert first["bytes_done"] == sum(len(t.encode()) for t in CORPUS.values())
    again = cli.json("ingest", str(corpus))
    assert (again["unchanged"], again["files_done"], again["embeddings_computed"]) == (4, 0, 0)


def test_status_json(cli: Cli, corpus: Path) -> None:
    write_corpus(corpus, {"d.jsonl": BAD_JSONL})
    cli.json("ingest", str(corpus), rc=1)
    status = cli.json("status")
    chunks = len(_rows(cli.export()))
    assert status["index"] == str(cli.index)
    assert status["model"] == "headrace-testing/hash-384"
    assert status["files"] == {"indexed": 5, "chunks": chunks, "dead_letters": 1}
    last = status["last_run"]
    assert last["status"] == "ok"
    assert (last["summary"]["files_done"], last["summary"]["dead_letters"]) == (5, 1)
    assert status["size_bytes"] > 0


def test_status_text_before_and_after_a_run(cli: Cli, corpus: Path) -> None:
    before = cli.run("status")
    assert before.returncode == 0, before.stderr
    assert "last run   never\n" in before.stdout
    summary = cli.json("ingest", str(corpus))
    after = cli.run("status").stdout
    line = next(x for x in after.splitlines() if x.startswith("last run"))
    assert line.split(maxsplit=3)[2] == "ok"
    assert json.loads(line.split(maxsplit=3)[3])["files_done"] == summary["files_done"] > 0


def test_plan_shows_each_kind_of_change_and_writes_nothing(cli: Cli, corpus: Path) -> None:
    cli.json("ingest", str(corpus))
    (corpus / "new.md").write_text("# New\n\nA brand new note.\n", encoding="utf-8")
    with (corpus / "a.md").open("a", encoding="utf-8") as f:
        f.write("\nAn added paragraph changes the size.\n")
    os.rename(corpus / "b.md", corpus / "sub" / "b2.md")
    (corpus / "sub" / "c.txt").unlink()
    st = (corpus / "e.md").stat()
    os.utime(corpus / "e.md", ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))
    export_before = cli.export()
    status_before = cli.json("status")

    plan = cli.json("plan", str(corpus))
    assert plan["added"] == [str(corpus / "new.md")]
    assert plan["changed"] == [str(corpus / "a.md")]
    assert plan["renamed"] == [[str(corpus / "b.md"), str(corpus / "sub" / "b2.md")]]
    assert plan["deleted"] == [str(corpus / "sub" / "c.txt")]
    assert (plan["protected"], plan["root_problems"]) == ([], [])
    assert plan["summary"] == {
        "added": 1,
        "changed": 1,
        "touched": 1,
        "renamed": 1,
        "deleted": 1,
        "protected": 0,
        "skipped": 0,
        "unchanged": 0,
    }
    # Nothing was applied: the same plan again (a recorded touch would now be
    # "unchanged"), the same export, no new run.
    assert cli.json("plan", str(corpus)) == plan
    assert cli.export() == export_before
    assert cli.json("status") == status_before


def test_failed_lists_a_malformed_jsonl_line(cli: Cli, corpus: Path) -> None:
    write_corpus(corpus, {"d.jsonl": BAD_JSONL})
    summary = cli.json("ingest", str(corpus), rc=1)
    assert (summary["dead_letters"], summary["files_failed"], summary["files_done"]) == (1, 0, 5)
    [letter] = cli.json("failed")
    assert letter["path"] == str(corpus / "d.jsonl")
    assert (letter["line"], letter["offset"]) == (BAD_LINE, BAD_OFFSET)
    assert (letter["stage"], letter["error_type"], letter["attempts"]) == ("parse", "ParseError", 1)
    text = cli.run("failed").stdout
    assert f"{corpus / 'd.jsonl'}:{BAD_LINE} @{BAD_OFFSET}" in text
    # The good records of the file are indexed all the same.
    records = [r for r in _rows(cli.export()) if r["source"] == str(corpus / "d.jsonl")]
    assert [r["position"]["lines"] for r in records] == [[1, 1], [3, 3]]


def test_retry(cli: Cli, corpus: Path) -> None:
    write_corpus(corpus, {"d.jsonl": BAD_JSONL})
    cli.json("ingest", str(corpus), rc=1)
    unchanged = cli.json("retry", rc=1)  # still broken: a dead letter again
    assert (unchanged["files_done"], unchanged["dead_letters"]) == (1, 1)
    assert [d["attempts"] for d in cli.json("failed")] == [2]

    (corpus / "d.jsonl").write_text(BAD_JSONL.replace("not json", '{"title": "fixed"}'))
    fixed = cli.json("retry")
    assert (fixed["files_done"], fixed["dead_letters"]) == (1, 0)
    assert cli.run("failed").stdout.strip() == "no failures"
    sources = [r["source"] for r in _rows(cli.export())]
    assert sources.count(str(corpus / "d.jsonl")) == 3
    # retry recorded the file's new stat: a sync finds nothing to do.
    assert cli.json("ingest", str(corpus))["unchanged"] == 5


def test_export_is_canonical_sorted_and_stable(cli: Cli, corpus: Path, tmp_path: Path) -> None:
    cli.json("ingest", str(corpus))
    export = cli.export()
    lines = export.splitlines()
    assert len(lines) >= len(CORPUS)
    rows = _rows(export)
    for line, row in zip(lines, rows, strict=True):
        assert line == json.dumps(row, sort_keys=True, ensure_ascii=False)
    keys = [(r["source"], r["ordinal"]) for r in rows]
    assert keys == sorted(keys)
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["vector_digest"] for r in rows)
    assert cli.export() == export
    other = Cli(tmp_path)
    other.index = tmp_path / "other.sqlite"
    other.json("ingest", str(corpus))
    assert other.export() == export  # a fresh index of the same tree dumps identically


def test_search_json(cli: Cli, corpus: Path) -> None:
    cli.json("ingest", str(corpus))
    for mode in ("keyword", "hybrid"):
        hits = cli.json("search", "zanzibar", "-k", "3", "--mode", mode)
        top = hits[0]
        assert top["path"] == str(corpus / "a.md"), mode
        assert top["line_start"] <= 3 <= top["line_end"]  # the word is on line 3
        assert top["score"] > 0
        assert top["keyword_rank"] == 1
        assert "zanzibar" in top["text"]
        if mode == "keyword":
            assert len(hits) == 1  # the word is in one file only
            assert top["vector_rank"] is None
        else:
            assert top["vector_rank"] is not None


def test_exit_1_when_a_dead_letter_occurred(cli: Cli, corpus: Path) -> None:
    assert cli.run("ingest", str(corpus)).returncode == 0
    write_corpus(corpus, {"d.jsonl": BAD_JSONL})
    assert cli.run("ingest", str(corpus)).returncode == 1
    # The letter stays listed, but a run that met no new failure succeeds.
    assert cli.run("ingest", str(corpus)).returncode == 0


def test_exit_2_names_the_valid_embedders(cli: Cli, corpus: Path) -> None:
    done = cli.run("ingest", str(corpus), "--embedder", "nope")
    assert done.returncode == 2
    assert "nope" in done.stderr
    for name in ("minilm", "hash", "none"):
        assert name in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "mentions"),
    [
        (["ingest", "{corpus}", "--workers", "0"], "workers"),
        (["ingest", "{corpus}", "--overlap", "many"], "overlap"),
        (["search", "x", "--mode", "bogus"], "bogus"),
        (["ingest", "{corpus}", "--no-such-flag"], "no-such-flag"),
    ],
)
def test_exit_2_for_bad_usage(cli: Cli, corpus: Path, args: list[str], mentions: str) -> None:
    done = cli.run(*(a.format(corpus=corpus) for a in args))
    assert done.returncode == 2, done.stderr
    assert mentions in done.stderr
    assert "Traceback" not in done.stderr


def test_exit_2_for_a_bad_config_file(cli: Cli, corpus: Path, tmp_path: Path) -> None:
    config = tmp_path / "headrace.toml"
    config.write_text("wrokers = 2\n", encoding="utf-8")
    done = cli.run("ingest", str(corpus), env={"HEADRACE_CONFIG": str(config)})
    assert done.returncode == 2
    assert "wrokers" in done.stderr


def test_exit_3_when_a_root_vanished(cli: Cli, corpus: Path, tmp_path: Path) -> None:
    cli.json("ingest", str(corpus))
    before = cli.export()
    corpus.rename(tmp_path / "unmounted")
    done = cli.run("ingest", str(corpus))
    assert done.returncode == 3
    assert "--allow-root-deletion" in done.stderr
    assert cli.export() == before
    allowed = cli.json("ingest", str(corpus), "--allow-root-deletion")
    assert allowed["deleted"] == len(CORPUS)
    assert cli.export() == ""


def test_named_index_from_flag_and_env(cli: Cli, corpus: Path) -> None:
    store = cli.xdg / "headrace"
    done = cli.run("ingest", str(corpus), "--index", "notes", index=False)
    assert done.returncode == 0, done.stderr
    assert (store / "notes.sqlite").is_file()
    assert not (store / "default.sqlite").exists()

    work = {"HEADRACE_INDEX": "work"}
    assert cli.run("ingest", str(corpus), index=False, env=work).returncode == 0
    assert (store / "work.sqlite").is_file()
    status = json.loads(cli.run("status", "--json", index=False, env=work).stdout)
    assert status["index"] == str(store / "work.sqlite")
    hits = json.loads(
        cli.run("search", "zanzibar", "--json", "--index", "notes", index=False).stdout
    )
    assert hits[0]["path"] == str(corpus / "a.md")

    # The flag wins over the environment.
    both = cli.run("status", "--json", "--index", "notes", index=False, env=work)
    assert json.loads(both.stdout)["index"] == str(store / "notes.sqlite")
