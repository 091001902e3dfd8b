"""``headrace watch``: catch up, then keep the index current (see ``headrace.live``).

Also formats a running watcher's state for ``headrace status``.
"""

from __future__ import annotations

import os
import platform
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from headrace.api import Index
from headrace.config.settings import load_settings
from headrace.errors import ConfigError
from headrace.live.config import WatchConfig, load_watch_config
from headrace.live.logs import configure_logging
from headrace.live.service import Watcher
from headrace.live.state import read_state, state_path
from headrace.parsers import register_pattern
from headrace.presets import Preset, apply_settings, get_preset


def _opt(flag: str, env: str, text: str) -> Any:
    return typer.Option(flag, envvar=f"HEADRACE_WATCH_{env}", help=text, show_default=False)


def watch_command(
    roots: Annotated[
        list[Path] | None, typer.Argument(help="folders to follow (or from --preset)")
    ] = None,
    index: Annotated[
        str | None, typer.Option("--index", envvar="HEADRACE_INDEX", help="index file or name")
    ] = None,
    embedder: Annotated[
        str | None, typer.Option("--embedder", envvar="HEADRACE_EMBEDDER", help="minilm | none")
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="named preset (roots, globs, settings)")
    ] = None,
    include: Annotated[list[str] | None, typer.Option(help="glob to include (repeat)")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="glob to exclude (repeat)")] = None,
    workers: Annotated[
        int | None, typer.Option(envvar="HEADRACE_WORKERS", help="reader/parser threads")
    ] = None,
    allow_root_deletion: Annotated[
        bool | None,
        typer.Option("--allow-root-deletion", envvar="HEADRACE_ALLOW_ROOT_DELETION"),
    ] = None,
    debounce: Annotated[
        float | None, _opt("--debounce", "DEBOUNCE_S", "quiet seconds before a file is taken")
    ] = None,
    realtime: Annotated[bool, typer.Option("--realtime", help="debounce 0")] = False,
    max_wait: Annotated[
        float | None, _opt("--max-wait", "MAX_WAIT_S", "a busy file is taken this often, s")
    ] = None,
    rescan_interval: Annotated[
        float | None, _opt("--rescan-interval", "RESCAN_INTERVAL_S", "seconds between rescans")
    ] = None,
    notifications: Annotated[
        bool | None,
        typer.Option(
            "--notifications/--no-notifications",
            envvar="HEADRACE_WATCH_NOTIFICATIONS",
            help="filesystem notifications as hints (rescans always run)",
            show_default=False,
        ),
    ] = None,
    max_pending: Annotated[
        int | None, _opt("--max-pending", "MAX_PENDING", "bound of the pending queue")
    ] = None,
    batch_files: Annotated[
        int | None, _opt("--batch-files", "BATCH_FILES", "most files per unit of work")
    ] = None,
    priority: Annotated[
        list[str] | None, typer.Option(help="glob of files processed first (repeat)")
    ] = None,
    backlog_alert: Annotated[
        float | None, _opt("--backlog-alert", "BACKLOG_ALERT_S", "alert age of a change, s")
    ] = None,
    max_cpu_share: Annotated[
        float | None, _opt("--max-cpu-share", "MAX_CPU_SHARE", "share of usable CPUs (0-1]")
    ] = None,
    memory_limit_mb: Annotated[
        int | None, _opt("--memory-limit-mb", "MEMORY_LIMIT_MB", "RSS budget in MiB")
    ] = None,
    max_concurrent_embeddings: Annotated[
        int | None,
        _opt("--max-concurrent-embeddings", "MAX_CONCURRENT_EMBEDDINGS", "embedding calls"),
    ] = None,
    metrics_port: Annotated[
        int | None, _opt("--metrics-port", "METRICS_PORT", "serve Prometheus /metrics")
    ] = None,
    metrics_host: Annotated[
        str | None, _opt("--metrics-host", "METRICS_HOST", "metrics bind address")
    ] = None,
    log_format: Annotated[str | None, _opt("--log-format", "LOG_FORMAT", "text | json")] = None,
    scraped_glob: Annotated[
        list[str] | None,
        typer.Option(help="extra file-name glob parsed as scraped page items (repeat)"),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="warnings only")] = False,
) -> None:
    """Catch up, then follow changes: notifications as hints, rescans as the truth."""
    chosen = get_preset(preset) if preset else None
    paths = [str(r) for r in roots or []] or (chosen.expanded_roots() if chosen else [])
    if not paths:
        raise ConfigError("watch needs ROOTS or a --preset that names them")
    given = {
        "debounce_s": 0.0 if realtime else debounce,
        "max_wait_s": max_wait,
        "rescan_interval_s": rescan_interval,
        "notifications": notifications,
        "max_pending": max_pending,
        "batch_files": batch_files,
        "priority": priority or None,
        "backlog_alert_s": backlog_alert,
        "max_cpu_share": max_cpu_share,
        "memory_limit_mb": memory_limit_mb,
        "max_concurrent_embeddings": max_concurrent_embeddings,
        "metrics_port": metrics_port,
        "metrics_host": metrics_host,
        "log_format": log_format,
    }
    config = load_watch_config(**{**_preset_defaults(chosen), **_given(given)})
    if config.heap_tuning:
        _python_objects_on_malloc()  # returns only where it does not restart
    configure_logging(config.log_format, quiet=quiet)
    for glob in scraped_glob or ():
        register_pattern(glob, "scraped")
    settings = load_settings(
        index=index,
        include=include or (list(chosen.include) if chosen and chosen.include else None),
        exclude=exclude or (list(chosen.exclude) if chosen and chosen.exclude else None),
        workers=workers,
        allow_root_deletion=allow_root_deletion,
    )
    settings = apply_settings(settings, chosen)  # the preset's parser, index … (flags win)
    run_watcher(Index(settings=settings, embedder=embedder), paths, config)


