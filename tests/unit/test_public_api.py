"""The public surface: what ``headrace`` re-exports is pinned, so a change is deliberate."""

from __future__ import annotations

import importlib

import pytest

import headrace

PUBLIC = ["HeadraceError", "Hit", "Index", "RunStats", "Settings"]
HOMES = {
    "HeadraceError": "headrace.errors",
    "Hit": "headrace.sinks.base",
    "Index": "headrace.api",
    "RunStats": "headrace.runtime.stats",
    "Settings": "headrace.config.settings",
}


def test_all_is_pinned() -> None:
    assert headrace.__all__ == PUBLIC


@pytest.mark.parametrize("name", PUBLIC)
def test_each_name_is_importable_from_the_root(name: str) -> None:
    module = importlib.import_module("headrace")
    obj = getattr(module, name)
    assert obj is getattr(importlib.import_module(HOMES[name]), name)
    namespace: dict[str, object] = {}
    exec(f"from headrace import {name}", namespace)  # the spelling users write
    assert namespace[name] is obj


def test_star_import_gives_exactly_the_public_names() -> None:
    namespace: dict[str, object] = {}
    exec("from headrace import *", namespace)
    assert sorted(k for k in namespace if not k.startswith("__")) == PUBLIC


def test_version_is_exposed() -> None:
    assert isinstance(headrace.__version__, str)
    assert headrace.__version__.count(".") >= 2
