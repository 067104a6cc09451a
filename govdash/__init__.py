"""Shared foundation of the governance dashboard: configuration, warehouse location, CLI."""

__version__ = "0.1.0"
