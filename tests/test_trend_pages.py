"""Trend charts, KPI cards and the 红黑榜's reasons through AppTest, on a warehouse holding
fifteen months of tickets (a quiet 2024 before the main December–March data).

Expected values are counted here from the generated rows with pandas
(tests/analytics/warehouse_data.py), not with the product's SQL.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from tests.analytics.warehouse_data import (
    REGISTER,
    REGISTER_HEADER,
    SURVEY_HEADER,
    TICKET_HEADER,
    build,
    expected_tickets,
    generate_tickets,
    history_tickets,
    select,
    survey_rows,
)
from tests.conftest import write_csv, write_xlsx

ROOT = Path(__file__).resolve().parent
APP = ROOT.parent / "govdash" / "web" / "app.py"
MARCH = {"period": "month", "start": "2025-03-01", "end": "2025-03-31"}

pytestmark = pytest.mark.usefixtures("fresh_streamlit_caches")


@pytest.fixture(scope="module")
def long_warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("trends")
    tickets = history_tickets() + generate_tickets()
    files = [
        write_xlsx(folder / "台账.xlsx", {"台账": [REGISTER_HEADER, *[list(r) for r in REGISTER]]}),
        write_csv(folder / "工单.csv", [TICKET_HEADER, *[t.row() for t in tickets]], "utf-8-sig"),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    return build(folder, files), expected_tickets(tickets)


def _app(db: Path, monkeypatch: pytest.MonkeyPatch, params: dict[str, str]) -> AppTest:
    monkeypatch.setenv("GOVDASH_DB", str(db))
    monkeypatch.delenv("GOVDASH_CONFIG", raising=False)
    app = AppTest.from_file(str(APP), default_timeout=60)
    for key, value in params.items():
        app.query_params[key] = value
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _page(app: AppTest, page: str) -> AppTest:
    app.switch_page(f"views/{page}.py").run()
    assert not app.exception, [e.value for e in app.exception]
    return app


def _figure(app: AppTest, name: str) -> dict[str, Any]:
    """The plotly figure chart_block drew under `name` (its element key is chart_<name>)."""
    for chart in app.get("plotly_chart"):
        if chart.proto.id.endswith(f"-chart_{name}"):
            return dict(json.loads(chart.proto.spec))
    keys = [chart.proto.id for chart in app.get("plotly_chart")]
    raise AssertionError(f"no chart {name!r} among {keys}")


def _months(figure: dict[str, Any], trace: int = 0) -> list[str]:
    return [str(x)[:7] for x in figure["data"][trace]["x"]]


def _month_list(first: str, last: str) -> list[str]:
    return [f"{p.year}-{p.month:02d}" for p in pd.period_range(first, last, freq="M")]


def _per_month(frame: pd.DataFrame, months: list[str]) -> list[int]:
    counts = frame.groupby(frame.accepted_at.dt.strftime("%Y-%m")).size()
    return [int(counts.get(month, 0)) for month in months]


def _metric(app: AppTest, label: str) -> Any:
    return next(m for m in app.metric if m.label == label)


def test_the_default_trend_shows_twelve_months_while_the_cards_show_one(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No URL: the period is the month of the data's last day (the survey of 10 June 2025)."""
    db, tickets = long_warehouse
    app = _app(db, monkeypatch, {})
    assert app.query_params["start"] == "2025-06-01"
    figure = _figure(app, "monthly_volume")
    months = _month_list("2024-07", "2025-06")
    assert _months(figure) == months
    assert len(figure["data"][0]["x"]) >= 12
    assert figure["data"][0]["y"] == _per_month(tickets, months)
    june = select(tickets, date(2025, 6, 1), date(2025, 6, 30))
    assert _metric(app, "工单量").value == f"{len(june):,}"


