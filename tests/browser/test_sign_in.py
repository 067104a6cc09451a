"""Sign-in in a real browser: an account made with `govdash users add` in the server's data
folder, the real form, the account's scope on the numbers, and the audit log it leaves.

The server is a second one, on a copy of the session's warehouse folder, so the other browser
tests keep their single-user server.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from govdash.core.audit import AuditLog
from tests.analytics.warehouse_data import select
from tests.browser.conftest import Warehouse, new_context, running_server
from tests.browser.support import (
    MARCH,
    ROOT,
    exceptions,
    h1,
    metrics,
    open_app,
    wait_after_navigation,
    wait_for_app,
)

VIEWER = "东社区查看员"
PASSWORD = "Dong-she-qu 2025"
DOWNLOAD_TIMEOUT_MS = 120_000


@dataclass(frozen=True)
class Site:
    base: str
    folder: Path


@pytest.fixture(scope="module")
def site(warehouse: Warehouse, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("signed-site") / "data"
    shutil.copytree(
        warehouse.db.parent,
        folder,
        symlinks=True,
        ignore=shutil.ignore_patterns("audit.sqlite3*", "accounts.json*"),
    )
    db = folder / warehouse.db.name
    added = subprocess.run(
        [sys.executable, "-m", "govdash", "users", "add", VIEWER, "--role", "viewer",
         "--community", "东社区", "--password-stdin", "--db", str(db)],
        input=PASSWORD + "\n", cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert (folder / "accounts.json").is_file()
    with running_server(db, folder.parent) as base:
        yield Site(base, folder)


@pytest.fixture
def tab(browser: Browser, site: Site) -> Iterator[Page]:
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


def _sign_in(page: Page, username: str, password: str, succeeds: bool = True) -> None:
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(password)
    if succeeds:  # the browser fetches its sign-in cookie and comes back: a navigation
        with page.expect_navigation(timeout=120_000):
            page.get_by_role("button", name="登录").click()
        wait_after_navigation(page)
    else:
        page.get_by_role("button", name="登录").click()
        page.wait_for_timeout(500)
        wait_for_app(page)


def _nav_titles(page: Page) -> list[str]:
    links = page.locator('[data-testid="stSidebarNavLink"]')
    return [text.strip().splitlines()[-1].strip() for text in links.all_inner_texts()]


def test_a_viewer_signs_in_and_sees_only_their_community(
    tab: Page, site: Site, warehouse: Warehouse
) -> None:
    open_app(tab, site.base, "/", **MARCH, community="西社区")
    assert h1(tab) == "红色物业治理效能看板"
    expect(tab.get_by_role("button", name="登录")).to_be_visible()
    assert metrics(tab) == {}, "nothing of the data before sign-in"

    _sign_in(tab, VIEWER, "not the password", succeeds=False)
    expect(tab.get_by_text("用户名或密码不正确", exact=False)).to_be_visible()
    assert metrics(tab) == {}

    _sign_in(tab, VIEWER, PASSWORD)
    expect(tab.locator("h1").first).to_have_text("总览", timeout=120_000)
    wait_for_app(tab)
    assert not exceptions(tab), exceptions(tab)
    east = select(warehouse.tickets, date(2025, 3, 1), date(2025, 3, 31), community=["东社区"])
    everything = select(warehouse.tickets, date(2025, 3, 1), date(2025, 3, 31))
    assert 0 < len(east) < len(everything)
    assert metrics(tab)["工单量"] == f"{len(east):,}"
    expect(tab.get_by_text("不在您的数据范围", exact=False)).to_be_visible()
    assert _nav_titles(tab) == ["总览", "响应时效", "满意度", "治理成效"]
    expect(
        tab.locator('[data-testid="stSidebar"]').get_by_text(VIEWER, exact=False)
    ).to_be_visible()

    # A CSV of the monthly volume: the file holds the community's tickets, and the log says so.
    button = tab.locator(".st-key-download_monthly_volume_csv button")
    button.scroll_into_view_if_needed()
    with tab.expect_download(timeout=DOWNLOAD_TIMEOUT_MS) as info:
        button.click()
    assert info.value.failure() is None
    log = AuditLog(site.folder / "audit.sqlite3")
    signed = log.events(action="sign_in")
    assert signed["actor"].tolist() == [VIEWER]
    assert log.events(action="sign_in_failed")["actor"].tolist() == [VIEWER]
    exports = log.events(action="export")
    assert exports["actor"].tolist() == [VIEWER]
    assert exports["target"].tolist() == ["monthly_volume.csv"]
    assert "community:东社区" in exports["detail"].iloc[0]


def test_the_data_page_is_not_reachable_for_a_viewer(tab: Page, site: Site) -> None:
    open_app(tab, site.base, "/data", **MARCH)
    assert metrics(tab) == {} and tab.locator('[data-testid="stFileUploader"]').count() == 0
    _sign_in(tab, VIEWER, PASSWORD)
    tab.wait_for_timeout(1_000)
    wait_for_app(tab)
    assert h1(tab) != "数据管理"
    assert tab.locator('[data-testid="stFileUploader"]').count() == 0
    assert "数据管理" not in _nav_titles(tab)
