"""``headrace watch`` option handling: presets, precedence, errors (the loop is stubbed)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

import headrace.cli.watch as watch_cli
from headrace.cli.main import app
from headrace.errors import ConfigError
from headrace.presets import PRESETS, Preset, get_preset, register_preset


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {}

    def fake_run(index: Any, roots: list[str], config: Any) -> None:
        seen.update(index=index, roots=roots, config=config)
        index.close()

    monkeypatch.setattr(watch_cli, "run_watcher", fake_run)
    return seen


@pytest.fixture
def preset(tmp_path: Path) -> Iterator[Preset]:
    item = Preset(
        "test-logs",
        "test preset",
        roots=(str(tmp_path / "logs"),),
        include=("*.jsonl",),
        watch={"debounce_s": 1.5, "max_wait_s": 9.0},
    )
    register_preset(item)
    yield item
    PRESETS.pop(item.name, None)


def test_a_preset_supplies_roots_globs_and_settings_and_flags_win(
    tmp_path: Path, captured: dict[str, Any], preset: Preset, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADRACE_WATCH_MAX_WAIT_S", "7")  # env beats the preset
    args = ["watch", "--preset", "test-logs", "--index", str(tmp_path / "i.sqlite")]
    result = CliRunner().invoke(app, [*args, "--embedder", "hash", "--batch-files", "8"])
    assert result.exit_code == 0, result.output
    config = captured["config"]
    assert captured["roots"] == [str(tmp_path / "logs")]
    assert captured["index"].settings.include == ["*.jsonl"]
    assert config.debounce_s == 1.5
    assert config.max_wait_s == 7.0
    assert config.batch_files == 8


def test_realtime_sets_the_debounce_to_zero(tmp_path: Path, captured: dict[str, Any]) -> None:
    args = ["watch", str(tmp_path), "--index", str(tmp_path / "i.sqlite"), "--embedder", "hash"]
    result = CliRunner().invoke(app, [*args, "--realtime", "--debounce", "3"])
    assert result.exit_code == 0, result.output
    assert captured["config"].debounce_s == 0.0


def test_no_roots_and_no_preset_is_a_usage_error(captured: dict[str, Any]) -> None:
    result = CliRunner().invoke(app, ["watch"])
    assert isinstance(result.exception, ConfigError)
    assert not captured


def test_an_unknown_preset_names_the_known_ones(preset: Preset) -> None:
    with pytest.raises(ConfigError, match="test-logs"):
        get_preset("nope")
