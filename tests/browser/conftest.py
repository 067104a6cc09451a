"""Fixtures for the browser tests: a warehouse, a Streamlit server on it, and Debian's chromium.

The warehouse is built by the real loader from sheets written in the test (the same data as
tests/analytics/warehouse_data.py); the server is started as users start it, `govdash serve`,
in its own process group, and stopped with SIGTERM at the end. Chromium is Debian's (/usr/bin/chromium, installed by
scripts/install-browser.sh); Playwright's own browser downloads are never used. A missing
chromium fails the tests with a message, it does not skip them.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import psutil
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from govdash.core.config import Config
from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    build,
    expected_tickets,
    generate_tickets,
    history_tickets,
    shipped_config,
    survey_rows,
)
from tests.browser.support import ROOT, pages_in_app
from tests.conftest import write_csv, write_xlsx

CHROMIUM = Path(os.environ.get("GOVDASH_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 1000}
SERVER_START_TIMEOUT_S = 120.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "browser: drives the running dashboard in Debian's chromium (Playwright)"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.browser)


# --- the warehouse ---------------------------------------------------------------------------


def evaluation_rows(config: Config) -> tuple[list[str], list[list[Any]]]:
    """Evaluator scores for 2025 (used only when app.py registers an evaluation page)."""
    indicators = [i for i in config.indicators if i.source == "evaluator"]
    header = [
        "年度",
        "被考评单位",
        "单位类型",
        "评委",
        *[i.name for i in indicators],
        "加分",
        "扣分",
        "一票否决",
    ]
    shares = {"王一": 1.0, "李二": 0.9, "张三": 0.8, "赵四": 0.8, "刘五": 0.6}
    rows: list[list[Any]] = []
    for evaluator, share in shares.items():
        for _, _community, compound, _, _ in REGISTER:
            scores = [round(share * i.points, 2) for i in indicators]
            rows.append([2025, compound, "小区", evaluator, *scores, None, None, None])
        for community in sorted({c for _, c, _, _, _ in REGISTER}):
            scores = [round(0.8 * i.points, 2) for i in indicators]
            rows.append([2025, community, "社区", evaluator, *scores, None, None, None])
    return header, rows


@dataclass(frozen=True)
class Warehouse:
    db: Path
    tickets: pd.DataFrame  # expected_tickets(): every generated ticket with derived fields


@pytest.fixture(scope="session")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    folder = tmp_path_factory.mktemp("browser-warehouse")
    # A quiet 2024 before the main months, so trend charts have a year to show.
    tickets = history_tickets() + generate_tickets()
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}),
        write_csv(folder / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig"),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    if any(spec.name == "evaluation" for spec in pages_in_app()):
        header, rows = evaluation_rows(shipped_config())
        files.append(write_xlsx(folder / "考评.xlsx", {"考评": [header, *rows]}))
    return Warehouse(build(folder, files), expected_tickets(tickets))


# --- the server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as answer:
            return answer.read().strip() == b"ok"
    except OSError:
        return False


def _stop(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group (kaleido's chromium included), then SIGKILL."""
    try:
        family = psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        family = []
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
    # Children that moved to a group of their own (a browser may) are ended one by one.
    _, alive = psutil.wait_procs(family, timeout=5)
    for child in alive:
        with contextlib.suppress(psutil.Error):
            child.kill()


@contextlib.contextmanager
def running_server(
    db: Path | str,
    log_dir: Path,
    *,
    base_path: str = "",
    cwd: Path = ROOT,
    extra_args: tuple[str, ...] = (),
    **env_extra: str,
) -> Iterator[str]:
    """`govdash serve --db <db>` (its accounts and audit log beside it); yields the URL.

    `db` is passed as given (relative to `cwd`, a symlink, a version file…), as a user would."""
    port = _free_port()
    prefix = f"/{base_path.strip('/')}" if base_path.strip("/") else ""
    base = f"http://127.0.0.1:{port}{prefix}"
    log_path = log_dir / "server.log"
    env = {**os.environ, "BROWSER_PATH": str(CHROMIUM)}
    for name in (
        "GOVDASH_DB",
        "GOVDASH_CONFIG",
        "GOVDASH_HASH_KEY",
        "GOVDASH_ACCOUNTS",
        "GOVDASH_AUDIT",
        "GOVDASH_SESSIONS",
    ):
        env.pop(name, None)
    env.update(env_extra)
    command = [
        sys.executable,
        "-m",
        "govdash",
        "serve",
        "--db",
        str(db),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        *(("--base-path", base_path) if base_path else ()),
        # One process unless GOVDASH_TEST_WORKERS=2 runs every browser test against
        # `--workers 2` (nginx in front); not "auto", which depends on the machine.
        "--workers",
        os.environ.get("GOVDASH_TEST_WORKERS", "1"),
        *extra_args,
    ]
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while not _healthy(base):
            if process.poll() is not None:
                pytest.fail(
                    f"govdash serve exited with {process.returncode}:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            if time.monotonic() > deadline:
                pytest.fail(
                    f"govdash serve not healthy after {SERVER_START_TIMEOUT_S:.0f} s:\n"
                    + log_path.read_text(errors="replace")[-4000:]
                )
            time.sleep(0.3)
        yield base
    finally:
        _stop(process)


@pytest.fixture(scope="session")
def server(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of `govdash serve` on the test warehouse (no accounts: single-user)."""
    with running_server(warehouse.db, tmp_path_factory.mktemp("browser-server")) as base:
        yield base


# --- the browser -----------------------------------------------------------------------------


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.is_file() or not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"Debian's chromium is required for the browser tests and was not found at "
            f"{CHROMIUM}. Install it with `bash scripts/install-browser.sh` (apt-get install "
            f"chromium fonts-noto-cjk); never `playwright install`.",
            pytrace=False,
        )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True, locale="zh-CN")
    context.set_default_timeout(60_000)
    return context


@pytest.fixture
def page(browser: Browser, server: str) -> Iterator[Page]:
    """A fresh browser context (a new Streamlit session) per test."""
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()
