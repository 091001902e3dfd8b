"""The ``claude-code`` preset: roots, parser, own index; flags, env and TOML win over it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import headrace.cli.watch as watch_cli
from headrace.api import Index
from headrace.cli.main import app
from headrace.config.settings import load_settings
from headrace.errors import ConfigError
from headrace.presets import CLAUDE_CODE, Preset, apply_settings, get_preset

FIXTURES = Path(__file__).parents[1] / "fixtures" / "claude_code"


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    projects = tmp_path / "home" / ".claude" / "projects"
    shutil.copytree(
        FIXTURES / "-home-marco-projects-spotter", projects / "-home-marco-projects-spotter"
    )
    return projects


def test_the_preset_names_the_claude_projects_folder(home: Path) -> None:
    assert get_preset("claude-code") is CLAUDE_CODE
    assert CLAUDE_CODE.expanded_roots() == [str(home)]


def test_preset_settings_apply_below_flags_and_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    plain = apply_settings(load_settings(), CLAUDE_CODE)
    assert (plain.parser, plain.index, plain.include) == ("claude-code", "claude-code", ["*.jsonl"])
    assert apply_settings(load_settings(index="mine"), CLAUDE_CODE).index == "mine"
    monkeypatch.setenv("HEADRACE_INDEX", "from-env")
    assert apply_settings(load_settings(), CLAUDE_CODE).index == "from-env"
    assert apply_settings(load_settings(), None).parser is None
    with pytest.raises(ConfigError, match="unknown settings"):
        apply_settings(load_settings(), Preset("x", "x", settings={"nope": 1}))


def test_ingest_and_search_with_the_preset(home: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, ["-q", "ingest", "--preset", "claude-code", "--embedder", "hash"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app,
        ["search", "--preset", "claude-code", "phoenix", "--project", "spotter", "--json"],
    )
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert hits
    assert {h["metadata"]["project"] for h in hits} == {"spotter"}
    assert all(h["path"].startswith(str(home)) for h in hits)
    result = runner.invoke(app, ["search", "--preset", "claude-code", "x", "--since", "soon"])
    assert isinstance(result.exception, ConfigError)  # main() maps it to exit 2


def test_watch_with_the_preset_uses_its_parser(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}

    def fake_run(index: Index, roots: list[str], config: Any) -> None:
        seen.update(settings=index.settings, roots=roots)
        index.close()

    monkeypatch.setattr(watch_cli, "run_watcher", fake_run)
    result = CliRunner().invoke(app, ["watch", "--preset", "claude-code", "--embedder", "hash"])
    assert result.exit_code == 0, result.output
    assert seen["roots"] == [str(home)]
    assert seen["settings"].parser == "claude-code"
    assert seen["settings"].index == "claude-code"