def _python_objects_on_malloc() -> None:
    """Restart this command once, in place (same pid), with ``PYTHONMALLOC=malloc``.

    CPython's own allocator keeps its 1 MiB arenas while any object in them lives,
    and a watcher's trickle of batches leaves long-lived objects scattered over
    them: a slow RSS creep (+0.35 MB/min at 10 ops/s) that no trim can return.
    Through glibc malloc, with the heap bounds the watcher sets once caught up,
    the same soak stayed flat (docs/design.md). Only where the variable is unset,
    on glibc, and when this process is the ``headrace`` command itself (not a test
    runner or an application calling the command in-process).
    """
    if os.environ.get("PYTHONMALLOC") or platform.libc_ver()[0] != "glibc":
        return
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    is_cli = (spec is not None and spec.name == "headrace.__main__") or (
        spec is None and Path(sys.argv[0]).name == "headrace"
    )
    if not is_cli:
        return
    os.environ["PYTHONMALLOC"] = "malloc"
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])


def _given(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _preset_defaults(preset: Preset | None) -> dict[str, Any]:
    """A preset's watch settings, minus those the environment sets (env beats preset)."""
    if preset is None:
        return {}
    unknown = set(preset.watch) - set(WatchConfig.model_fields)
    if unknown:
        raise ConfigError(f"preset {preset.name!r}: unknown watch settings {sorted(unknown)}")
    return {
        k: v for k, v in preset.watch.items() if f"HEADRACE_WATCH_{k.upper()}" not in os.environ
    }


def run_watcher(index: Index, roots: list[str], config: WatchConfig) -> None:
    """Run a watcher in this thread until SIGTERM/SIGINT; exit 0 after a clean stop."""
    watcher = Watcher(index, roots, config)
    handler = lambda *_: watcher.request_stop()  # noqa: E731
    old = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        watcher.run()
    finally:
        for sig, prev in old.items():
            signal.signal(sig, prev)
        index.close()


def watcher_status(index_path: Path) -> tuple[dict[str, Any] | None, str]:
    """The watcher's last state for ``headrace status``, and its text lines."""
    state = read_state(state_path(index_path))
    if state is None:
        return None, "watcher    none"
    if not state["running"]:
        return state, f"watcher    not running (last state {_ago(state.get('updated'))})"
    g = state.get("governor", {})
    totals = state.get("totals", {})
    lines = [
        f"watcher    running, pid {state['pid']}, {state['phase']},"
        f" updated {_ago(state.get('updated'))}, notifications {state.get('notifications')}",
        f"queue      {state['queue_depth']} pending, backlog {state['backlog_age_s']:.1f}s"
        f"{' ALERT' if state.get('backlog_alert') else ''},"
        f" {state['deferred_total']} deferred, {state.get('rescans', 0)} rescans",
        f"processed  {int(totals.get('files_done', 0))} indexed,"
        f" {int(totals.get('deleted', 0))} deleted, {int(totals.get('files_failed', 0))} failed,"
        f" {int(totals.get('chunks_written', 0))} chunks,"
        f" {int(totals.get('embeddings_computed', 0))} embeddings",
        f"latency    p50 {state.get('latency_p50_s')}s, p99 {state.get('latency_p99_s')}s",
        f"resources  rss {g.get('rss_bytes', 0) / 2**20:.0f} MiB of"
        f" {g.get('memory_limit_bytes', 0) / 2**20:.0f}, cpu {100 * g.get('cpu_share', 0):.0f}%"
        f" of {g.get('usable_cpus')} CPUs, batch {g.get('batch_files')}"
        f"{', paused: ' + g['paused'] if g.get('paused') else ''}",
    ]
    if state.get("metrics_port") is not None:
        lines.append(f"metrics    http://127.0.0.1:{state['metrics_port']}/metrics")
    return state, "\n".join(lines)


def _ago(when: Any) -> str:
    if not isinstance(when, int | float):
        return "never"
    return f"{max(0.0, time.time() - when):.0f}s ago"


__all__ = ["run_watcher", "watch_command", "watcher_status"]
