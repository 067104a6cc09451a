"""`govdash serve --workers 2` as users start it (issue 19, item 4): two server processes behind
Debian's nginx on one address at /dashboard, with sign-in on.

Chromium sees both workers used (each browser kept on one of them by the route cookie nginx
sets), a download and the websocket reach the worker that served the page, a sign-in made on
one worker is honoured by the other, a worker killed with SIGKILL is started again and serves
pages, and SIGTERM to the command stops nginx and every worker with exit status 0.

Which worker answered is read from the X-Govdash-Worker header the generated nginx config
adds, and from nginx's access log in the data folder's run directory.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import openpyxl
import psutil
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.browser.conftest import CHROMIUM, Warehouse, new_context
from tests.browser.support import ROOT, exceptions, h1, wait_after_navigation

ADMIN = "街道管理员"
PASSWORD = "Jie-dao 2025 admin"
SIGNED_IN = "已登录"
ROUTE = "govdash_route"
START_TIMEOUT_S = 180.0


@dataclass
class Site:
    base: str  # http://127.0.0.1:<port>/dashboard
    port: int
    process: subprocess.Popen[bytes]
    run_dir: Path
    log: Path


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _get(url: str, route: str | None = None, **headers: str) -> tuple[int, dict[str, str]]:
    """(status, headers with lower-case names) of a GET, or (0, {}) when nothing answers."""
    if route is not None:
        headers["Cookie"] = f"{ROUTE}={route}"
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            answer.read()
            return answer.status, {k.lower(): v for k, v in answer.headers.items()}
    except OSError:
        return 0, {}


def _govdash(*args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govdash", *args],
        input=stdin, cwd=ROOT, capture_output=True, text=True, timeout=180,
        env={**os.environ, **env},
    )  # fmt: skip


def _clean_env() -> dict[str, str]:
    env = {**os.environ, "BROWSER_PATH": str(CHROMIUM)}
    for name in ("GOVDASH_DB", "GOVDASH_CONFIG", "GOVDASH_HASH_KEY", "GOVDASH_ACCOUNTS",
                 "GOVDASH_AUDIT", "GOVDASH_SESSIONS", "GOVDASH_NGINX"):  # fmt: skip
        env.pop(name, None)
    return env


def _family(process: subprocess.Popen[bytes]) -> list[psutil.Process]:
    try:
        return psutil.Process(process.pid).children(recursive=True)
    except psutil.Error:
        return []


def _worker_pid(site: Site, number: int) -> int | None:
    """The pid of worker `number` (its GOVDASH_WORKER), or None while it is not running."""
    for child in _family(site.process):
        with contextlib.suppress(psutil.Error):
            mine = child.environ().get("GOVDASH_WORKER") == str(number)
            if mine and child.is_running() and child.status() != psutil.STATUS_ZOMBIE:
                return child.pid
    return None


@pytest.fixture(scope="module")
def site(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    with _serving(warehouse, tmp_path_factory.mktemp("workers")) as made:
        yield made


@contextlib.contextmanager
def _serving(warehouse: Warehouse, parent: Path, *extra_args: str) -> Iterator[Site]:
    """`govdash serve --workers 2 --base-path /dashboard` on a copy of the warehouse folder
    with an admin account, until every worker answers through nginx."""
    folder = parent / "data"
    shutil.copytree(
        warehouse.db.parent, folder, symlinks=True,
        ignore=shutil.ignore_patterns("audit.sqlite3*", "accounts.json*", "sessions.sqlite3*", "run"),
    )  # fmt: skip
    db = str(folder / warehouse.db.name)
    added = _govdash("users", "add", ADMIN, "--role", "admin", "--password-stdin", "--db", db,
                     stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    port = _free_port()
    base = f"http://127.0.0.1:{port}/dashboard"
    log = parent / "serve.log"
    command = [sys.executable, "-m", "govdash", "serve", "--db", db, "--port", str(port),
               "--host", "127.0.0.1", "--base-path", "/dashboard", "--workers", "2",
               *extra_args]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=_clean_env(), stdout=output, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    made = Site(base, port, process, folder / "run" / str(port), log)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        # Healthy through nginx on both workers, each reached with a route that leads to it.
        while not all(_route_for(made, number, fail=False) for number in (1, 2)):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"govdash serve --workers 2 did not start:\n{_tail(log)}")
            time.sleep(0.5)
        yield made
    finally:
        family = _family(process)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
        for child in psutil.wait_procs(family, timeout=10)[1]:
            with contextlib.suppress(psutil.Error):
                child.kill()


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-4000:]


def _route_for(site: Site, number: int, *, fail: bool = True) -> str | None:
    """The route cookie value of a browser on worker `number`, once nginx answers from it
    (the cookie names the worker: "2.<anything>" always leads to worker 2)."""
    route = f"{number}.test-route"
    status, headers = _get(f"{site.base}/_stcore/health", route)
    if status == 200 and headers.get("x-govdash-worker") == str(number):
        return route
    if fail:
        pytest.fail(f"route {route} does not lead to worker {number}:\n{_tail(site.log)}")
    return None


def _context_on(
    browser: Browser, site: Site, number: int, route: str | None = None
) -> BrowserContext:
    """A browser whose route cookie leads to worker `number`."""
    context = new_context(browser)
    route = route or _route_for(site, number)
    assert route is not None
    context.add_cookies([{"name": ROUTE, "value": route, "url": f"{site.base}/"}])
    return context


def _open(page: Page, url: str) -> str:
    """Open `url`, wait for the app; returns the worker that served the document."""
    response = page.goto(url, wait_until="domcontentloaded")
    assert response is not None and response.ok
    wait_after_navigation(page)
    return response.headers.get("x-govdash-worker", "")


def _sign_in(page: Page) -> None:
    page.get_by_label("用户名").fill(ADMIN)
    page.get_by_label("密码").fill(PASSWORD)
    with page.expect_navigation(timeout=120_000):  # to the cookie route and back
        page.get_by_role("button", name="登录").click()
    wait_after_navigation(page)
    expect(page.locator('[data-testid="stSidebar"]').get_by_text(SIGNED_IN)).to_be_visible()


def _access_log(site: Site, route: str) -> list[tuple[str, str]]:
    """(worker, request line) of every request nginx logged for this route cookie."""
    found = []
    text = (site.run_dir / "nginx-access.log").read_text(encoding="utf-8", errors="replace")
    for line in text.splitlines():
        match = re.search(r"worker=(\S*) route=(\S+) \"([^\"]*)\"", line)
        if match and match.group(2) == route:
            found.append((match.group(1), match.group(3)))
    return found


def test_a_new_browser_gets_a_route_cookie_and_stays_on_one_worker(
    site: Site, browser: Browser
) -> None:
    context = new_context(browser)
    try:
        page = context.new_page()
        worker = _open(page, f"{site.base}/")
        assert worker in {"1", "2"}
        cookie = next(c for c in context.cookies() if c["name"] == ROUTE)
        assert cookie["path"] == "/dashboard" and cookie["httpOnly"]
        assert cookie["sameSite"] == "Lax" and not cookie["secure"], "plain http here"
        route = cookie["value"]
        _sign_in(page)
        assert h1(page) == "总览" and not exceptions(page)
        # One export, downloaded from the media URL the page's worker made.
        _open(page, f"{site.base}/?period=month&start=2025-03-01&end=2025-03-31")
        button = page.locator(".st-key-download_red_black_list_xlsx").first.locator("button")
        button.scroll_into_view_if_needed()
        with page.expect_download(timeout=120_000) as info:
            button.click()
        download = info.value
        assert download.failure() is None and download.suggested_filename.endswith(".xlsx")
        workbook = openpyxl.load_workbook(io.BytesIO(download.path().read_bytes()))
        assert workbook.worksheets[0].max_row > 1
    finally:
        context.close()  # closes the websocket: nginx logs it when it ends
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        logged = _access_log(site, route)
        if any("/_stcore/stream" in request for _, request in logged):
            break
        time.sleep(0.5)
    assert any("/_stcore/stream" in request for _, request in logged), logged
    assert any("/media/" in request for _, request in logged), logged
    assert {number for number, _ in logged} == {worker}, "page, websocket, download: one worker"


def _route_cookies(site: Site, **headers: str) -> list[str]:
    request = urllib.request.Request(f"{site.base}/_stcore/health", headers=headers)
    with urllib.request.urlopen(request, timeout=5) as answer:
        return [c for c in answer.headers.get_all("Set-Cookie", []) if c.startswith(ROUTE)]


def test_the_route_cookie_is_secure_when_a_trusted_proxy_says_https(site: Site) -> None:
    # The test's requests come from 127.0.0.1, the default trusted proxy address.
    def route_cookies(**headers: str) -> list[str]:
        return _route_cookies(site, **headers)

    (secure,) = route_cookies(**{"X-Forwarded-Proto": "https"})
    assert re.fullmatch(
        rf"{ROUTE}=[12]\.[0-9a-f]{{32}}; Path=/dashboard; HttpOnly; SameSite=Lax; Secure", secure
    )
    (plain,) = route_cookies()
    assert re.fullmatch(
        rf"{ROUTE}=[12]\.[0-9a-f]{{32}}; Path=/dashboard; HttpOnly; SameSite=Lax", plain
    )
    assert route_cookies(Cookie=f"{ROUTE}=2.kept") == [], "a browser with a route keeps it"
    # A cookie naming no worker of this start (an old one, or made up) is replaced.
    for stale in ("3.old", "kept", "12.x"):
        (replaced,) = route_cookies(Cookie=f"{ROUTE}={stale}")
        assert re.match(rf"{ROUTE}=[12]\.[0-9a-f]{{32}};", replaced), (stale, replaced)


def test_browsers_arriving_together_are_spread_evenly(site: Site) -> None:
    """New browsers go to the worker with the fewest open connections, so 40 arriving one
    after the other split 20/20 (by a random hash, as before, a 20/20 split is the exception:
    the binomial puts 7 in 8 runs further apart)."""
    workers = []
    for _ in range(40):
        (cookie,) = _route_cookies(site)
        workers.append(cookie.split("=", 1)[1].split(".", 1)[0])
    assert sorted(set(workers)) == ["1", "2"]
    assert abs(workers.count("1") - workers.count("2")) <= 1, workers


def test_both_workers_serve_and_a_sign_in_holds_on_either(site: Site, browser: Browser) -> None:
    first = _context_on(browser, site, 1)
    second = _context_on(browser, site, 2)
    try:
        page = first.new_page()
        assert _open(page, f"{site.base}/") == "1"
        _sign_in(page)
        assert h1(page) == "总览"
        session = [c for c in first.cookies() if c["name"] == "govdash_session"]
        assert len(session) == 1
        # The same browser session cookie, taken to the other worker: still signed in.
        second.add_cookies([{k: v for k, v in session[0].items() if k != "partitionKey"}])  # type: ignore[misc]
        other = second.new_page()
        assert _open(other, f"{site.base}/response?period=year&year=2025") == "2"
        assert SIGNED_IN in other.locator('[data-testid="stSidebar"]').inner_text()
        assert h1(other) == "响应时效" and not exceptions(other)
    finally:
        first.close()
        second.close()


def test_a_killed_worker_is_started_again(site: Site, browser: Browser) -> None:
    before = _worker_pid(site, 2)
    route = _route_for(site, 2)  # while it answers: nginx does not send its routes elsewhere
    assert before is not None
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:  # until worker 2 is a new process and answers through nginx
        now = _worker_pid(site, 2)
        status, headers = _get(f"{site.base}/_stcore/health", route)
        if now not in (None, before) and status == 200 and headers.get("x-govdash-worker") == "2":
            break
        assert time.monotonic() < deadline, f"worker 2 was not started again:\n{_tail(site.log)}"
        time.sleep(0.5)
    assert "已退出" in _tail(site.log), "the parent says a worker exited and is restarted"
    context = _context_on(browser, site, 2, route)
    try:
        page = context.new_page()
        assert _open(page, f"{site.base}/") == "2"
        page.get_by_label("用户名").wait_for(timeout=60_000)  # a page from the new worker
        assert not exceptions(page)
    finally:
        context.close()


def test_sigterm_stops_nginx_and_every_worker(site: Site) -> None:
    family = _family(site.process)
    assert len([p for p in family if "nginx" in p.name()]) >= 1
    assert _worker_pid(site, 1) and _worker_pid(site, 2)
    site.process.send_signal(signal.SIGTERM)
    assert site.process.wait(timeout=60) == 0, _tail(site.log)
    _gone, alive = psutil.wait_procs(family, timeout=30)
    assert alive == [], f"left running: {alive}"
    # The address is free again: nothing listens (SO_REUSEADDR only lets the bind past the
    # TIME_WAIT of this test's own closed connections, never past a listening socket).
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", site.port))
    assert _get(f"{site.base}/_stcore/health") == (0, {})


def test_without_nginx_several_workers_are_refused_with_what_to_install(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    ran = _govdash(
        "serve", "--db", str(warehouse.db), "--port", str(_free_port()), "--workers", "2",
        GOVDASH_NGINX=str(tmp_path / "no-nginx-here"),
    )  # fmt: skip
    assert ran.returncode == 1
    assert "apt-get install -y nginx" in ran.stderr and "--workers 1" in ran.stderr


def test_a_trusted_proxy_that_is_not_an_address_is_refused(warehouse: Warehouse) -> None:
    ran = _govdash(
        "serve", "--db", str(warehouse.db), "--port", str(_free_port()), "--workers", "2",
        "--forwarded-allow-ips", "127.0.0.1,proxy.example",
    )  # fmt: skip
    assert ran.returncode == 1 and "proxy.example" in ran.stderr


@pytest.mark.parametrize("workers", [0, 65, "2"])
def test_a_workers_setting_out_of_range_names_the_key(
    warehouse: Warehouse, tmp_path: Path, workers: object
) -> None:
    config = tmp_path / "govdash.toml"
    value = f'"{workers}"' if isinstance(workers, str) else str(workers)
    config.write_text(f"[server]\nworkers = {value}\n", encoding="utf-8")
    ran = _govdash("serve", "--db", str(warehouse.db), "--config", str(config))
    assert ran.returncode == 2 and "server.workers" in ran.stderr, ran.stderr  # a config error


def test_an_untrusted_address_cannot_claim_https(warehouse: Warehouse, tmp_path: Path) -> None:
    # Only 10.9.9.9 is a trusted proxy; this test's requests come from 127.0.0.1.
    with _serving(warehouse, tmp_path, "--forwarded-allow-ips", "10.9.9.9") as other:
        (cookie,) = _route_cookies(other, **{"X-Forwarded-Proto": "https"})
        assert "Secure" not in cookie and "Path=/dashboard" in cookie
