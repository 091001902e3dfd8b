"""Typed settings."""

from headrace.config.settings import Settings, data_dir, load_settings

__all__ = ["Settings", "data_dir", "load_settings"]
