"""Trend charts and KPI changes in a real browser: a year of months with the default filters,
the selected month shaded, and a change of zero drawn grey.

The browser warehouse (conftest.py) holds tickets from January 2024 to March 2025 and survey
waves up to 10 June 2025, so the default period is June 2025: no tickets in May or June, and
the same survey wave in both, so several cards did not change.
"""

from __future__ import annotations

import re
from datetime import date

from playwright.sync_api import Locator, Page, expect

from tests.analytics.warehouse_data import select
from tests.browser.conftest import Warehouse
from tests.browser.support import (
    MARCH,
    chart_layout_problems,
    exceptions,
    full_page_screenshot,
    open_app,
    wait_for_charts,
)

RGB = re.compile(r"rgba?\((\d+), (\d+), (\d+)")


def _points(chart: Locator) -> int:
    """Markers drawn by the chart's first line (one per month)."""
    return chart.locator("g.scatterlayer g.trace").first.locator("path.point").count()


def _texts(found: Locator) -> list[str]:
    """textContent of SVG text elements (inner_text is not defined for SVG)."""
    return [str(text) for text in found.evaluate_all("els => els.map(e => e.textContent)")]


def _card(page: Page, label: str) -> Locator:
    cards = page.locator('[data-testid="stMetric"]')
    return cards.filter(has=page.get_by_text(label, exact=True)).first


def _delta_colour(card: Locator) -> tuple[int, int, int]:
    delta = card.locator('[data-testid="stMetricDelta"]')
    colour = delta.evaluate("e => getComputedStyle(e).color")
    match = RGB.match(colour)
    assert match, colour
    red, green, blue = (int(part) for part in match.groups())
    return red, green, blue


def _is_grey(colour: tuple[int, int, int]) -> bool:
    return max(colour) - min(colour) <= 24


def test_the_default_trend_shows_a_year_with_the_month_shaded(
    page: Page, server: str, warehouse: Warehouse
) -> None:
    open_app(page, server, "/")
    wait_for_charts(page, minimum=2)
    assert not exceptions(page)
    chart = page.locator(".st-key-chart_monthly_volume")
    chart.scroll_into_view_if_needed()
    assert _points(chart) >= 12
    # Every month label reads 2025-03; the shaded month is named under the axis.
    labels = _texts(chart.locator(".xtick text"))
    assert labels and all(re.fullmatch(r"\d{4}-\d{2}", label) for label in labels), labels
    assert "所选期间：2025年6月" in _texts(chart.locator(".legend2text"))
    (subtitle,) = _texts(chart.locator("text.gtitle-subtitle"))
    window = select(warehouse.tickets, date(2024, 7, 1), date(2025, 6, 30))
    assert subtitle == f"统计期：2024-07 – 2025-06 · n = {len(window):,}"
    assert chart_layout_problems(page) == []
    full_page_screenshot(page, "overview_default_trend")


def test_a_change_of_zero_is_grey_and_a_real_change_is_coloured(
    page: Page, server: str, warehouse: Warehouse
) -> None:
    assert select(warehouse.tickets, date(2025, 5, 1), date(2025, 6, 30)).empty
    open_app(page, server, "/")
    unchanged = _card(page, "工单量")
    expect(unchanged.locator('[data-testid="stMetricDelta"]')).to_have_text("持平")
    assert _is_grey(_delta_colour(unchanged)), _delta_colour(unchanged)

    open_app(page, server, "/", **MARCH)
    march = len(select(warehouse.tickets, date(2025, 3, 1), date(2025, 3, 31)))
    february = len(select(warehouse.tickets, date(2025, 2, 1), date(2025, 2, 28)))
    changed = _card(page, "工单量")
    expect(changed.locator('[data-testid="stMetricDelta"]')).to_have_text(f"{march - february:+,}")
    red, green, blue = _delta_colour(changed)
    assert not _is_grey((red, green, blue))
    # More tickets is worse: red (fewer would be green).
    assert (red > green) == (march > february), (red, green, blue)
    deltas = page.locator('[data-testid="stMetricDelta"]').all_inner_texts()
    assert not [d for d in deltas if re.match(r"^[+\-−]0(\.0+)?( |$)", d.strip())], deltas
    full_page_screenshot(page, "overview_march_cards")
