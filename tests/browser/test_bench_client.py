"""The concurrency benchmark's browserless client sees the pages chromium shows.

bench/bench_concurrency.py times page loads with a websocket client that counts what each run
sends (bench/streamlit_client.py). Its figures mean something only if it makes the server do a
browser's work: the same page, the same filters, the same elements. Here chromium opens each
page the benchmark opens and the rendered DOM is counted; the client opens the same pages on the
same server and counts the deltas it received. The two counts are made independently (DOM test
ids against protobuf element kinds) and must agree, page by page.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

import pytest
from playwright.sync_api import Page

from bench.streamlit_client import CHART, DOWNLOAD, METRIC, PageLoad, open_pages
from tests.browser.support import exceptions, h1, open_app, wait_for_charts

YEAR_2025 = {"period": "year", "start": "2025-01-01", "end": "2025-12-31"}
# (URL path as the client sends it, URL path in the browser, the page's title)
BENCH_PAGES = (
    ("", "/", "总览"),
    ("response", "/response", "响应时效"),
    ("satisfaction", "/satisfaction", "满意度"),
)


def dom_counts(page: Page) -> dict[str, int]:
    return {
        CHART: page.locator('[data-testid="stPlotlyChart"]').count(),
        METRIC: page.locator('[data-testid="stMetric"]').count(),
        DOWNLOAD: page.locator('[data-testid="stDownloadButton"]').count(),
    }


@pytest.fixture(scope="module")
def client_loads(server: str) -> dict[str, PageLoad]:
    """The three pages opened by the benchmark's client in one session, as a user of the
    benchmark opens them."""
    names = [name for name, _, _ in BENCH_PAGES]
    # Playwright's sync API keeps an event loop on this thread: the client gets its own.
    with ThreadPoolExecutor(1) as thread:
        loads = thread.submit(asyncio.run, open_pages(server, names, YEAR_2025)).result()
    return {load.page: load for load in loads}


@pytest.mark.parametrize(
    ("name", "path", "title"), BENCH_PAGES, ids=["overview", "response", "satisfaction"]
)
def test_client_counts_what_chromium_shows(
    page: Page, server: str, client_loads: dict[str, PageLoad], name: str, path: str, title: str
) -> None:
    open_app(page, server, path, **YEAR_2025)
    assert h1(page) == title
    assert exceptions(page) == []
    wait_for_charts(page, minimum=1)
    in_browser = dom_counts(page)

    load = client_loads[name]
    assert load.ok, load.error or f"{load.elements['exception']} exception element(s)"
    assert title in load.headings
    by_client = {kind: load.elements[kind] for kind in (CHART, METRIC, DOWNLOAD)}

    assert by_client == in_browser
    # Every page the benchmark times draws charts and offers downloads: equal zeros would
    # mean both sides missed the page.
    assert in_browser[CHART] > 0 and in_browser[DOWNLOAD] > 0
