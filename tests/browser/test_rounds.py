"""A whole online scoring round in Debian's chromium against `govdash serve`: an admin opens a
round and assigns evaluators, two evaluators score every unit, a third (recused from 东社区) is
not offered its units and finds its draft after a reload, progress shows, the lock makes the
scores final, and 年度考评 ranks the units as the same scores loaded from a workbook do."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from govdash.analytics.queries.evaluation import evaluation_result
from govdash.core.access import Scope
from govdash.core.accounts import AccountStore
from govdash.core.rounds import RoundStore, rounds_path
from govdash.core.warehouse import connect_readonly
from tests.browser.conftest import new_context, running_server
from tests.browser.support import (
    choose,
    click_radio,
    exceptions,
    grid,
    grid_column,
    open_app,
    wait_after_navigation,
    wait_for_app,
)
from tests.rounds_site import (
    ADMIN,
    DRAFT,
    EVALUATORS,
    INDICATORS,
    KEY,
    PASSWORD,
    RECUSED,
    RECUSED_COMMUNITY,
    SCORES,
    UNITS,
    build_site,
    site_config,
    site_environment,
)

POINTS = 20  # both evaluator indicators of the site's config


@dataclass(frozen=True)
class Site:
    base: str
    db: Path
    config: Path
    expected_units: list[str]
    expected_ranks: list[str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    folder = tmp_path_factory.mktemp("rounds-site")
    db, config_path = build_site(folder / "online", with_scores=False)
    accounts = AccountStore(db.parent / "accounts.json")
    accounts.add(ADMIN, PASSWORD, "admin", Scope.district())
    for name in (*EVALUATORS, RECUSED):
        accounts.add(name, PASSWORD, "evaluator", Scope.district())
    workbook_db, _ = build_site(folder / "workbook", with_scores=True)
    with site_environment(config_path):
        con = connect_readonly(workbook_db)
        try:
            expected = evaluation_result(con, site_config(config_path), 2025, "compound").table
        finally:
            con.close()
    with running_server(
        db, folder, extra_args=("--config", str(config_path)), GOVDASH_HASH_KEY=KEY
    ) as base:
        yield Site(
            base,
            db,
            config_path,
            expected["unit"].tolist(),
            [str(rank) for rank in expected["rank"]],
        )


@pytest.fixture
def browser_page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, site: Site, name: str, path: str = "/") -> None:
    open_app(page, site.base, path)
    page.get_by_label("用户名").fill(name)
    page.get_by_label("密码").fill(PASSWORD)
    with page.expect_navigation(timeout=120_000):
        page.get_by_role("button", name="登录").click()
    wait_after_navigation(page)
    assert not exceptions(page), exceptions(page)


def type_score(page: Page, indicator: str, value: float) -> None:
    box = page.get_by_label(f"{indicator}（满分 {POINTS}）", exact=True)
    box.fill(f"{value:g}")
    box.press("Tab")  # a number input commits on blur: the score is saved then
    wait_for_app(page)
    expect(page.get_by_text(f"已保存“{indicator}”", exact=False)).to_be_visible()


def test_a_whole_round_in_the_browser(browser: Browser, site: Site) -> None:
    # The admin opens the round and assigns three evaluators.
    admin = new_context(browser).new_page()
    sign_in(admin, site, ADMIN, "/rounds")
    expect(admin.locator("h1").first).to_have_text("评分轮次", timeout=120_000)
    year = admin.get_by_label("考评年度", exact=True)
    year.fill("2025")
    year.press("Tab")
    wait_for_app(admin)
    click_radio(admin, "rounds_open_level", "小区")
    wait_for_app(admin)
    admin.get_by_role("button", name="开启评分轮次").click()
    wait_for_app(admin)
    expect(admin.get_by_text("已开启第1轮", exact=False)).to_be_visible()
    for name, community in ((EVALUATORS[0], ""), (EVALUATORS[1], ""), (RECUSED, RECUSED_COMMUNITY)):
        choose(admin, "评委账号", name)
        if community:
            choose(admin, "所属社区（该社区的单位自动回避）", community)
        admin.get_by_role("button", name="指派", exact=True).click()
        wait_for_app(admin)
        expect(admin.get_by_text(f"已指派 {name}", exact=False)).to_be_visible()
    assert not exceptions(admin), exceptions(admin)
    admin.context.close()

    # Two evaluators score every unit and submit.
    for name in EVALUATORS:
        page = new_context(browser).new_page()
        sign_in(page, site, name, "/scoring")
        expect(page.locator("h1").first).to_have_text("在线打分", timeout=120_000)
        for unit in UNITS:
            choose(page, "打分单位", unit)
            for indicator, value in zip(INDICATORS, SCORES[(name, unit)], strict=True):
                type_score(page, indicator, value)
            page.get_by_role("button", name="提交本单位评分").click()
            wait_for_app(page)
            expect(page.get_by_text(f"已提交“{unit}”的评分", exact=False)).to_be_visible()
        expect(page.get_by_text("已提交 4/4 个单位", exact=False)).to_be_visible()
        assert not exceptions(page), exceptions(page)
        page.context.close()

    # 孙六 belongs to 东社区: only 西社区's units are offered; a draft survives a reload.
    page = new_context(browser).new_page()
    sign_in(page, site, RECUSED, "/scoring")
    box = page.get_by_role("combobox", name="打分单位", exact=True)
    box.click()
    offered = [o.strip() for o in page.get_by_role("option").all_inner_texts()]
    page.keyboard.press("Escape")
    assert offered == ["西一小区", "西二小区"]
    unit, indicator, value = DRAFT
    choose(page, "打分单位", unit)
    type_score(page, indicator, value)
    page.reload(wait_until="domcontentloaded")
    wait_for_app(page)
    choose(page, "打分单位", unit)
    expect(page.get_by_label(f"{indicator}（满分 {POINTS}）", exact=True)).to_have_value(
        f"{value:.1f}"
    )
    page.context.close()

    # Progress, then the lock.
    admin = new_context(browser).new_page()
    sign_in(admin, site, ADMIN, "/rounds")
    expect(admin.get_by_text("少于 5 位", exact=False)).to_be_visible()
    tables = admin.locator('[data-testid="stDataFrame"]')
    progress = grid(admin, tables.filter(has_text="已提醒次数"))
    evaluators = grid_column(progress, 1)
    submitted = grid_column(progress, 3)
    assert dict(zip(evaluators, submitted, strict=True)) == {"孙六": "0", "李二": "4", "王一": "4"}
    admin.get_by_text("我已核对进度，确认锁定").click()
    wait_for_app(admin)
    admin.get_by_role("button", name="锁定本轮").click()
    wait_for_app(admin)
    expect(admin.get_by_text("16 个评分成为最终结果", exact=False)).to_be_visible()
    final = RoundStore(rounds_path(site.db)).final_scores(2025, "compound")
    assert len(final) == 16 and set(final["unit"]) == set(UNITS)

    # 年度考评 ranks the units as the workbook of the same scores does.
    open_app(admin, site.base, "/evaluation")
    click_radio(admin, "evaluation_level", "小区")
    wait_for_app(admin)
    admin.get_by_text("查看数据表", exact=True).first.click()
    wait_for_app(admin)
    ranking = grid(
        admin, admin.locator('[data-testid="stDataFrame"]').filter(has_text="不可参评原因")
    )
    assert grid_column(ranking, 2) == site.expected_units
    assert grid_column(ranking, 1) == site.expected_ranks
    assert not exceptions(admin), exceptions(admin)
    admin.context.close()
