"""数据管理 in chromium (issue 13, items 1–2; issue 12, item 5): the uploader speaks Chinese and
shows the loader's own size limit; a workbook with its own headers is mapped with one change,
loads, and the next month's file loads with the saved profile and no questions."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from govdash.core.config import load_config
from govdash.core.profiles import ProfileStore, profiles_path
from tests.browser.conftest import new_context, running_server
from tests.browser.support import (
    choose,
    exceptions,
    full_page_screenshot,
    metrics,
    open_app,
    wait_for_app,
)
from tests.etl.test_mapping import own_workbook

# Visible text of the uploader, and what its pseudo-elements add (the Chinese put in place of
# Streamlit's English by the page's CSS).
_UPLOADER_TEXT_JS = """root => {
    const shown = [];
    const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
    while (walker.nextNode()) {
        const node = walker.currentNode;
        const text = node.textContent.trim();
        if (!text) continue;
        if (node.parentElement.closest('[data-testid="stIconMaterial"]')) continue;  // an icon
        const style = getComputedStyle(node.parentElement);
        if (parseFloat(style.fontSize) > 0 && style.visibility !== 'hidden'
            && style.display !== 'none' && node.parentElement.getClientRects().length) {
            shown.push(text);
        }
    }
    const added = [];
    root.querySelectorAll('*').forEach(element => {
        const content = getComputedStyle(element, '::after').content;
        if (content && content !== 'none' && content !== 'normal') added.push(content);
    });
    return {shown, added};
}"""


@pytest.fixture(scope="module")
def empty_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """A server on a warehouse that does not exist yet (the first upload creates it)."""
    folder = tmp_path_factory.mktemp("browser-mapping")
    db = folder / "data" / "warehouse.duckdb"
    db.parent.mkdir()  # an installation's (empty) data folder: serve refuses a missing one
    with running_server(db, folder) as base:
        yield base, db


@pytest.fixture
def fresh_page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()


def _uploader_words(page: Page) -> dict[str, list[str]]:
    return page.locator('[data-testid="stFileUploader"]').first.evaluate(_UPLOADER_TEXT_JS)


def _upload(page: Page, path: Path) -> None:
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').first.set_input_files(str(path))
    expect(page.locator('[data-testid="stFileChip"]').first).to_be_visible(timeout=60_000)
    wait_for_app(page)


def test_the_uploader_speaks_chinese_and_shows_the_loaders_limit(
    fresh_page: Page, empty_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, _ = empty_server
    open_app(fresh_page, base, "/data")
    limit = f"{load_config().max_upload_mb:,g}"

    words = _uploader_words(fresh_page)
    english = [w for w in words["shown"] if any("a" <= c.lower() <= "z" for c in w)]
    assert english == [], english
    added = " ".join(words["added"])
    assert f"每个文件不超过 {limit} MB" in added and "选择文件" in added
    assert "XLSX、XLSM、XLS、ODS、CSV" in added
    full_page_screenshot(fresh_page, "data_uploader_zh")

    _upload(fresh_page, own_workbook(tmp_path / "3月登记表.xlsx"))
    words = _uploader_words(fresh_page)
    # The file's own name and its size (a unit such as KB) are the only Latin letters left.
    leftover = [
        w for w in words["shown"]
        if any("a" <= c.lower() <= "z" for c in w) and w != "3月登记表.xlsx" and not w.endswith("KB")
    ]  # fmt: skip
    assert leftover == [], leftover
    assert "添加文件" in " ".join(words["added"])


def test_map_a_workbook_once_then_next_month_loads_with_no_questions(
    browser: Browser, empty_server: tuple[str, Path], tmp_path: Path
) -> None:
    base, db = empty_server
    context = new_context(browser)
    try:
        page = context.new_page()
        open_app(page, base, "/data")
        _upload(page, own_workbook(tmp_path / "3月登记表.xlsx"))

        expect(page.get_by_text("表头不是模板的写法", exact=False).first).to_be_visible()
        assert page.get_by_role("combobox", name="办件时间", exact=True).input_value() == "受理时间"
        choose(page, "处理情况", "（不使用）")  # the one change
        wait_for_app(page)
        name = page.get_by_label("对照方案名称")
        name.fill("东社区登记表")
        name.press("Enter")
        wait_for_app(page)
        page.get_by_role("button", name="加载到数据仓库").click()
        wait_for_app(page)

        summary = page.locator('[data-testid="stCode"]').first.inner_text()
        assert "使用对照方案：东社区登记表" in summary and "加载 8 行，拒收 0 行" in summary
        assert "未使用的列：处理情况、序号" in summary
        assert not exceptions(page)
        page.get_by_role("tab", name="加载历史").click()
        expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
        assert metrics(page)["工单"] == "8"
        saved = ProfileStore(profiles_path(db)).get("东社区登记表")
        assert saved is not None and "处理情况" not in saved.columns
        full_page_screenshot(page, "data_mapping_loaded")
    finally:
        context.close()

    context = new_context(browser)
    try:
        page = context.new_page()
        open_app(page, base, "/data")
        _upload(page, own_workbook(tmp_path / "4月登记表.xlsx", count=4, start=30))
        assert page.get_by_text("表头不是模板的写法", exact=False).count() == 0
        page.get_by_role("button", name="加载到数据仓库").click()
        wait_for_app(page)
        summary = page.locator('[data-testid="stCode"]').first.inner_text()
        assert "✓ 4月登记表.xlsx" in summary and "使用对照方案：东社区登记表" in summary
        page.get_by_role("tab", name="加载历史").click()
        expect(page.locator('[data-testid="stMetric"]').first).to_be_visible()
        assert metrics(page)["工单"] == "12"
    finally:
        context.close()
