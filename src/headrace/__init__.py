"""headrace: keep a searchable index in sync with a changing body of files."""

from headrace.api import Index
from headrace.config.settings import Settings
from headrace.errors import HeadraceError
from headrace.runtime.stats import RunStats
from headrace.sinks.base import Hit

__all__ = ["HeadraceError", "Hit", "Index", "RunStats", "Settings"]
__version__ = "0.1.0"
