"""Presets: named bundles of roots, globs and watch settings (``--preset NAME``).

A preset says where a kind of data lives and how to follow it, so that
``headrace watch --preset claude-code`` needs no other flag. ``PRESETS`` is the
explicit registry (name → ``Preset``); built-ins register themselves here (the
Claude Code preset belongs to its own issue). Explicit flags always win over a
preset's values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from headrace.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Preset:
    """``roots`` are expanded (``~``, ``$VAR``) when used; ``watch`` holds
    ``WatchConfig`` field overrides (e.g. ``{"debounce_s": 1.0}``)."""

    name: str
    description: str
    roots: tuple[str, ...] = ()
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    watch: Mapping[str, Any] = field(default_factory=dict)

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


__all__ = ["PRESETS", "Preset", "get_preset", "register_preset"]
