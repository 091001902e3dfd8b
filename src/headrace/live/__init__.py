"""Live mode: keep an index current while files arrive (``headrace watch``).

``Watcher`` runs the loop; ``Scheduler`` orders and bounds pending changes;
``Governor`` keeps CPU and memory within what the process really has;
``LiveMetrics`` exports Prometheus metrics; the state file feeds ``headrace status``.
"""

from __future__ import annotations

from headrace.live.config import WatchConfig, load_watch_config
from headrace.live.governor import Governor, Resources, detect_resources
from headrace.live.metrics import LiveMetrics
from headrace.live.scheduler import Change, Scheduler
from headrace.live.service import Watcher
from headrace.live.state import read_state, state_path

__all__ = [
    "Change",
    "Governor",
    "LiveMetrics",
    "Resources",
    "Scheduler",
    "WatchConfig",
    "Watcher",
    "detect_resources",
    "load_watch_config",
    "read_state",
    "state_path",
]
