"""Run the dashboard's server in this process (what `govdash serve` ends in).

The process that a service manager started is the server itself — no child to orphan — and a
stop is a clean exit: uvicorn shuts down gracefully on SIGTERM or SIGINT and then re-raises the
signal with the handler it found installed, which here ends the process with status 0.

Before serving, the modules the pages import are imported and every object then alive is moved
out of the garbage collector's sight (`gc.freeze()`): ~200k objects of Streamlit, pandas, plotly
and DuckDB that live as long as the process and that each full collection would otherwise walk
again (bench/bench_concurrency.py measures it; README "How many users one server holds").
"""

from __future__ import annotations

import ast
import contextlib
import gc
import importlib
import logging
import signal
from pathlib import Path

WEB = Path(__file__).parent
SERVER_SCRIPT = WEB / "server.py"


def page_imports() -> list[str]:
    """The modules app.py and the page scripts import, read from their source (the scripts run
    per session and cannot be imported themselves)."""
    names: set[str] = set()
    for script in [WEB / "app.py", *sorted((WEB / "views").glob("*.py"))]:
        for node in ast.walk(ast.parse(script.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names.add(node.module)
    return sorted(names)


def preload_and_freeze() -> int:
    """Import what the pages need, collect, and freeze what is alive; returns how many objects
    were frozen. A module that fails to import here fails again, visibly, in the page."""
    # Page modules declare st.cache_data functions; before the runtime exists Streamlit warns
    # that it has none (the caches are looked up at call time, in the runtime's storage).
    importlib.import_module("streamlit.runtime.caching.cache_data_api")  # creates its logger
    cache_log = logging.getLogger("streamlit.runtime.caching.cache_data_api")
    level = cache_log.level
    cache_log.setLevel(logging.ERROR)
    try:
        for name in page_imports():
            with contextlib.suppress(Exception):
                importlib.import_module(name)
    finally:
        cache_log.setLevel(level)
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def run_server(options: dict[str, str]) -> int:
    """Serve server.py with Streamlit's `run` and these `--section.option` values; returns the
    exit status once the server has stopped."""
    from streamlit.web import cli as streamlit_cli

    preload_and_freeze()
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _exit_cleanly)
    flags = [item for key, value in options.items() for item in (f"--{key}", value)]
    try:
        streamlit_cli.main(["run", str(SERVER_SCRIPT), *flags], standalone_mode=False)
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 0 if stopped.code is None else 1
    return 0
