"""The one module that owns Streamlit caching: a read-only connection per warehouse version."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import duckdb
import pandas as pd
import streamlit as st

from govdash.warehouse import current_version, default_db_path

T = TypeVar("T")


def warehouse_version() -> Path | None:
    """The version file now published; a new load changes it, which invalidates the caches."""
    return current_version(default_db_path())


@st.cache_resource(max_entries=2)
def _connection(version: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(version, read_only=True)


def cached_query(
    function: Callable[[duckdb.DuckDBPyConnection], pd.DataFrame],
) -> pd.DataFrame | None:
    """Run a query function on the current version, cached per version; None without data."""
    version = warehouse_version()
    if version is None:
        return None
    return _cached(str(version), function.__module__, function.__qualname__)


@st.cache_data(max_entries=256, show_spinner=False)
def _cached(version: str, module: str, name: str) -> pd.DataFrame:
    import importlib

    function = getattr(importlib.import_module(module), name)
    cursor = _connection(version).cursor()
    try:
        result: pd.DataFrame = function(cursor)
        return result
    finally:
        cursor.close()
