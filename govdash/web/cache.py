"""The one module that owns Streamlit caching: a read-only connection and results per version.

Results are cached per warehouse version (the resolved file a load publishes), so a new load
invalidates them without a restart, and per config fingerprint.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import streamlit as st

from govdash.analytics.queries.filters import Filters
from govdash.core.access import REQUIRED_PERMISSION, Principal, Scope, can
from govdash.core.config import CONFIG_ENV, Config, load_config
from govdash.core.warehouse import current_version, default_db_path


def warehouse_version() -> Path | None:
    """The version file now published; a new load changes it, which invalidates the caches."""
    return current_version(default_db_path())


@st.cache_resource(max_entries=2, show_spinner=False)
def _connection(version: str) -> duckdb.DuckDBPyConnection:
    return duckdb.connect(version, read_only=True)


def _config_stamp() -> tuple[str, float]:
    path = os.environ.get(CONFIG_ENV, "")
    return path, (Path(path).stat().st_mtime if path and Path(path).is_file() else 0.0)


@st.cache_resource(max_entries=4, show_spinner=False)
def _config(path: str, modified: float) -> Config:
    return load_config(path or None)


def active_config() -> Config:
    """The config in force (re-read when $GOVDASH_CONFIG's file changes)."""
    return _config(*_config_stamp())


def _check_access(
    function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    """Server-side: the session's principal may run `function`, and only within its scope.

    Pages set st.session_state["principal"] (govdash/web/auth.py) before any query. A function
    marked with govdash.core.access.requires needs that permission; every Filters or Scope passed
    must carry exactly the principal's scope, so no widget or URL can widen it.
    """
    principal = st.session_state.get("principal")
    if not isinstance(principal, Principal):
        raise PermissionError("no signed-in principal in this session")
    needed = getattr(function, REQUIRED_PERMISSION, None)
    if needed is not None and not can(principal, needed):
        raise PermissionError(f"{principal.role} may not run {function.__qualname__}")
    for value in (*args, *kwargs.values()):
        scope = value.scope if isinstance(value, Filters) else value
        if isinstance(scope, Scope) and scope != principal.scope:
            raise PermissionError(
                f"query scope {scope.to_text()} is not the session's {principal.scope.to_text()}"
            )


def query(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `function(cursor, *args, config=?, **kwargs)` on the current version, cached.

    Functions whose signature takes `config` get the active config. None without a warehouse.
    Refused (PermissionError) when the session's principal may not run it (`_check_access`).
    """
    _check_access(function, args, kwargs)
    version = warehouse_version()
    if version is None:
        return None
    config = active_config()
    return _cached(
        str(version), config.fingerprint, function.__module__, function.__qualname__, args, kwargs
    )


@st.cache_data(max_entries=512, show_spinner=False)
def _cached(
    version: str,
    fingerprint: str,
    module: str,
    name: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Any:
    function = getattr(importlib.import_module(module), name)
    cursor = _connection(version).cursor()
    try:
        if "config" in function.__code__.co_varnames[: function.__code__.co_argcount]:
            return function(cursor, *args, config=active_config(), **kwargs)
        return function(cursor, *args, **kwargs)
    finally:
        cursor.close()
