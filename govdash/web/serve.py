"""Run the dashboard's server in this process (what `govdash serve` ends in).

The process that a service manager started is the server itself — no child to orphan — and a
stop is a clean exit: uvicorn shuts down gracefully on SIGTERM or SIGINT and then re-raises the
signal with the handler it found installed, which here ends the process with status 0.
"""

from __future__ import annotations

import signal
from pathlib import Path

SERVER_SCRIPT = Path(__file__).with_name("server.py")


def _exit_cleanly(signum: int, frame: object) -> None:
    raise SystemExit(0)


def run_server(options: dict[str, str]) -> int:
    """Serve server.py with Streamlit's `run` and these `--section.option` values; returns the
    exit status once the server has stopped."""
    from streamlit.web import cli as streamlit_cli

    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _exit_cleanly)
    flags = [item for key, value in options.items() for item in (f"--{key}", value)]
    try:
        streamlit_cli.main(["run", str(SERVER_SCRIPT), *flags], standalone_mode=False)
    except SystemExit as stopped:
        return stopped.code if isinstance(stopped.code, int) else 0 if stopped.code is None else 1
    return 0
