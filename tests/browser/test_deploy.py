"""The product as a city's IT department runs it (issue 18, items 1, 3 and 6): the README's
deployment commands, run in order on a stand-in server under a temporary folder
(tests/deploy/support.py says what is stood in for), build the sdist and the wheel from a copy
of the checkout, install the wheel with its dependencies into a clean virtualenv, make the admin
account, load, start the service as its unit says, and put Debian's nginx in front over TLS.
Then chromium, through https://127.0.0.1:<port>/dashboard/, signs in, reloads, opens a deep
link, downloads an export and uploads a file; finally the upgrade and rollback blocks run.

Dependencies come from the package index as a user's `pip install` gets them, pinned to the
versions this test run itself uses (a constraints file from `pip freeze`), so the clean venv is
the product as tested, not whatever was released upstream this morning.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    generate_tickets,
    history_tickets,
    survey_rows,
)
from tests.browser.conftest import VIEWPORT
from tests.browser.support import h1, wait_after_navigation, wait_for_app
from tests.conftest import ticket_row, ticket_sheet, write_csv, write_xlsx
from tests.deploy.support import (
    ROOT,
    StandIn,
    healthy,
    kill_group,
    require_tool,
    start,
    stop,
    tail,
    wait_healthy,
)

pytestmark = pytest.mark.slow

ADMIN = "管理员"
PASSWORD = "Jie-dao 2025 admin"
SIGNED_IN = "已登录"
VERSION = "0.1.0"
NEXT_VERSION = "0.2.0"
SKIPPED_WHEN_COPYING = shutil.ignore_patterns(
    ".git", ".venv", "data", "dist", "build", "test-artifacts", "*.egg-info", "__pycache__",
    ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis",
)  # fmt: skip


@dataclass
class Site:
    stand_in: StandIn
    base: str  # https://127.0.0.1:<port>/dashboard
    service: subprocess.Popen[bytes]
    nginx: subprocess.Popen[bytes]
    tickets: int  # tickets in the incoming files


def _constraints(folder: Path) -> Path:
    """The versions of this test run, for the clean venv (named pins only)."""
    frozen = subprocess.run(
        [sys.executable, "-m", "pip", "freeze", "--exclude-editable"],
        check=True, capture_output=True, text=True, timeout=120,
    ).stdout  # fmt: skip
    pins = [line for line in frozen.splitlines() if "==" in line and " @ " not in line]
    path = folder / "constraints.txt"
    path.write_text("\n".join(pins) + "\n", encoding="utf-8")
    return path


def _incoming(folder: Path) -> int:
    """The browser tests' data as an office would hand it over; returns the ticket count."""
    tickets = history_tickets() + generate_tickets()
    write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]})
    write_csv(folder / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig")
    write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]})
    return len(tickets)


