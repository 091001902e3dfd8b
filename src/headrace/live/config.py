"""``WatchConfig``: the live mode's knobs, resolved once: default < ``HEADRACE_WATCH_*`` < flags.

The index settings (globs, workers, model …) stay in ``headrace.config.Settings``;
these only shape how ``headrace watch`` follows changes and spends resources.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from headrace.errors import ConfigError


class WatchConfig(BaseSettings):
    """How a watcher follows changes. Environment variables: ``HEADRACE_WATCH_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="HEADRACE_WATCH_", extra="forbid")

    debounce_s: float = Field(
        0.1, ge=0, description="quiet time before a changed file is processed (0: realtime)"
    )
    max_wait_s: float = Field(
        5.0, ge=0, description="a file that keeps changing is processed at least this often"
    )
    rescan_interval_s: float = Field(
        60.0, gt=0, description="full rescans (the truth behind notifications), seconds"
    )
    notifications: bool = Field(True, description="use filesystem notifications as hints")
    max_pending: int = Field(
        10_000, ge=1, description="pending changes held; more are deferred to a rescan"
    )
    batch_files: int = Field(256, ge=1, description="most files per unit of work")
    batch_bytes: int = Field(64 << 20, ge=1, description="most bytes per unit of work")
    priority: list[str] = Field(
        default_factory=list, description="globs (path or name) of files processed first"
    )
    backlog_alert_s: float = Field(
        300.0, gt=0, description="alert when the oldest pending change is older, seconds"
    )
    max_cpu_share: float = Field(
        0.9, gt=0, le=1, description="share of the usable CPUs the process may use"
    )
    memory_limit_mb: int | None = Field(
        None, ge=16, description="RSS budget in MiB (default: 80% of the detected limit)"
    )
    max_concurrent_embeddings: int = Field(1, ge=1, description="embedding calls at once")
    metrics_port: int | None = Field(None, ge=0, le=65535, description="Prometheus port")
    metrics_host: str = Field("127.0.0.1", description="address the metrics endpoint binds")
    state_interval_s: float = Field(
        2.0, gt=0, description="how often the state file for `headrace status` is written"
    )
    log_format: Literal["text", "json"] = Field("text", description="log line format")
    heap_tuning: bool = Field(
        True,
        description="after the catch-up, fix glibc's malloc thresholds and trim when idle"
        " (flat RSS over weeks; see docs/design.md)",
    )
    follow_cache_mib: int | None = Field(
        4,
        ge=1,
        description="after the catch-up, the index connection's SQLite page cache, MiB"
        " (None: keep ingest's 16 MiB)",
    )


def load_watch_config(**overrides: Any) -> WatchConfig:
    """Resolve once; ``overrides`` are flags the user gave (None = not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return WatchConfig(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, e['loc'])) or 'watch'}: {e['msg']}" for e in exc.errors()
        )
        raise ConfigError(f"invalid watch settings: {problems}") from exc


__all__ = ["WatchConfig", "load_watch_config"]
