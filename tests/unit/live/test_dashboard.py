"""The shipped Grafana dashboard queries only metrics the watcher exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from headrace.live.metrics import LiveMetrics

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "headrace.json"


_SERIES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}


def _exported() -> set[str]:
    """Every series name the watcher's registry can export (labelled series appear only
    once used, so their names come from the family and its type)."""
    names: set[str] = set()
    for family in LiveMetrics().registry.collect():
        names.add(family.name)
        names.update(sample.name for sample in family.samples)
        names.update(family.name + suffix for suffix in _SERIES.get(family.type, ()))
    return names


def test_every_panel_queries_exported_metrics() -> None:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    queried = {
        name
        for panel in panels
        for target in panel["targets"]
        for name in re.findall(r"\b(?:headrace|process)_[a-z_]+", target["expr"])
    }
    assert "headrace_embedding_cache_bytes" in queried
    assert queried - _exported() == set()


def test_panel_ids_are_unique() -> None:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    ids = [panel["id"] for panel in panels]
    assert len(ids) == len(set(ids))
