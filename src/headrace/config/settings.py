"""Typed settings, resolved once: default < TOML file < environment < flags.

Every field can be set in a TOML file (``--config``, ``$HEADRACE_CONFIG``, or
``./headrace.toml``), through a ``HEADRACE_<FIELD>`` environment variable, or by a
command-line flag. The CLI passes only the flags a user actually gave, so the
order above holds field by field.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from headrace.errors import ConfigError

DEFAULT_INDEX_NAME = "default"


def data_dir() -> Path:
    """Where named indexes live: ``$XDG_DATA_HOME/headrace`` or ``~/.local/share/headrace``."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "headrace"


def config_file() -> Path | None:
    explicit = os.environ.get("HEADRACE_CONFIG")
    if explicit:
        # pydantic-settings silently skips a missing TOML file: a mistyped --config
        # would then run with defaults.
        if not Path(explicit).is_file():
            raise ConfigError(f"config file {explicit} does not exist or is not a file")
        return Path(explicit)
    local = Path("headrace.toml")
    return local if local.is_file() else None


class Settings(BaseSettings):
    """All of headrace's knobs. Environment variables are ``HEADRACE_`` + the name."""

    model_config = SettingsConfigDict(env_prefix="HEADRACE_", extra="forbid")

    index: str = Field(
        DEFAULT_INDEX_NAME,
        description="index file path, or a name stored under the data directory",
    )
    embedder: str = Field("minilm", description="embedding model: minilm, minilm-torch, none …")
    include: list[str] = Field(default_factory=list, description="gitignore-style globs to include")
    exclude: list[str] = Field(default_factory=list, description="gitignore-style globs to skip")
    overlap_tokens: int = Field(0, ge=0, le=128, description="tokens repeated between chunks")
    max_line_bytes: int = Field(4 << 20, gt=0, description="longer lines become dead letters")
    max_section_chars: int = Field(8000, gt=100, description="parsers split longer sections")
    batch_tokens: int = Field(512, ge=256, le=65536, description="padded tokens per embedding call")
    queue_bytes: int = Field(8 << 20, gt=0, description="byte budget of each stage queue")
    segment_bytes: int = Field(
        8 << 20, ge=4096, description="a large file commits a resumable cursor this often"
    )
    workers: int = Field(1, ge=1, le=16, description="threads reading and parsing files")
    embed_cache_max_mb: int = Field(
        256,
        ge=0,
        description="MB of vectors the embedding cache may keep; beyond it, vectors no"
        " chunk uses go first, oldest first, after each ingest and when a watcher is idle"
        " (vectors in use are never evicted; 0: keep only those; `headrace gc` prunes now)",
    )
    allow_root_deletion: bool = Field(
        False, description="allow deleting everything of a missing or empty root"
    )
    parser: str | None = Field(
        None, description="one parser for every file (e.g. claude-code), not by extension"
    )
    concepts: dict[str, str] | None = Field(
        None, description="claude-code concept name -> regex (default: the seed's list)"
    )
    store: str = Field("sqlite", description="vector store: sqlite (embedded) or qdrant")
    qdrant_url: str | None = Field(None, description="Qdrant server URL (store = qdrant)")
    qdrant_api_key: str | None = Field(None, description="Qdrant API key for the server")
    qdrant_path: str | None = Field(None, description="Qdrant embedded local mode folder")
    qdrant_collection: str = Field("headrace", description="Qdrant collection name")
    qdrant_timeout_s: float = Field(10.0, gt=0, description="timeout of each Qdrant call")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        path = config_file()
        if path is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
        return tuple(sources)

    def index_path(self) -> Path:
        """The index file: a path if ``index`` looks like one, else a named index."""
        value = self.index
        if os.sep in value or value.endswith((".db", ".sqlite")):
            return Path(value).expanduser()
        return data_dir() / f"{value}.sqlite"


def load_settings(**overrides: Any) -> Settings:
    """Resolve settings once; ``overrides`` are flags the user gave (None = not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)
    except ValidationError as exc:  # bad values from any layer, unknown TOML keys
        raise ConfigError(_describe(exc)) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {config_file()}: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    problems = [
        f"{'.'.join(map(str, err['loc'])) or 'settings'}: {err['msg']}" for err in exc.errors()
    ]
    return "invalid settings: " + "; ".join(problems)