def test_the_march_trend_counts_each_month_and_the_cards_count_march(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, tickets = long_warehouse
    app = _app(db, monkeypatch, MARCH)
    march = select(tickets, date(2025, 3, 1), date(2025, 3, 31))
    february = select(tickets, date(2025, 2, 1), date(2025, 2, 28))
    cards = _metric(app, "工单量")
    assert cards.value == f"{len(march):,}"
    assert cards.proto.delta == f"{len(march) - len(february):+,}"
    judged = march[march.response_status.isin(["on_time", "late"])]
    on_time = (judged.response_status == "on_time").mean()
    assert _metric(app, "及时响应率").value == f"{on_time:.1%}"

    months = _month_list("2024-04", "2025-03")
    volume = _figure(app, "monthly_volume")
    assert _months(volume) == months
    assert volume["data"][0]["y"] == _per_month(tickets, months)
    window = select(tickets, date(2024, 4, 1), date(2025, 3, 31))
    subtitle = volume["layout"]["title"]["subtitle"]["text"]
    assert subtitle == f"统计期：2024-04 – 2025-03 · n = {len(window):,}"
    # The selected month is shaded and named in the note legend under the axis.
    (band,) = volume["layout"]["shapes"]
    assert band["name"] == "所选期间：2025年3月"
    assert band["legend"] == "legend2"
    assert pd.Timestamp(band["x0"]) == pd.Timestamp("2025-02-15")  # between Feb and Mar 1
    assert pd.Timestamp(band["x1"]) == pd.Timestamp("2025-03-16 12:00")  # between Mar, Apr 1
    rates = _figure(app, "monthly_rates")
    assert _months(rates) == months
    on_time_by_month = []
    for month in months:
        rows = tickets[tickets.accepted_at.dt.strftime("%Y-%m") == month]
        judged = rows[rows.response_status.isin(["on_time", "late"])]
        on_time_by_month.append((judged.response_status == "on_time").mean())
    assert rates["data"][0]["y"] == pytest.approx(on_time_by_month)


def test_place_filters_apply_to_the_trend(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, tickets = long_warehouse
    app = _app(db, monkeypatch, {**MARCH, "community": "东社区"})
    months = _month_list("2024-04", "2025-03")
    east = tickets[tickets.community == "东社区"]
    figure = _figure(app, "monthly_volume")
    assert figure["data"][0]["y"] == _per_month(east, months)
    assert figure["data"][0]["y"] != _per_month(tickets, months)


def test_a_year_is_shown_beside_the_year_before(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, tickets = long_warehouse
    year = {"period": "year", "start": "2025-01-01", "end": "2025-12-31"}
    app = _app(db, monkeypatch, year)
    months = _month_list("2024-01", "2025-12")
    figure = _figure(app, "monthly_volume")
    assert _months(figure) == months
    assert figure["data"][0]["y"] == _per_month(tickets, months)
    assert _metric(app, "工单量").value == f"{len(tickets[tickets.accepted_at.dt.year == 2025]):,}"


def test_months_before_the_first_ticket_are_not_drawn(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, tickets = long_warehouse
    assert tickets.accepted_at.min().strftime("%Y-%m") == "2024-01"
    app = _app(db, monkeypatch, {"period": "month", "start": "2024-06-01", "end": "2024-06-30"})
    figure = _figure(app, "monthly_volume")
    assert _months(figure) == _month_list("2024-01", "2024-06")


def test_the_response_and_satisfaction_trends_show_the_window(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, tickets = long_warehouse
    months = _month_list("2024-04", "2025-03")
    app = _page(_app(db, monkeypatch, MARCH), "response")
    percentiles = _figure(app, "response_percentiles")
    assert _months(percentiles) == months
    medians = []
    for month in months:
        rows = tickets[tickets.accepted_at.dt.strftime("%Y-%m") == month]
        medians.append(rows.response_minutes.median())
    assert percentiles["data"][0]["y"] == pytest.approx(medians, nan_ok=True)
    assert _months(_figure(app, "on_time_rates")) == months
    app = _page(app, "satisfaction")
    callbacks = _figure(app, "callback_satisfaction")
    assert _months(callbacks) == months
    assert callbacks["layout"]["shapes"][0]["name"] == "所选期间：2025年3月"


def test_a_change_of_zero_is_neutral(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """June and May 2025 hold no tickets and the same survey wave (20 May – 10 June): the
    ticket count, the backlog and the survey rate did not change."""
    db, tickets = long_warehouse
    assert select(tickets, date(2025, 5, 1), date(2025, 6, 30)).empty
    app = _app(db, monkeypatch, {"period": "month", "start": "2025-06-01", "end": "2025-06-30"})
    for label in ("工单量", "积压工单", "问卷满意率"):
        card = _metric(app, label)
        assert card.proto.delta == "持平", label
        assert card.proto.color == card.proto.MetricColor.GRAY, label
        assert card.proto.direction == card.proto.MetricDirection.NONE, label
    # A real change keeps its colour: more tickets in March than in February is red.
    app = _app(db, monkeypatch, MARCH)
    march = len(select(tickets, date(2025, 3, 1), date(2025, 3, 31)))
    february = len(select(tickets, date(2025, 2, 1), date(2025, 2, 28)))
    assert march != february
    card = _metric(app, "工单量")
    expected = card.proto.MetricColor.RED if march > february else card.proto.MetricColor.GREEN
    assert card.proto.color == expected
    for card in app.metric:
        assert not card.proto.delta.startswith(("+0.0", "-0.0", "+0 ", "-0 ")), card.label
        assert card.proto.delta not in {"+0", "-0"}, card.label


def test_the_red_black_list_of_one_community_offers_its_compounds(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = long_warehouse
    app = _app(db, monkeypatch, {**MARCH, "community": "东社区"})
    texts = [info.value for info in app.info]
    assert any("只有 1 个社区（东社区）" in text and "各小区" in text for text in texts), texts
    assert not any("均少于" in text for text in texts), texts
    app.button(key="compare_children").click().run()
    assert not app.exception, [e.value for e in app.exception]
    assert app.radio(key="overview_level").value == "compound"
    assert not any("只有 1 个社区" in info.value for info in app.info)


def test_the_red_black_list_of_one_compound_asks_to_widen_the_selection(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, _ = long_warehouse
    app = _app(db, monkeypatch, {**MARCH, "compound": "东一小区"})
    app.radio(key="overview_level").set_value("compound").run()
    texts = [info.value for info in app.info]
    assert any("只有 1 个小区（东一小区）" in t and "取消小区筛选" in t for t in texts), texts


def test_an_empty_month_still_shows_the_months_around_it(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    db, tickets = long_warehouse
    march = select(tickets, date(2025, 3, 1), date(2025, 3, 31))
    window = select(tickets, date(2024, 4, 1), date(2025, 3, 31))
    in_window = set(zip(window.category, window.compound, strict=True))
    quiet = sorted(in_window - set(zip(march.category, march.compound, strict=True)))
    assert quiet, "the data must hold a category and compound with tickets, none in March"
    category, compound = quiet[0]
    app = _app(db, monkeypatch, {**MARCH, "category": category, "compound": compound})
    assert any("2025年3月在当前筛选条件下没有数据" in info.value for info in app.info)
    assert not app.metric  # no cards of an empty month
    chosen = window[(window.category == category) & (window.compound == compound)]
    figure = _figure(app, "monthly_volume")
    assert figure["data"][0]["y"] == _per_month(chosen, _month_list("2024-04", "2025-03"))
    assert not app.get("plotly_chart")[-1].proto.id.endswith("-chart_red_black_list")


def test_a_month_without_callbacks_says_so_instead_of_too_few(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """June 2025 holds a survey wave but no tickets: the cards show, the 红黑榜 cannot rank."""
    db, _ = long_warehouse
    app = _app(db, monkeypatch, {"period": "month", "start": "2025-06-01", "end": "2025-06-30"})
    texts = [info.value for info in app.info]
    assert any("2025年6月没有回访记录" in text for text in texts), texts
    assert not any("均少于" in text for text in texts), texts


def test_a_window_without_tickets_says_which_months_it_looked_at(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """September 2023 holds only an undated survey wave (July–December 2023); the first ticket
    is from January 2024, so the window is that month alone and holds no ticket."""
    db, tickets = long_warehouse
    assert tickets.accepted_at.min() > pd.Timestamp("2023-10-01")
    app = _app(db, monkeypatch, {"period": "month", "start": "2023-09-01", "end": "2023-09-30"})
    expected = "趋势窗口 2023-09 内没有符合当前筛选条件的工单"
    assert any(expected in info.value for info in app.info), [i.value for i in app.info]
    assert not [c for c in app.get("plotly_chart") if c.proto.id.endswith("-chart_monthly_volume")]
    app = _page(app, "response")
    assert any(expected in info.value for info in app.info), [i.value for i in app.info]


def test_the_response_page_states_the_time_limits_in_force(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The rules behind the on-time rates are printed beside them, in the page's language
    (the default config's rules, written out by hand)."""
    db, _ = long_warehouse
    app = _page(_app(db, monkeypatch, MARCH), "response")
    captions = [c.value for c in app.caption]
    assert any(
        "特急：响应 5 分钟，办结 24 小时；紧急：响应 15 分钟，办结 24 小时；"
        "投诉：响应 24 小时，办结 168 小时；咨询：响应 30 分钟，办结 72 小时；"
        "其余：响应 30 分钟，办结 72 小时" in c
        for c in captions
    ), captions
    app = _page(_app(db, monkeypatch, {**MARCH, "lang": "en"}), "response")
    captions = [c.value for c in app.caption]
    assert any(
        "特急: respond within 5 min, resolve within 24 h; " in c
        and "all others: respond within 30 min, resolve within 72 h." in c
        for c in captions
    ), captions


def test_a_ranking_chart_of_more_units_than_it_draws_shows_the_two_ends_and_says_so(
    long_warehouse: tuple[Path, pd.DataFrame], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With room for two units, the item chart of the 2025 first-half wave draws the highest
    and the lowest of its three compounds (东一 8/10, 西一 30/40, 东二 1/4 satisfied, counted
    in survey_rows), its title says so, and its table keeps all three."""
    from govdash.analytics.charts import plots
    from govdash.analytics.reports.export import header_label

    monkeypatch.setattr(plots, "MAX_CHART_UNITS", 2)
    db, _ = long_warehouse
    quarter = {"period": "quarter", "start": "2025-04-01", "end": "2025-06-30"}
    app = _page(_app(db, monkeypatch, quarter), "satisfaction")
    figure = _figure(app, "survey_item_rates")
    drawn = [label for trace in figure["data"] if trace["mode"] == "markers"
             for label in trace["y"]]  # fmt: skip
    assert sorted(drawn) == ["东一小区", "东二小区"]
    assert list(figure["layout"]["yaxis"]["categoryarray"]) == ["东二小区", "东一小区"]
    assert "（3 个中最高、最低各 1 个）" in figure["layout"]["title"]["text"]
    assert any("全部 3 个单位" in caption.value for caption in app.caption)
    # The item table is the one with the intervals' columns (st.dataframe in an expander has no key).
    interval = header_label("wilson_low", "zh")
    tables = [frame.value for frame in app.dataframe if interval in frame.value.columns]
    assert len(tables[0]) == 3  # the first on the page: the item chart's