def _certificate(stand_in: StandIn, host: str) -> None:
    """A self-signed certificate where the installed site names it."""
    ssl = stand_in.path("/etc/ssl")
    (ssl / "certs").mkdir(parents=True, exist_ok=True)
    (ssl / "private").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [require_tool("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", f"/CN={host}", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(ssl / "private" / f"{host}.key"), "-out", str(ssl / "certs" / f"{host}.pem")],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip


def _status(stand_in: StandIn) -> dict[str, object]:
    """`govdash-admin status --format json` on the stand-in."""
    ran = subprocess.run(
        ["govdash-admin", "status", "--format", "json"],
        cwd=stand_in.root, env=stand_in.env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    return dict(json.loads(ran.stdout))


@pytest.fixture(scope="module")
def stand_in(tmp_path_factory: pytest.TempPathFactory) -> StandIn:
    """Blocks build, install, first-start and oidc of the README, run on a stand-in."""
    require_tool("nginx")
    base = tmp_path_factory.mktemp("deploy")
    source = base / "release"
    shutil.copytree(ROOT, source, ignore=SKIPPED_WHEN_COPYING, symlinks=True)
    made = StandIn.make(base / "server", source, _constraints(base), PASSWORD)
    made.run_block("build")
    assert made.recorded("build") == []
    return made


@pytest.fixture(scope="module")
def site(stand_in: StandIn) -> Iterator[Site]:
    tickets = _incoming(stand_in.path("/srv/govdash-incoming"))
    stand_in.run_block("install")
    assert stand_in.recorded("install") == [
        "apt-get install -y python3-venv chromium fonts-noto-cjk",
        "useradd --system --user-group --home-dir /var/lib/govdash --shell /usr/sbin/nologin "
        "govdash".replace("/var/lib/govdash", str(stand_in.path("/var/lib/govdash"))),
        "install -o govdash",
        "install -g govdash",
    ]
    stand_in.run_block("first-start")
    assert stand_in.recorded("first-start") == [
        "systemctl daemon-reload",
        "systemctl enable --now govdash",
    ]
    (stand_in.source / "secrets.toml").write_text(
        "# Streamlit secrets of this site; an [auth] table here would turn on OIDC sign-in.\n",
        encoding="utf-8",
    )
    stand_in.run_block("oidc")
    log = stand_in.root / "service.log"
    how = stand_in.service()
    service = start(how, log)  # what `systemctl enable --now govdash` does
    nginx = None
    try:
        wait_healthy(service, f"http://127.0.0.1:{stand_in.ports['app']}/dashboard", log)
        _certificate(stand_in, "dashboard.example.gov.cn")
        stand_in.run_block("proxy")
        assert stand_in.recorded("proxy") == [
            "apt-get install -y nginx",
            "systemctl reload nginx",
        ]
        prefix = Path(stand_in.env["NGINX_PREFIX"])
        nginx_log = stand_in.root / "nginx.log"
        with nginx_log.open("ab") as output:  # what `systemctl reload nginx` does here
            nginx = subprocess.Popen(
                [require_tool("nginx"), "-c", str(prefix / "nginx.conf"), "-p", f"{prefix}/",
                 "-e", str(prefix / "error.log")],
                stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        base = f"https://127.0.0.1:{stand_in.ports['https']}/dashboard"
        wait_healthy(nginx, base, prefix / "error.log")
        yield Site(stand_in, base, service, nginx, tickets)
    finally:
        if nginx is not None:
            kill_group(nginx)
        if service.poll() is None:
            stop(service)
        kill_group(service)


# --- 1. the release and the installed program -------------------------------------------------


def _package_files() -> set[str]:
    """Every file of the package in the checkout, computed from the tree itself."""
    return {
        str(path.relative_to(ROOT))
        for path in (ROOT / "govdash").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def test_the_wheel_holds_the_package_and_nothing_else(stand_in: StandIn) -> None:
    (wheel,) = (stand_in.source / "dist").glob("*.whl")
    assert wheel.name == f"govdash-{VERSION}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        top_level = archive.read(f"govdash-{VERSION}.dist-info/top_level.txt").decode()
    package = {name for name in names if not name.startswith(f"govdash-{VERSION}.dist-info/")}
    assert package == _package_files(), "the wheel is the package folder, file for file"
    assert top_level.split() == ["govdash"], "one import name at the top of site-packages"
    for needed in (
        "govdash/web/app.py",
        "govdash/web/server.py",
        "govdash/web/.streamlit/config.toml",
        "govdash/web/views/overview.py",
        "govdash/core/config.toml",
        "govdash/etl/schema.sql",
        "govdash/i18n/zh.toml",
        "govdash/i18n/en.toml",
    ):
        assert needed in package


def test_the_sdist_carries_the_package_and_the_deploy_files(stand_in: StandIn) -> None:
    (sdist,) = (stand_in.source / "dist").glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert _package_files() <= names
    deploy = {f"deploy/{path.name}" for path in (ROOT / "deploy").iterdir()}
    assert deploy <= names and "deploy/govdash.service" in deploy
    assert {"README.md", "pyproject.toml", "MANIFEST.in"} <= names


def test_the_installed_program_runs_from_any_directory(site: Site, tmp_path: Path) -> None:
    venv = site.stand_in.path("/opt/govdash")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c",
         "import govdash, streamlit, importlib.metadata as m;"
         "print(govdash.__file__); print(m.version('govdash'))"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120, check=True,
    ).stdout.split()  # fmt: skip
    assert Path(found[0]).is_relative_to(venv / "lib") and found[1] == VERSION
    check = subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "check"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert check.returncode == 0, check.stdout + check.stderr
    demo = subprocess.run(
        [str(venv / "bin" / "govdash"), "demo", "--tickets", "3000", "--out", "demo"],
        cwd=elsewhere, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert demo.returncode == 0, demo.stderr[-3000:]
    status = subprocess.run(
        [str(venv / "bin" / "govdash"), "status", "--format", "json"],
        cwd=elsewhere, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    document = json.loads(status.stdout)
    assert document["warehouse"]["path"] == str(elsewhere / "data" / "warehouse.duckdb")
    assert document["warehouse"]["tables"]["tickets"] > 2500  # 3000 minus rejected demo rows
    assert document["versions"]["govdash"] == VERSION


def test_the_service_has_what_the_first_start_block_made(site: Site) -> None:
    document = _status(site.stand_in)
    assert document["ok"] is True, document["problems"]
    assert document["accounts"]["count"] == 1
    assert document["warehouse"]["tables"]["tickets"] == site.tickets
    state = site.stand_in.path("/var/lib/govdash")
    assert (state / ".streamlit" / "secrets.toml").stat().st_mode & 0o777 == 0o600
    assert state.stat().st_mode & 0o777 == 0o700


# --- 3. through nginx over https at /dashboard/ -----------------------------------------------


@pytest.fixture(scope="module")
def context(site: Site, browser: Browser) -> Iterator[BrowserContext]:
    made = browser.new_context(
        viewport=VIEWPORT, accept_downloads=True, locale="zh-CN", ignore_https_errors=True
    )
    made.set_default_timeout(60_000)
    try:
        yield made
    finally:
        made.close()


@pytest.fixture(scope="module")
def signed_in(context: BrowserContext, site: Site) -> Page:
    page = context.new_page()
    page.goto(f"{site.base}/", wait_until="domcontentloaded")
    wait_after_navigation(page)
    page.get_by_label("用户名").fill(ADMIN)
    page.get_by_label("密码").fill(PASSWORD)
    with page.expect_navigation(timeout=120_000):  # to the cookie route and back
        page.get_by_role("button", name="登录").click()
    wait_after_navigation(page)
    expect(page.locator('[data-testid="stSidebar"]').get_by_text(SIGNED_IN)).to_be_visible()
    return page


def test_sign_in_over_https_lasts_with_a_secure_cookie_under_the_prefix(
    signed_in: Page, context: BrowserContext, site: Site
) -> None:
    assert urlsplit(signed_in.url).path == "/dashboard/" and h1(signed_in) == "总览"
    cookie = next(c for c in context.cookies() if c["name"] == "govdash_session")
    assert cookie["secure"], "the browser used https: the app believed nginx's X-Forwarded-Proto"
    assert cookie["path"] == "/dashboard" and cookie["httpOnly"]
    signed_in.reload(wait_until="domcontentloaded")
    wait_for_app(signed_in)
    assert SIGNED_IN in signed_in.locator('[data-testid="stSidebar"]').inner_text()
    assert h1(signed_in) == "总览"


def test_a_deep_link_through_the_proxy(
    signed_in: Page, context: BrowserContext, site: Site
) -> None:
    page = context.new_page()
    page.goto(
        f"{site.base}/response?period=year&year=2025&community=东社区",
        wait_until="domcontentloaded",
    )
    wait_for_app(page)
    assert h1(page) == "响应时效"
    parts = urlsplit(page.url)
    assert parts.path == "/dashboard/response"
    assert parse_qs(parts.query).get("community") == ["东社区"]
    page.close()


def test_an_export_downloads_through_the_proxy(signed_in: Page, site: Site) -> None:
    page = signed_in
    page.goto(
        f"{site.base}/?period=month&start=2025-03-01&end=2025-03-31", wait_until="domcontentloaded"
    )
    wait_for_app(page)
    button = page.locator(".st-key-download_red_black_list_xlsx").first.locator("button")
    button.scroll_into_view_if_needed()
    with page.expect_download(timeout=120_000) as info:
        button.click()
    download = info.value
    assert download.failure() is None and download.suggested_filename.endswith(".xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(download.path().read_bytes()))
    header = next(workbook.worksheets[0].iter_rows(values_only=True))
    assert all(isinstance(cell, str) and cell for cell in header)


def test_a_file_uploads_through_the_proxy(signed_in: Page, site: Site, tmp_path: Path) -> None:
    before = _status(site.stand_in)["warehouse"]
    assert isinstance(before, dict)
    upload = write_xlsx(tmp_path / "5月工单.xlsx", {"5月": ticket_sheet(ticket_row("PX-1"))})
    page = signed_in
    page.goto(f"{site.base}/data", wait_until="domcontentloaded")
    wait_for_app(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(str(upload))
    page.locator(".st-key-load_button button").click()
    expect(page.get_by_text("5月工单.xlsx", exact=False).first).to_be_visible()
    wait_for_app(page)
    after = _status(site.stand_in)["warehouse"]
    assert isinstance(after, dict)
    assert after["tables"]["tickets"] == before["tables"]["tickets"] + 1
    assert after["tables"]["load_batches"] == before["tables"]["load_batches"] + 1


# --- 6. upgrade and rollback ------------------------------------------------------------------


def _next_release(stand_in: StandIn) -> None:
    """The same source as version 0.2.0, its wheel beside the first one in dist/."""
    source = stand_in.root.parent / "release-next"
    shutil.copytree(stand_in.source, source, ignore=shutil.ignore_patterns("dist"))
    project = source / "pyproject.toml"
    text = project.read_text(encoding="utf-8")
    assert f'version = "{VERSION}"' in text
    project.write_text(text.replace(f'version = "{VERSION}"', f'version = "{NEXT_VERSION}"'))
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(stand_in.source / "dist"), "."],
        cwd=source, env=stand_in.env, check=True, capture_output=True, timeout=600,
    )  # fmt: skip


def test_upgrade_and_rollback(site: Site) -> None:
    stand_in = site.stand_in
    _next_release(stand_in)
    before = _status(stand_in)
    stop(site.service)  # `systemctl stop govdash`, the block's first step after the check
    how = stand_in.service()
    log = stand_in.root / "service.log"
    stand_in.run_block("upgrade")
    assert stand_in.recorded("upgrade") == ["systemctl stop govdash", "systemctl start govdash"]
    upgraded = _status(stand_in)
    assert upgraded["versions"]["govdash"] == NEXT_VERSION  # type: ignore[index]
    assert upgraded["accounts"] == before["accounts"]
    tables = before["warehouse"]["tables"]  # type: ignore[index]
    assert upgraded["warehouse"]["tables"] == tables  # type: ignore[index]  # rebuilt the same
    service = start(how, log)  # `systemctl start govdash`
    try:
        wait_healthy(service, site.base, log)
        assert stop(service) == 0, tail(log)
    finally:
        kill_group(service)
    stand_in.run_block("rollback")
    assert stand_in.recorded("rollback") == ["systemctl stop govdash", "systemctl start govdash"]
    rolled_back = _status(stand_in)
    assert rolled_back["versions"]["govdash"] == VERSION  # type: ignore[index]
    assert rolled_back["warehouse"] == before["warehouse"], "the copy from before the upgrade"
    assert stand_in.path("/var/lib/govdash.failed-upgrade").is_dir()
    service = start(how, log)
    try:
        wait_healthy(service, site.base, log)
        assert healthy(site.base)
    finally:
        if service.poll() is None:
            assert stop(service) == 0, tail(log)
        kill_group(service)
