"""Presets: named bundles of roots, globs and watch settings (``--preset NAME``).

A preset says where a kind of data lives and how to follow it, so that
``headrace watch --preset claude-code`` needs no other flag. ``PRESETS`` is the
explicit registry (name → ``Preset``); built-ins register themselves here
(``claude-code``). Explicit flags, the environment and TOML always win over a
preset's values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from headrace.config.settings import Settings
from headrace.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Preset:
    """``roots`` are expanded (``~``, ``$VAR``) when used; ``watch`` holds
    ``WatchConfig`` field overrides (e.g. ``{"debounce_s": 1.0}``); ``settings``
    holds ``Settings`` field defaults (e.g. ``{"parser": "claude-code"}``), applied
    by ``apply_settings`` below any TOML, environment or flag value."""

    name: str
    description: str
    roots: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    watch: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)

    def expanded_roots(self) -> list[str]:
        return [os.path.expandvars(os.path.expanduser(r)) for r in self.roots]


PRESETS: dict[str, Preset] = {}


def register_preset(preset: Preset) -> None:
    """Add (or replace) a preset under its name."""
    PRESETS[preset.name] = preset


def get_preset(name: str) -> Preset:
    """The preset called ``name``; ``ConfigError`` naming the known ones otherwise."""
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(sorted(PRESETS)) or "none"
        raise ConfigError(f"unknown preset {name!r} (known: {known})") from None


def apply_settings(settings: Settings, preset: Preset | None) -> Settings:
    """``settings`` with the preset's values for every field nobody set explicitly.

    Fields given by a flag, the environment or a TOML file win (pydantic-settings
    counts them in ``model_fields_set``); ``include`` / ``exclude`` come from the
    preset's own fields when not given.
    """
    if preset is None:
        return settings
    given = settings.model_fields_set
    values: dict[str, Any] = {"include": list(preset.include), "exclude": list(preset.exclude)}
    values.update(preset.settings)
    unknown = set(values) - set(type(settings).model_fields)
    if unknown:
        raise ConfigError(f"preset {preset.name!r}: unknown settings {sorted(unknown)}")
    update = {k: v for k, v in values.items() if k not in given and v not in ([], None)}
    return settings.model_copy(update=update)


# Claude Code keeps one JSONL transcript per session under ~/.claude/projects/
# <mangled project dir>/ (subagents in <session>/subagents/). The index is its own
# named index, so `headrace search --preset claude-code` finds it without --index.
CLAUDE_CODE = Preset(
    name="claude-code",
    description="Claude Code session transcripts (~/.claude/projects), turn by turn",
    roots=("~/.claude/projects",),
    include=("*.jsonl",),
    settings={"parser": "claude-code", "index": "claude-code"},
)
register_preset(CLAUDE_CODE)


__all__ = ["CLAUDE_CODE", "PRESETS", "Preset", "apply_settings", "get_preset", "register_preset"]
