"""Settings: default < TOML file < HEADRACE_* environment < explicit overrides.

Each layer is checked on its own field and on a field a lower layer also sets, so a
reversed order fails. Bad values and unknown keys are ``ConfigError`` (exit 2 in
the CLI), never a raw validation traceback.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from headrace.config.settings import Settings, data_dir, load_settings
from headrace.errors import ConfigError


def _toml(tmp_path: Path, text: str, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "headrace.toml"
    path.write_text(text, encoding="utf-8")
    monkeypatch.setenv("HEADRACE_CONFIG", str(path))
    return path


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no ./headrace.toml
    s = load_settings()
    assert (s.index, s.embedder, s.overlap_tokens, s.workers) == ("default", "minilm", 0, 1)
    assert (s.include, s.exclude, s.allow_root_deletion) == ([], [], False)


def test_precedence_default_toml_env_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _toml(tmp_path, 'overlap_tokens = 5\nworkers = 3\nexclude = ["drafts/"]\n', monkeypatch)
    s = load_settings()
    assert (s.overlap_tokens, s.workers, s.exclude, s.batch_tokens) == (5, 3, ["drafts/"], 512)

    monkeypatch.setenv("HEADRACE_OVERLAP_TOKENS", "7")
    s = load_settings()
    assert (s.overlap_tokens, s.workers) == (7, 3)  # env beats TOML; TOML still beats default

    s = load_settings(overlap_tokens=9, workers=None)
    assert (s.overlap_tokens, s.workers) == (9, 3)  # None means "flag not given"


def test_local_headrace_toml_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "headrace.toml").write_text("workers = 4\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert load_settings().workers == 4


def test_unknown_toml_key_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(tmp_path, "overlap_tokens = 5\nwrokers = 2\n", monkeypatch)
    with pytest.raises(ConfigError, match="wrokers"):
        load_settings()


def test_missing_explicit_config_file_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HEADRACE_CONFIG", str(tmp_path / "nope.toml"))
    with pytest.raises(ConfigError, match=r"nope\.toml"):
        load_settings()


@pytest.mark.parametrize(
    ("source", "field"),
    [("override", "workers"), ("env", "HEADRACE_WORKERS"), ("toml", "workers")],
)
def test_out_of_range_values_are_config_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, source: str, field: str
) -> None:
    monkeypatch.chdir(tmp_path)
    if source == "override":
        call = lambda: load_settings(workers=0)  # noqa: E731
    elif source == "env":
        monkeypatch.setenv(field, "0")
        call = load_settings
    else:
        _toml(tmp_path, "workers = 0\n", monkeypatch)
        call = load_settings
    with pytest.raises(ConfigError, match="workers"):
        call()


def test_index_path_for_a_name_and_for_a_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert data_dir() == tmp_path / "xdg" / "headrace"
    assert Settings(index="notes").index_path() == tmp_path / "xdg" / "headrace" / "notes.sqlite"
    assert Settings(index=str(tmp_path / "x" / "i")).index_path() == tmp_path / "x" / "i"
    assert Settings(index="local.sqlite").index_path() == Path("local.sqlite")
    assert Settings(index="local.db").index_path() == Path("local.db")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert Settings(index="~/i.sqlite").index_path() == tmp_path / "home" / "i.sqlite"


def test_data_dir_defaults_to_local_share(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert Settings().index_path() == tmp_path / ".local" / "share" / "headrace" / "default.sqlite"


def test_malformed_toml_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _toml(tmp_path, "workers = \n", monkeypatch)
    with pytest.raises(ConfigError, match=r"headrace\.toml"):
        load_settings()
