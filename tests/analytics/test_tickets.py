"""Ticket queries against values computed in the test from the rows it wrote."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from govdash.analytics.metrics.rates import AGING_LABELS
from govdash.analytics.queries import tickets
from govdash.analytics.queries.filters import Filters
from tests.analytics.warehouse_data import (
    build,
    build_main,
    expected_tickets,
    open_db,
    select,
    shipped_config,
)
from tests.conftest import write_csv

CONFIG = shipped_config()
Q1 = Filters.for_quarter(2025, 1)
HOSTILE = "'; DROP TABLE tickets; --"


@pytest.fixture(scope="module")
def main(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, pd.DataFrame]]:
    db, rows = build_main(tmp_path_factory.mktemp("main"))
    con = open_db(db)
    yield con, expected_tickets(rows)
    con.close()


def quantiles(values: pd.Series) -> tuple[float, float]:
    known = values.dropna()
    if known.empty:
        return math.nan, math.nan
    return float(known.quantile(0.5)), float(known.quantile(0.9))


def on_time_rate(statuses: pd.Series) -> tuple[float, int]:
    counted = statuses[statuses.isin(["on_time", "late"])]
    return ((counted == "on_time").mean() if len(counted) else math.nan), len(counted)


def three_rates_of(rows: pd.DataFrame) -> dict[str, float]:
    """The 三率 of rows from a sheet with callback columns: over 是否有效回访 = 是."""
    base = rows[rows.valid_callback == "是"]
    n = len(base)
    if n == 0:
        return {"n": 0, "composite": math.nan}
    response = (base.contacted == "是").sum() / n
    resolution = (base.resolved == "是").sum() / n
    satisfaction = (
        (base.satisfaction == "满意").sum() + 0.9 * (base.satisfaction == "基本满意").sum()
    ) / n
    return {
        "n": n,
        "response": response,
        "resolution": resolution,
        "satisfaction": satisfaction,
        "composite": 0.2 * response + 0.4 * resolution + 0.4 * satisfaction,
    }


def same(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b)


# --- KPIs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "selection",
    [
        {},
        {"community": ["东社区"]},
        {"category": ["电梯", "停车管理"]},
        {"street": ["甲街道"], "priority": ["一般"]},
    ],
)
def test_kpis_match_an_independent_computation(main: Any, selection: dict[str, list[str]]) -> None:
    con, frame = main
    filters = Q1.with_selection(**selection)
    kpis = tickets.ticket_kpis(con, filters, CONFIG)
    rows = select(frame, Q1.start, Q1.end, **selection)
    register = pd.DataFrame(
        [
            ("甲街道", "东社区", 100),
            ("甲街道", "东社区", 300),
            ("甲街道", "西社区", 200),
            ("甲街道", "西社区", 400),
            ("乙街道", "南社区", 500),
        ],
        columns=["street", "community", "households"],
    )
    places = {k: v for k, v in selection.items() if k in ("street", "community")}
    for column, values in places.items():
        register = register[register[column].isin(values)]
    households = int(register.households.sum())

    assert kpis.period_label == "2025年第1季度"
    assert kpis.as_of == frame.attrs["as_of"]
    assert kpis.tickets == len(rows) > 0
    assert kpis.households == households
    assert kpis.tickets_per_100_households == pytest.approx(len(rows) / households * 100)
    assert (kpis.response_median_minutes, kpis.response_p90_minutes) == pytest.approx(
        quantiles(rows.response_minutes)
    )
    assert (kpis.resolution_median_hours, kpis.resolution_p90_hours) == pytest.approx(
        quantiles(rows.resolution_hours)
    )
    rate, n = on_time_rate(rows.response_status)
    assert (kpis.response_on_time_rate, kpis.response_on_time_n) == (pytest.approx(rate), n)
    rate, n = on_time_rate(rows.resolution_status)
    assert (kpis.resolution_on_time_rate, kpis.resolution_on_time_n) == (pytest.approx(rate), n)
    expected = three_rates_of(rows)
    assert kpis.callback_n == expected["n"]
    assert kpis.callback_fallback_n == 0
    assert kpis.response_rate == pytest.approx(expected["response"])
    assert kpis.resolution_rate == pytest.approx(expected["resolution"])
    assert kpis.satisfaction_rate == pytest.approx(expected["satisfaction"])
    assert kpis.three_rate_composite == pytest.approx(expected["composite"])
    assert kpis.repeat_tickets == int(rows.is_repeat.sum())
    # Open at the end of March: accepted any time before, still open (nothing closed later).
    everything = select(frame, date(2000, 1, 1), Q1.end, **selection)
    backlog = everything[everything.is_open]
    reference = min(datetime(2025, 4, 1), frame.attrs["as_of"])
    overdue = backlog.accepted_at + pd.to_timedelta(backlog.close_limit, unit="h") < reference
    assert kpis.backlog == len(backlog) > 0
    assert kpis.backlog_overdue == int(overdue.sum())


def test_the_generated_data_exercise_every_case(main: Any) -> None:
    """Guards the test data: a change to the generator must not hollow the tests out."""
    _, frame = main
    rows = select(frame, Q1.start, Q1.end)
    open_late = rows[rows.is_open & (rows.response_status == "late") & rows.responded_at.isna()]
    assert len(open_late) >= 5  # open, never answered, past the limit: must count as late
    assert (rows.response_status == "not_yet_due").sum() >= 1
    assert (~rows.is_open & rows.closed_at.isna()).sum() >= 1  # closed without a time
    assert rows.is_repeat.sum() >= 5
    assert (rows.satisfaction == "基本满意").sum() >= 5


# --- a tiny warehouse for the classic errors ---------------------------------------------------

TIMING_HEADER = ["工单编号", "紧急程度", "小区", "受理时间", "首次响应时间", "办结时间", "状态"]
TIMING_ROWS = [
    # A: answered in 10 minutes (limit 30): on time; closed after 1 hour.
    ["A", "一般", "东一小区", "2025-03-01 09:00", "2025-03-01 09:10", "2025-03-01 10:00", "已办结"],
    # B: never answered, still open, long past its limits: late for both.
    ["B", "一般", "东一小区", "2025-03-01 09:00", "", "", "处理中"],
    # C: answered in 20 minutes, closed after an hour; its close is the as-of time.
    ["C", "一般", "东一小区", "2025-03-10 08:00", "2025-03-10 08:20", "2025-03-10 09:00", "已办结"],
    # D: open, accepted 10 minutes before the as-of time: not yet due.
    ["D", "一般", "东一小区", "2025-03-10 08:50", "", "", "已派单"],
    # E: accepted in February, closed on 3 March: open at the end of February.
    ["E", "一般", "东一小区", "2025-02-20 10:00", "2025-02-20 10:05", "2025-03-03 10:00", "已办结"],
    # F: 已办结 without a close time: closed at an unknown time, never in the backlog.
    ["F", "一般", "东一小区", "2025-02-10 10:00", "2025-02-10 10:05", "", "已办结"],
]


@pytest.fixture(scope="module")
def timing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[duckdb.DuckDBPyConnection]:
    folder = tmp_path_factory.mktemp("timing")
    db = build(folder, [write_csv(folder / "工单.csv", [TIMING_HEADER, *TIMING_ROWS], "utf-8")])
    con = open_db(db)
    yield con
    con.close()


def test_open_overdue_tickets_count_as_late(timing: duckdb.DuckDBPyConnection) -> None:
    kpis = tickets.ticket_kpis(timing, Filters.for_month(2025, 3), CONFIG)
    # A and C on time, B late (open, unanswered, overdue), D not yet due: 2 / 3, not 2 / 2.
    assert kpis.response_on_time_n == 3
    assert kpis.response_on_time_rate == pytest.approx(2 / 3)
    assert kpis.resolution_on_time_n == 3
    assert kpis.resolution_on_time_rate == pytest.approx(2 / 3)
    assert kpis.as_of == datetime(2025, 3, 10, 9, 0)


@pytest.mark.parametrize(
    ("filters", "backlog", "overdue"),
    [
        (Filters.for_month(2025, 2), 1, 1),  # E: closed on 3 March, overdue since 23 Feb
        (Filters.for_range(date(2025, 3, 1), date(2025, 3, 5)), 1, 1),  # B
        (Filters.for_month(2025, 3), 2, 1),  # B overdue, D not yet (as-of 10 March 09:00)
        (Filters.for_month(2025, 1), 0, 0),
    ],
)
def test_backlog_is_counted_at_period_end(
    timing: duckdb.DuckDBPyConnection, filters: Filters, backlog: int, overdue: int
) -> None:
    kpis = tickets.ticket_kpis(timing, filters, CONFIG)
    assert (kpis.backlog, kpis.backlog_overdue) == (backlog, overdue)
    aging = tickets.backlog_aging(timing, filters, CONFIG)
    assert aging["tickets"].sum() == backlog
    assert aging["overdue"].sum() == overdue


def test_backlog_aging_buckets_by_age_at_period_end(timing: duckdb.DuckDBPyConnection) -> None:
    march = tickets.backlog_aging(timing, Filters.for_month(2025, 3), CONFIG)
    assert march["bucket"].tolist() == list(AGING_LABELS)
    # At the as-of time (10 March 09:00): B is 9 days old, D 10 minutes.
    assert dict(zip(march.bucket, march.tickets, strict=True)) == {
        "0–1天": 1,
        "1–3天": 0,
        "3–7天": 0,
        ">7天": 1,
    }
    february = tickets.backlog_aging(timing, Filters.for_month(2025, 2), CONFIG)
    # E at 1 March 00:00 is 8 days 14 hours old.
    assert february.set_index("bucket").loc[">7天", "tickets"] == 1


def test_longest_open_lists_the_backlog_oldest_first(timing: duckdb.DuckDBPyConnection) -> None:
    listed = tickets.longest_open(timing, Filters.for_month(2025, 3), CONFIG)
    assert listed["ticket_id"].tolist() == ["B", "D"]
    assert listed["age_days"].tolist() == pytest.approx([9.0, 10 / 1440])
    assert listed["is_overdue"].tolist() == [True, False]
    assert "caller_hash" not in listed.columns and "description" not in listed.columns
    assert len(tickets.longest_open(timing, Filters.for_month(2025, 3), CONFIG, limit=1)) == 1


# --- the 三率 fallback for sheets without callback columns -------------------------------------


@pytest.fixture(scope="module")
def callbacks(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("callbacks")
    front_desk = [
        ["工单编号", "小区", "受理时间", "首次响应时间", "办结时间", "状态", "满意度"],
        [
            "G1",
            "东一小区",
            "2025-03-01 09:00",
            "2025-03-01 09:05",
            "2025-03-01 12:00",
            "已办结",
            "满意",
        ],
        [
            "G2",
            "东一小区",
            "2025-03-02 09:00",
            "2025-03-02 09:05",
            "2025-03-02 12:00",
            "已办结",
            "基本满意",
        ],
        [
            "G3",
            "东一小区",
            "2025-03-03 09:00",
            "2025-03-03 09:05",
            "2025-03-03 12:00",
            "已办结",
            "不满意",
        ],
        [
            "G4",
            "东一小区",
            "2025-03-04 09:00",
            "2025-03-04 09:05",
            "2025-03-04 12:00",
            "已办结",
            "",
        ],
        ["G5", "东一小区", "2025-03-05 09:00", "2025-03-05 09:05", "", "处理中", "满意"],
    ]
    hotline = [
        [
            "工单编号",
            "小区",
            "受理时间",
            "办结时间",
            "状态",
            "是否有效回访",
            "是否联系",
            "是否解决",
            "满意度",
        ],
        [
            "H1",
            "东一小区",
            "2025-03-06 09:00",
            "2025-03-06 12:00",
            "已办结",
            "是",
            "是",
            "是",
            "满意",
        ],
        [
            "H2",
            "东一小区",
            "2025-03-07 09:00",
            "2025-03-07 12:00",
            "已办结",
            "否",
            "是",
            "是",
            "满意",
        ],
    ]
    write_csv(folder / "前台.csv", front_desk, "utf-8")
    write_csv(folder / "12345.csv", hotline, "utf-8")
    return folder


def test_sheets_without_callback_columns_use_closed_tickets_with_a_rating(
    callbacks: Path, tmp_path: Path
) -> None:
    db = build(tmp_path, [callbacks / "前台.csv"])
    with open_db(db) as con:
        kpis = tickets.ticket_kpis(con, Filters.for_month(2025, 3), CONFIG)
    # N = G1, G2, G3 (closed, rated); G4 has no rating, G5 is open.
    assert (kpis.callback_n, kpis.callback_fallback_n) == (3, 3)
    assert kpis.satisfaction_rate == pytest.approx((1 + 0.9 * 1) / 3)
    assert math.isnan(kpis.response_rate)  # 是否联系 was never recorded: unknown, not 0
    assert math.isnan(kpis.three_rate_composite)


def test_mixed_sheets_each_follow_their_own_columns(callbacks: Path, tmp_path: Path) -> None:
    db = build(tmp_path, [callbacks / "前台.csv", callbacks / "12345.csv"])
    with open_db(db) as con:
        kpis = tickets.ticket_kpis(con, Filters.for_month(2025, 3), CONFIG)
    # N = G1, G2, G3 by the fallback + H1 (H2 is not a valid callback).
    assert (kpis.callback_n, kpis.callback_fallback_n) == (4, 3)
    assert kpis.satisfaction_rate == pytest.approx((2 + 0.9) / 4)
    assert kpis.response_rate == 1.0  # over H1, the one ticket whose sheet records it
    assert kpis.three_rate_composite == pytest.approx(0.2 + 0.4 + 0.4 * 2.9 / 4)


# --- trends and distributions ------------------------------------------------------------------


def test_monthly_trend_has_every_month_and_matches(main: Any) -> None:
    con, frame = main
    trend = tickets.monthly_trend(con, Q1, CONFIG)
    assert trend["month"].tolist() == [pd.Timestamp(2025, m, 1) for m in (1, 2, 3)]
    for month, row in zip((1, 2, 3), trend.itertuples(), strict=True):
        start = date(2025, month, 1)
        end = (pd.Timestamp(start) + pd.offsets.MonthEnd(0)).date()
        rows = select(frame, start, end)
        assert row.tickets == len(rows)
        assert (row.response_median_minutes, row.response_p90_minutes) == pytest.approx(
            quantiles(rows.response_minutes)
        )
        rate, n = on_time_rate(rows.response_status)
        assert (row.response_on_time_rate, row.response_on_time_n) == (pytest.approx(rate), n)
        rate, n = on_time_rate(rows.resolution_status)
        assert same(row.resolution_on_time_rate, rate) and row.resolution_on_time_n == n
        expected = three_rates_of(rows)
        assert row.callback_n == expected["n"]
        assert row.three_rate_composite == pytest.approx(expected["composite"])


def test_monthly_trend_keeps_empty_months(main: Any) -> None:
    con, _ = main
    trend = tickets.monthly_trend(
        con, Filters.for_range(date(2025, 3, 15), date(2025, 5, 10)), CONFIG
    )
    assert trend["month"].dt.month.tolist() == [3, 4, 5]
    assert trend["tickets"].tolist()[1:] == [0, 0]
    assert trend[["response_median_minutes", "three_rate_composite"]].iloc[1:].isna().all().all()


def test_percentile_trend(main: Any) -> None:
    con, frame = main
    trend = tickets.percentile_trend(con, Q1, CONFIG)
    february = select(frame, date(2025, 2, 1), date(2025, 2, 28))
    row = trend.set_index("month").loc[pd.Timestamp(2025, 2, 1)]
    assert (row.response_p50_minutes, row.response_p90_minutes) == pytest.approx(
        quantiles(february.response_minutes)
    )
    assert (row.resolution_p50_hours, row.resolution_p90_hours) == pytest.approx(
        quantiles(february.resolution_hours)
    )
    assert row.response_n == february.response_minutes.notna().sum()


@pytest.mark.parametrize(
    "by", ["category", "priority", "community", "compound", "property_company"]
)
def test_response_distribution(main: Any, by: str) -> None:
    con, frame = main
    result = tickets.response_distribution(con, Q1, CONFIG, by)
    rows = select(frame, Q1.start, Q1.end)
    column = {"property_company": "company"}.get(by, by)
    rows = rows.assign(**{column: rows[column].replace("", tickets.BLANK_GROUP)})
    groups = rows.groupby(column)
    sizes = groups.size()
    shown = sizes[sizes >= CONFIG.min_group_size]
    assert sorted(result["group_name"]) == sorted(shown.index)
    assert result["tickets"].tolist() == sorted(result["tickets"], reverse=True)
    for row in result.itertuples():
        values = groups.get_group(row.group_name)
        assert row.tickets == len(values)
        expected = values.response_minutes.dropna().quantile([0.1, 0.25, 0.5, 0.75, 0.9])
        got = [
            row.response_p10,
            row.response_p25,
            row.response_p50,
            row.response_p75,
            row.response_p90,
        ]
        assert got == pytest.approx(expected.tolist())
        expected = values.resolution_hours.dropna().quantile([0.25, 0.75])
        assert [row.resolution_p25, row.resolution_p75] == pytest.approx(expected.tolist())


def test_response_distribution_hides_groups_under_five(main: Any) -> None:
    con, frame = main
    east_two = Q1.with_selection(compound=["东二小区"], category=["电梯"])
    rows = select(frame, Q1.start, Q1.end, compound=["东二小区"], category=["电梯"])
    result = tickets.response_distribution(con, east_two, CONFIG, "priority")
    small = rows.groupby("priority").size()
    assert set(result["group_name"]) == set(small[small >= 5].index)
    assert (small < 5).any()  # the case is really exercised


def test_response_distribution_refuses_unknown_groupings(main: Any) -> None:
    con, _ = main
    with pytest.raises(ValueError):
        tickets.response_distribution(con, Q1, CONFIG, "caller_hash")


def test_weekday_hour_volume(main: Any) -> None:
    con, frame = main
    grid = tickets.weekday_hour_volume(con, Q1, CONFIG)
    assert len(grid) == 7 * 24
    rows = select(frame, Q1.start, Q1.end)
    expected = rows.groupby(
        [rows.accepted_at.dt.isocalendar().day, rows.accepted_at.dt.hour]
    ).size()
    got = grid.set_index(["weekday", "hour"])["tickets"]
    for (weekday, hour), count in expected.items():
        assert got.loc[(weekday, hour)] == count
    assert grid["tickets"].sum() == len(rows)


def test_repeat_requests(main: Any) -> None:
    con, frame = main
    result = tickets.repeat_requests(con, Q1, CONFIG)
    rows = select(frame, Q1.start, Q1.end)
    by_category = result.by_category.set_index("category")
    for category, group in rows.groupby("category"):
        if len(group) < CONFIG.min_group_size:
            assert category not in by_category.index
            continue
        row = by_category.loc[category]
        with_caller = (group.phone != "").sum()
        assert (row.tickets, row.tickets_with_caller, row.repeats) == (
            len(group),
            with_caller,
            group.is_repeat.sum(),
        )
        assert row.repeat_share == pytest.approx(group.is_repeat.sum() / with_caller)
    top = result.top_compounds
    expected = rows.groupby("compound").is_repeat.sum().sort_values(ascending=False)
    assert top.iloc[0]["repeats"] == expected.iloc[0]
    assert top["repeats"].tolist() == sorted(top["repeats"], reverse=True)


def test_ticket_rows_of_one_compound(main: Any) -> None:
    con, frame = main
    listed = tickets.ticket_rows(con, Q1, CONFIG, "东一小区")
    rows = select(frame, Q1.start, Q1.end, compound=["东一小区"])
    assert set(listed["ticket_id"]) == set(rows.ticket_id)
    assert listed["accepted_at"].is_monotonic_decreasing
    assert not {"caller_hash", "description"} & set(listed.columns)
    assert len(tickets.ticket_rows(con, Q1, CONFIG, "东一小区", limit=3)) == 3
    assert tickets.ticket_rows(con, Q1, CONFIG, HOSTILE).empty


def test_filter_options_cascade(main: Any) -> None:
    con, _ = main
    everything = tickets.filter_options(con)
    assert everything["street"] == ["乙街道", "甲街道"]
    assert "电梯" in everything["category"]
    narrowed = tickets.filter_options(con, Q1.with_selection(street=["乙街道"]))
    assert narrowed["community"] == ["南社区"]
    assert narrowed["compound"] == ["南一小区"]


def test_ticket_date_range(main: Any) -> None:
    con, frame = main
    assert tickets.ticket_date_range(con) == (
        frame.accepted_at.min().date(),
        frame.accepted_at.max().date(),
    )


# --- empty and hostile selections --------------------------------------------------------------

QUERIES: dict[str, Callable[[duckdb.DuckDBPyConnection, Filters], Any]] = {
    "monthly_trend": lambda con, f: tickets.monthly_trend(con, f, CONFIG),
    "percentile_trend": lambda con, f: tickets.percentile_trend(con, f, CONFIG),
    "response_distribution": lambda con, f: tickets.response_distribution(
        con, f, CONFIG, "category"
    ),
    "backlog_aging": lambda con, f: tickets.backlog_aging(con, f, CONFIG),
    "weekday_hour_volume": lambda con, f: tickets.weekday_hour_volume(con, f, CONFIG),
    "repeat_requests": lambda con, f: tickets.repeat_requests(con, f, CONFIG).by_category,
    "longest_open": lambda con, f: tickets.longest_open(con, f, CONFIG),
    "ticket_rows": lambda con, f: tickets.ticket_rows(con, f, CONFIG, "东一小区"),
}


@pytest.mark.parametrize(
    "filters",
    [
        Q1.with_selection(community=["没有这个社区"]),
        Q1.with_selection(community=[HOSTILE], category=["x" * 200]),
        Filters.for_year(2030),
    ],
    ids=["unknown-community", "hostile", "future"],
)
def test_empty_selections_give_zero_rows_not_errors(main: Any, filters: Filters) -> None:
    con, _ = main
    kpis = tickets.ticket_kpis(con, filters, CONFIG)
    assert kpis.tickets == 0 and kpis.callback_n == 0 and kpis.response_on_time_n == 0
    assert math.isnan(kpis.response_on_time_rate) and math.isnan(kpis.three_rate_composite)
    assert math.isnan(kpis.response_median_minutes)
    for name, query in QUERIES.items():
        result = query(con, filters)
        if name == "weekday_hour_volume":
            assert len(result) == 168 and result["tickets"].sum() == 0
        elif name in ("backlog_aging", "longest_open") and filters.start.year == 2030:
            # Tickets still open at the as-of time stay in any later period's backlog.
            assert kpis.backlog > 0
            listed = result["tickets"].sum() if name == "backlog_aging" else len(result)
            assert listed == min(kpis.backlog, 10_000 if name == "backlog_aging" else 20)
        elif name in ("backlog_aging", "monthly_trend"):
            assert result["tickets"].sum() == 0
        elif name == "percentile_trend":
            assert result["response_p50_minutes"].isna().all()
        else:
            assert result.empty, name
    assert con.execute("SELECT count(*) FROM tickets").fetchone() == (422,)


def test_an_empty_warehouse_answers_every_query(tmp_path: Path) -> None:
    register = [["小区名称", "户数"], ["东一小区", 100]]
    db = build(tmp_path, [write_csv(tmp_path / "台账.csv", register, "utf-8")])
    with open_db(db) as con:
        kpis = tickets.ticket_kpis(con, Q1, CONFIG)
        assert (kpis.tickets, kpis.households, kpis.backlog, kpis.as_of) == (0, 100, 0, None)
        assert kpis.tickets_per_100_households == 0.0
        assert tickets.ticket_date_range(con) is None
        for query in QUERIES.values():
            query(con, Q1)


def test_period_end_is_capped_at_the_as_of_time(main: Any) -> None:
    con, frame = main
    later = Filters.for_range(date(2025, 3, 1), date(2025, 12, 31))
    reference = tickets.reference_time(con, later)
    assert reference == frame.attrs["as_of"]
    assert tickets.reference_time(con, Filters.for_month(2025, 1)) == datetime(2025, 2, 1)
    assert reference - datetime(2025, 3, 31) < timedelta(days=1)
