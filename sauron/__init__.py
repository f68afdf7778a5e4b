"""Sauron: per-slice telemetry for 5G/6G core user planes."""

__version__ = "0.1.0"
