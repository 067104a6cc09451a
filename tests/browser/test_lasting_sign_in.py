"""`govdash serve` as users start it, with accounts: however --db is spelled the installation's
accounts, audit log, key and originals are the ones beside the warehouse link; a sign-in lasts
across reloads and pasted links, lands where the link pointed, and ends everywhere on sign-out
or a password change (issue 12, items 1, 2 and 4).

Each server runs on a copy of the session's warehouse folder with an admin account made by
`govdash users add`, so the other browser tests keep their single-user server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect

from govdash.core.sessions import SessionStore, sessions_path
from tests.browser.conftest import Warehouse, new_context, running_server
from tests.browser.support import (
    ROOT,
    click_radio,
    exceptions,
    h1,
    wait_after_navigation,
    wait_for_app,
)
from tests.conftest import ticket_row, ticket_sheet, write_xlsx

ADMIN = "街道管理员"
PASSWORD = "Jie-dao 2025 admin"
SIGNED_IN = "已登录"
SINGLE_USER = "本地单用户模式"


@dataclass(frozen=True)
class Site:
    base: str
    db: Path  # the warehouse location; beside it: the lake, accounts, audit, key, raw/


def _copy_installation(warehouse: Warehouse, parent: Path) -> Path:
    folder = parent / "data"
    shutil.copytree(
        warehouse.db.parent,
        folder,
        symlinks=True,
        ignore=shutil.ignore_patterns("audit.sqlite3*", "accounts.json*", "sessions.sqlite3*"),
    )
    return folder


def _govdash(
    *args: str, cwd: Path = ROOT, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govdash", *args],
        input=stdin, cwd=cwd, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def _spell(folder: Path, name: str, spelling: str) -> tuple[str, Path]:
    """(--db as a user might type it, the folder to run in) for the warehouse `name`."""
    link = folder / name
    if spelling == "absolute":
        return str(link), ROOT
    if spelling == "relative":
        return f"data/{name}", folder.parent
    if spelling == "symlink":
        own = folder.parent / "srv"
        own.mkdir()
        (own / "govdash.duckdb").symlink_to(link)
        return str(own / "govdash.duckdb"), ROOT
    assert spelling == "catalog_file"
    return str(link.with_suffix(".sqlite")), ROOT  # the lake's catalog file itself


def _sign_in(page: Page, username: str = ADMIN, password: str = PASSWORD) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    # The browser goes to the cookie route and back: wait for the page it comes back to.
    with page.expect_navigation(timeout=120_000):
        page.get_by_role("button", name="登录").click()
    wait_after_navigation(page)
    expect(page.locator('[data-testid="stSidebar"]').get_by_text(SIGNED_IN)).to_be_visible()


def _asks_for_sign_in(page: Page) -> bool:
    wait_after_navigation(page)
    page.get_by_label("用户名").wait_for(timeout=60_000)
    body = page.locator("body").inner_text()
    return (
        SIGNED_IN not in body
        and SINGLE_USER not in body
        and not page.locator('[data-testid="stMetric"]').count()
    )


def _state_files(folder: Path) -> dict[str, list[str]]:
    """Every file and folder an installation keeps beside its warehouse, wherever it lies."""
    found: dict[str, list[str]] = {}
    for name in ("audit.sqlite3", "hash.key", "accounts.json", "sessions.sqlite3", "session.key"):
        found[name] = sorted(str(p.relative_to(folder.parent)) for p in folder.parent.rglob(name))
    found["raw"] = sorted(
        str(p.relative_to(folder.parent)) for p in folder.parent.rglob("raw") if p.is_dir()
    )
    found["catalog"] = sorted(
        str(p.relative_to(folder.parent)) for p in folder.parent.rglob("*.sqlite")
    )
    return found


@pytest.mark.parametrize("spelling", ["absolute", "relative", "symlink", "catalog_file"])
def test_serve_requires_sign_in_however_db_is_named(
    spelling: str,
    warehouse: Warehouse,
    browser: Browser,
    tmp_path: Path,
) -> None:
    folder = _copy_installation(warehouse, tmp_path)
    key = (folder / "hash.key").read_text()
    db_arg, cwd = _spell(folder, warehouse.db.name, spelling)
    added = _govdash("users", "add", ADMIN, "--role", "admin", "--password-stdin", "--db", db_arg,
                     cwd=cwd, stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    upload = write_xlsx(
        tmp_path / "上传" / "4月工单.xlsx", {"4月": ticket_sheet(ticket_row("UP-1"))}
    )
    with running_server(db_arg, tmp_path, cwd=cwd) as base:
        context = new_context(browser)
        try:
            page = context.new_page()
            page.goto(f"{base}/", wait_until="domcontentloaded")
            assert _asks_for_sign_in(page), "an account exists, so nobody gets in unsigned"
            _sign_in(page)
            assert h1(page) == "总览" and not exceptions(page)
            page.reload(wait_until="domcontentloaded")
            wait_for_app(page)
            assert SIGNED_IN in page.locator('[data-testid="stSidebar"]').inner_text()
            assert h1(page) == "总览", "a reload keeps the sign-in"
            if spelling == "catalog_file":
                # An upload through the data page publishes to the same lake, with the same key.
                page.goto(f"{base}/data", wait_until="domcontentloaded")
                wait_for_app(page)
                page.locator('[data-testid="stFileUploader"] input[type="file"]').set_input_files(
                    str(upload)
                )
                page.locator(".st-key-load_button button").click()
                expect(page.get_by_text("4月工单.xlsx", exact=False).first).to_be_visible()
                wait_for_app(page)
                assert not exceptions(page), exceptions(page)
        finally:
            context.close()
    files = _state_files(folder)
    assert files == {
        "audit.sqlite3": ["data/audit.sqlite3"],
        "hash.key": ["data/hash.key"],
        "accounts.json": ["data/accounts.json"],
        "sessions.sqlite3": ["data/sessions.sqlite3"],
        "session.key": ["data/session.key"],
        "raw": ["data/raw"],
        "catalog": [f"data/{warehouse.db.stem}.sqlite"],
    }, files
    assert (folder / "hash.key").read_text() == key, "phone hashes keep matching earlier loads"
    assert not (folder / f"{warehouse.db.name}.versions").exists()
    if spelling == "catalog_file":
        manifest = (folder / "raw" / "manifest.jsonl").read_text(encoding="utf-8")
        assert "4月工单.xlsx" in manifest, "the upload's original is kept with the others"


def test_serve_refuses_when_accounts_are_expected_but_missing(
    warehouse: Warehouse, tmp_path: Path
) -> None:
    folder = _copy_installation(warehouse, tmp_path)
    db = str(folder / warehouse.db.name)
    added = _govdash("users", "add", ADMIN, "--role", "admin", "--password-stdin", "--db", db,
                     stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    (folder / "accounts.json").unlink()  # a restore that forgot the accounts
    refused = _govdash("serve", "--db", db, "--port", "1")
    assert refused.returncode == 1
    assert "曾建立本地账号" in refused.stderr and str(folder / "accounts.json") in refused.stderr


# --- one site under a sub-path: deep links, sign-out, password change ------------------------


@pytest.fixture(scope="module")
def site(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    parent = tmp_path_factory.mktemp("lasting-site")
    folder = _copy_installation(warehouse, parent)
    added = _govdash("users", "add", ADMIN, "--role", "admin", "--password-stdin",
                     "--db", str(folder / warehouse.db.name), stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    with running_server(folder / warehouse.db.name, parent, base_path="dashboard") as base:
        yield Site(base, folder / warehouse.db.name)


@pytest.fixture
def context(browser: Browser, site: Site) -> Iterator[BrowserContext]:
    made = new_context(browser)
    try:
        yield made
    finally:
        made.close()


def test_a_pasted_deep_link_lands_where_it_pointed_after_sign_in(
    context: BrowserContext, site: Site
) -> None:
    page = context.new_page()
    page.goto(
        f"{site.base}/response?period=year&year=2025&community=东社区",
        wait_until="domcontentloaded",
    )
    assert _asks_for_sign_in(page)
    _sign_in(page)
    parts = urlsplit(page.url)
    assert parts.path == "/dashboard/response"
    assert h1(page) == "响应时效"
    query = parse_qs(parts.query)
    assert query.get("community") == ["东社区"] and query.get("period") == ["year"]
    cookie = next(c for c in context.cookies() if c["name"] == "govdash_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/dashboard", "the cookie goes to this app only"
    assert not cookie["secure"], "plain http here; Secure is set over https (behind the proxy)"
    # A pasted link in a new tab of the same browser: no second sign-in.
    other = context.new_page()
    other.goto(f"{site.base}/satisfaction?period=year&year=2025", wait_until="domcontentloaded")
    wait_for_app(other)
    assert h1(other) == "满意度" and SIGNED_IN in other.locator("body").inner_text()


def test_sign_out_and_a_password_change_end_every_copy_of_the_cookie(
    browser: Browser, context: BrowserContext, site: Site
) -> None:
    page = context.new_page()
    page.goto(f"{site.base}/", wait_until="domcontentloaded")
    _sign_in(page)
    copy = new_context(browser)  # someone who copied the cookie
    try:
        copy.add_cookies(context.cookies())
        stolen = copy.new_page()
        stolen.goto(f"{site.base}/", wait_until="domcontentloaded")
        wait_for_app(stolen)
        assert h1(stolen) == "总览", "the copied cookie works while the sign-in lives"
        with page.expect_navigation(timeout=120_000):  # to the route that deletes the cookie
            page.locator(".st-key-auth_sign_out button").click()
        assert _asks_for_sign_in(page)
        assert not [c for c in context.cookies() if c["name"] == "govdash_session"]
        stolen.reload(wait_until="domcontentloaded")
        assert _asks_for_sign_in(stolen), "sign-out ended the session on the server"

        # A password change: an account of this test's own, so the others keep theirs.
        added = _govdash("users", "add", "改密用户", "--role", "viewer", "--password-stdin",
                         "--db", str(site.db), stdin=PASSWORD + "\n")  # fmt: skip
        assert added.returncode == 0, added.stderr
        _sign_in(page, "改密用户")
        changed = _govdash("users", "password", "改密用户", "--password-stdin",
                           "--db", str(site.db), stdin="A new password 2026\n")  # fmt: skip
        assert changed.returncode == 0, changed.stderr
        page.reload(wait_until="domcontentloaded")
        assert _asks_for_sign_in(page), "a password change ends the sign-in at once"
        _sign_in(page, "改密用户", "A new password 2026")
    finally:
        copy.close()


def test_a_sign_in_ended_while_a_page_is_open_ends_at_its_next_fragment_rerun(
    context: BrowserContext, site: Site
) -> None:
    """The overview's 红黑榜 is an st.fragment: choosing another level reruns only it, not
    app.py where the sign-in is checked. The fragment checks it too (auth.still_signed_in)."""
    added = _govdash("users", "add", "片段用户", "--role", "viewer", "--password-stdin",
                     "--db", str(site.db), stdin=PASSWORD + "\n")  # fmt: skip
    assert added.returncode == 0, added.stderr
    page = context.new_page()
    page.goto(
        f"{site.base}/?period=year&start=2025-01-01&end=2025-12-31", wait_until="domcontentloaded"
    )
    _sign_in(page, "片段用户")
    level = page.locator(".st-key-overview_level")
    level.wait_for(timeout=60_000)
    click_radio(page, "overview_level", "小区")  # signed in: the fragment reruns as it is
    expect(page.locator(".st-key-drill_compound")).to_be_visible(timeout=60_000)
    assert SessionStore(sessions_path(site.db)).end_all("片段用户") >= 1
    click_radio(page, "overview_level", "物业企业")
    assert _asks_for_sign_in(page), "the fragment went on for an ended sign-in"
    assert not exceptions(page)


def test_a_tampered_cookie_is_no_sign_in(context: BrowserContext, site: Site) -> None:
    page = context.new_page()
    page.goto(f"{site.base}/", wait_until="domcontentloaded")
    _sign_in(page)
    cookie = next(c for c in context.cookies() if c["name"] == "govdash_session")
    context.clear_cookies()
    forged = cookie["value"][:-2] + ("AA" if not cookie["value"].endswith("AA") else "BB")
    context.add_cookies([{**cookie, "value": forged}])
    page.reload(wait_until="domcontentloaded")
    assert _asks_for_sign_in(page)


def test_users_get_no_deploy_button_or_developer_menu(page: Page, server: str) -> None:
    page.goto(f"{server}/", wait_until="domcontentloaded")
    wait_for_app(page)
    assert page.get_by_role("button", name="Deploy").count() == 0
    assert page.locator('[data-testid="stAppDeployButton"]').count() == 0
    assert page.locator('[data-testid="stMainMenu"]').count() == 0
    body = page.locator("body").inner_text()
    assert "Rerun" not in body and "Clear cache" not in body and "Record screen" not in body


def test_a_tab_offline_longer_than_the_session_is_kept_comes_back_as_it_was(
    context: BrowserContext, site: Site
) -> None:
    """The server keeps a disconnected tab's session only `disconnectedSessionTTL` seconds
    (issue 19: retained sessions cost every later run). A phone that locks its screen for
    longer reconnects to a new session: the page runs again from its address and the cookie,
    so the user is still signed in and sees the same page with the same filters."""
    import tomllib

    shipped = tomllib.loads((ROOT / "govdash/web/.streamlit/config.toml").read_text("utf-8"))
    kept = float(shipped["server"]["disconnectedSessionTTL"])
    page = context.new_page()
    page.goto(f"{site.base}/response?period=year&year=2025&community=东社区")
    assert _asks_for_sign_in(page)
    _sign_in(page)
    filters_before = page.get_by_text("筛选条件：").first.inner_text()
    assert "东社区" in filters_before
    context.set_offline(True)
    page.wait_for_timeout((kept + 10) * 1000)
    context.set_offline(False)
    page.wait_for_timeout(3000)
    wait_after_navigation(page)
    expect(page.locator('[data-testid="stSidebar"]').get_by_text(SIGNED_IN)).to_be_visible(
        timeout=60_000
    )
    assert h1(page) == "响应时效"
    assert page.get_by_text("筛选条件：").first.inner_text() == filters_before
    assert not exceptions(page)
