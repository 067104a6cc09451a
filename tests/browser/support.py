"""Helpers for driving the dashboard in a real browser: pages, waiting, widgets, screenshots.

Streamlit reruns the page script on every interaction and streams the result over a
websocket, so "the page is ready" means: the script has finished (no status widget in the
toolbar, no stale or skeleton elements) and has stayed finished for a moment.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import Locator, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from govdash.i18n import CATALOG

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
MARCH = {"period": "month", "start": "2025-03-01", "end": "2025-03-31"}

# Generous: the machine has two cores shared with other test runs, and a first page run
# imports pandas, plotly and DuckDB.
RUN_TIMEOUT_S = 120.0
QUIET_S = 1.0


@dataclass(frozen=True)
class PageSpec:
    name: str  # the file name under views/
    path: str  # URL path
    title_zh: str
    has_charts: bool


# What the tests know about each page; a page registered in app.py but missing here is still
# opened (its title from the catalog, charts not required): see pages_in_app().
KNOWN_PAGES = {
    "overview": PageSpec("overview", "/", "总览", True),
    "response": PageSpec("response", "/response", "响应时效", True),
    "satisfaction": PageSpec("satisfaction", "/satisfaction", "满意度", True),
    "data": PageSpec("data", "/data", "数据管理", False),
    "evaluation": PageSpec("evaluation", "/evaluation", "年度考评", True),
    # The browser warehouse's register has no signing dates: the page explains, draws nothing.
    "effect": PageSpec("effect", "/effect", "治理成效", False),
    "admin": PageSpec("admin", "/admin", "账号与审计", False),
    # Online scoring: single-user mode is an admin, who is told scoring is for evaluators.
    "scoring": PageSpec("scoring", "/scoring", "在线打分", False),
    "rounds": PageSpec("rounds", "/rounds", "评分轮次", False),
}


def pages_in_app() -> list[PageSpec]:
    """The pages app.py registers with st.navigation, in its order (read at collection time);
    all of them, as in single-user mode (an account sees those of its role)."""
    source = (ROOT / "govdash" / "web" / "app.py").read_text(encoding="utf-8")
    names = re.findall(r"""["']views/(\w+)\.py["']""", source)
    specs = []
    for name in names:
        known = KNOWN_PAGES.get(name)
        if known is None:
            title = CATALOG.get(f"page.{name}", {}).get("zh", name)
            known = PageSpec(name, f"/{name}", title, False)
        specs.append(known)
    return specs


def url(base: str, path: str = "/", **params: str | list[str]) -> str:
    query = urlencode(params, doseq=True)
    return f"{base}{path}" + (f"?{query}" if query else "")


# --- waiting ---------------------------------------------------------------------------------

# stExpanderIconSpinner: an st.status still "running" (the effect page shows one while it
# imports its estimators and computes, between messages the run sends).
_BUSY_JS = """() => Boolean(
    document.querySelector('[data-testid="stStatusWidget"]')
    || document.querySelector('[data-testid="stExpanderIconSpinner"]')
    || document.querySelector('[data-stale="true"]')
    || document.querySelector('[data-testid="stSkeleton"]')
)"""


def wait_for_app(page: Page, timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Until the script run is over and has stayed over for QUIET_S seconds."""
    page.wait_for_selector("h1", timeout=timeout_s * 1000)
    deadline = time.monotonic() + timeout_s
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if page.evaluate(_BUSY_JS):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= QUIET_S:
            return
        page.wait_for_timeout(150)
    raise AssertionError(f"Streamlit still running after {timeout_s:.0f} s on {page.url}")


def wait_after_navigation(page: Page, attempts: int = 5) -> None:
    """wait_for_app across the navigations a sign-in or sign-out makes (the page goes to a
    cookie route and back): a run that a navigation cut short is waited for again."""
    for attempt in range(attempts):
        try:
            page.wait_for_load_state("domcontentloaded")
            wait_for_app(page)
            return
        except PlaywrightError as error:
            if "context was destroyed" not in str(error) or attempt == attempts - 1:
                raise
            page.wait_for_timeout(500)


def open_app(page: Page, base: str, path: str = "/", **params: str | list[str]) -> None:
    page.goto(url(base, path, **params), wait_until="domcontentloaded")
    wait_for_app(page)


def wait_for_charts(page: Page, minimum: int = 1, timeout_s: float = 60) -> int:
    """Wait until `minimum` plotly charts have drawn their SVG; return how many there are."""
    page.wait_for_function(
        'n => document.querySelectorAll(\'[data-testid="stPlotlyChart"] .js-plotly-plot '
        ".main-svg').length >= n",
        arg=minimum,
        timeout=timeout_s * 1000,
    )
    return page.locator('[data-testid="stPlotlyChart"]').count()


# --- reading the page ------------------------------------------------------------------------


def h1(page: Page) -> str:
    return page.locator("h1").first.inner_text().strip()


def exceptions(page: Page) -> list[str]:
    return page.locator('[data-testid="stException"]').all_inner_texts()


def metrics(page: Page) -> dict[str, str]:
    """Metric label → displayed value, from every st.metric on the page."""
    found: dict[str, str] = {}
    cards = page.locator('[data-testid="stMetric"]')
    for index in range(cards.count()):
        card = cards.nth(index)
        label = card.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        found[label] = card.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return found


_FILE_SUFFIXES = {
    "csv",
    "xlsx",
    "xls",
    "xlsm",
    "toml",
    "py",
    "duckdb",
    "png",
    "svg",
    "json",
    "sqlite3",
}
_KEY_PREFIXES = sorted({key.split(".")[0] for key in CATALOG})
_KEY_PATTERN = re.compile(rf"\b(?:{'|'.join(_KEY_PREFIXES)})\.[a-z0-9_]+(?:\.[a-z0-9_]+)*\b")
_PLACEHOLDER_PATTERN = re.compile(r"\{[a-z_][a-z0-9_]*(?::[^{}]*)?\}")


def leftover_text(page: Page) -> list[str]:
    """Catalog keys shown instead of their text (`chart.xxx`) and unfilled `{placeholders}`."""
    text = page.locator("body").inner_text()
    keys = [
        match.group(0)
        for match in _KEY_PATTERN.finditer(text)
        if match.group(0).rsplit(".", 1)[-1] not in _FILE_SUFFIXES
    ]
    return keys + _PLACEHOLDER_PATTERN.findall(text)


def grid(page: Page, container: Locator) -> Locator:
    """The accessible table Streamlit's data grid renders (only once it is on screen)."""
    container.scroll_into_view_if_needed()
    table = container.locator('table[role="grid"]').first
    table.wait_for(state="attached", timeout=30_000)
    return table


def grid_headers(table: Locator) -> list[str]:
    return [text.strip() for text in table.locator('th[role="columnheader"]').all_inner_texts()]


def grid_column(table: Locator, column: int) -> list[str]:
    """Texts of the rendered cells of a column (1-based; the grid renders visible rows only)."""
    cells = table.locator(f'tbody td[aria-colindex="{column}"]')
    return [text.strip() for text in cells.all_inner_texts()]


_LAYOUT_JS = """root => {
    const box = e => e.getBoundingClientRect();
    const meets = (a, b) => a.left < b.right - 1 && b.left < a.right - 1
        && a.top < b.bottom - 1 && b.top < a.bottom - 1;
    const problems = [];
    root.querySelectorAll('.js-plotly-plot').forEach((plot, index) => {
        const svg = plot.querySelector('svg.main-svg');
        if (!svg) return;
        const frame = box(svg);
        const title = plot.querySelector('text.gtitle');
        const name = title ? title.textContent : `chart ${index + 1}`;
        const texts = Array.from(plot.querySelectorAll('text.gtitle, text.gtitle-subtitle'));
        for (const text of texts) {
            const b = box(text);
            if (b.right > frame.right + 1 || b.left < frame.left - 1) {
                problems.push(`${name}: "${text.textContent}" is cut off at the chart's edge`);
            }
        }
        const legend = plot.querySelector('g.legend');
        if (legend) {
            for (const text of texts) {
                if (meets(box(legend), box(text))) {
                    problems.push(`${name}: the legend covers "${text.textContent}"`);
                }
            }
        }
        // The note legend under the x axis (e.g. the shaded selected period).
        const note = plot.querySelector('g.legend2');
        if (note) {
            const axis = Array.from(plot.querySelectorAll('g.xtick text, text.xtitle'));
            for (const text of axis) {
                if (meets(box(note), box(text))) {
                    problems.push(`${name}: the note legend covers "${text.textContent}"`);
                }
            }
        }
    });
    return problems;
}"""


def chart_layout_problems(page: Page) -> list[str]:
    """Titles or subtitles cut off at a chart's edge, legends drawn over them, a note legend
    drawn over the x axis's labels or title."""
    return list(page.locator("body").evaluate(_LAYOUT_JS))


# --- widgets ---------------------------------------------------------------------------------


def choose(page: Page, label: str, option: str, attempts: int = 4) -> None:
    """Pick `option` in the st.selectbox labelled `label`.

    Charts and tables drawing late shift the layout, so a first click may land on a box that
    moved; the popup is retried until the option can be clicked.
    """
    box = page.get_by_role("combobox", name=label, exact=True)
    for _ in range(attempts):
        box.scroll_into_view_if_needed()
        box.click()
        try:
            page.get_by_role("option", name=option, exact=True).click(timeout=4_000)
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            continue
        wait_for_app(page)
        return
    raise AssertionError(f"could not choose {option!r} in the select box {label!r}")


def click_radio(page: Page, key: str, option_text: str) -> None:
    """Click an option of the st.radio with widget key `key`."""
    page.locator(f".st-key-{key}").get_by_text(option_text, exact=True).click()


# --- screenshots -----------------------------------------------------------------------------


def full_page_screenshot(page: Page, name: str) -> Path:
    """The whole page, not only the window: Streamlit scrolls inside its main section, so the
    window is made as tall as that section for the shot."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    target = SCREENSHOTS / f"{name}.png"
    before = page.viewport_size or {"width": 1400, "height": 1000}
    height = page.evaluate(
        """() => Math.max(...['[data-testid="stMain"]', '[data-testid="stSidebarContent"]']
            .map(s => document.querySelector(s)).filter(Boolean).map(e => e.scrollHeight))"""
    )
    page.set_viewport_size({"width": before["width"], "height": min(max(height, 600), 12_000)})
    try:
        page.wait_for_timeout(1_000)  # charts re-layout and grids render their rows
        page.screenshot(path=str(target), full_page=True)
    finally:
        page.set_viewport_size(before)
    return target
