"""The stored per-period aggregates (agg_units) give what the raw queries give.

Every aggregatable filter shape is run twice on a warehouse built by the real loader: reading
the stored aggregates, and with them switched off (the raw query over the tickets); the two
must agree. A few stored figures are also checked against pandas on the generated rows. And
after loads one by one (each refreshing only the periods it touched), the stored aggregates
must equal a full build over the same warehouse, and those of one load of the same files.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

import govdash.analytics.queries.aggregated as aggregated
import govdash.etl.aggregates as aggregates
import govdash.etl.settle as settle_module
from govdash import cli
from govdash.analytics.queries import bulletin, effect, loads, surveys, tickets, units
from govdash.analytics.queries.aggregated import aggregate_rows, backlog_rows
from govdash.analytics.queries.filters import Filters
from govdash.core.access import Scope
from govdash.core.lake import ALIAS
from govdash.core.warehouse import KEY_ENV, connect_readonly, current_snapshot, lake_of
from govdash.etl.load import load_paths
from govdash.etl.settle import settle
from tests.analytics.warehouse_data import REGISTER as MAIN_REGISTER
from tests.analytics.warehouse_data import REGISTER_HEADER as MAIN_REGISTER_HEADER
from tests.analytics.warehouse_data import (
    SURVEY_HEADER,
    build,
    expected_tickets,
    generate_tickets,
    history_tickets,
    open_db,
    select,
    shipped_config,
    survey_rows,
)
from tests.analytics.warehouse_data import TICKET_HEADER as MAIN_TICKET_HEADER
from tests.conftest import write_csv, write_xlsx
from tests.etl.test_incremental import _files as incremental_files

CONFIG = shipped_config()

PERIODS = [
    Filters.for_month(2025, 1),
    Filters.for_month(2025, 3),
    Filters.for_quarter(2025, 1),
    Filters.for_quarter(2024, 4),
    Filters.for_year(2025),
    Filters.for_year(2024),
    Filters.for_range(date(2025, 2, 1), date(2025, 2, 28)),  # a range that is one month
]
# Place selections (one unit per level) that a stored grouping answers, with a scope.
SHAPES: list[tuple[Scope, dict[str, list[str]]]] = [
    (Scope.district(), {}),
    (Scope.district(), {"street": ["甲街道"]}),
    (Scope.district(), {"community": ["西社区"]}),
    (Scope.district(), {"property_company": ["乐家物业"]}),
    (Scope.district(), {"street": ["甲街道"], "community": ["东社区"]}),
    (Scope.district(), {"community": ["西社区"], "compound": ["西二小区"]}),
    (Scope.district(), {"community": ["东社区"], "property_company": ["安居物业"]}),
    (Scope.district(), {"street": ["乙街道"], "property_company": ["乐家物业"]}),
    (Scope("street", "甲街道"), {}),
    (Scope("street", "甲街道"), {"community": ["西社区"]}),
    (Scope("street", "甲街道"), {"property_company": ["乐家物业"]}),
    (Scope("community", "东社区"), {}),
    (Scope("community", "东社区"), {"compound": ["东一小区"]}),
    (Scope("community", "东社区"), {"property_company": ["安居物业"]}),
]
# Unit-table levels each shape can be read at from the stored rows.
UNIT_LEVELS = ("community", "compound", "property_company")


@pytest.fixture(scope="module")
def main(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[duckdb.DuckDBPyConnection, Path]]:
    """The read side's main warehouse plus a quiet 2024 (so years and quarters differ)."""
    folder = tmp_path_factory.mktemp("agg")
    rows = [*history_tickets(), *generate_tickets()]
    files = [
        write_xlsx(
            folder / "台账.xlsx",
            {"台账": [MAIN_REGISTER_HEADER, *[list(r) for r in MAIN_REGISTER]]},
        ),
        write_csv(folder / "工单.csv", [MAIN_TICKET_HEADER, *[t.row() for t in rows]], "utf-8-sig"),
        write_xlsx(folder / "问卷.xlsx", {"问卷": [SURVEY_HEADER, *survey_rows()]}),
    ]
    db = build(folder, files)
    con = open_db(db)
    yield con, db
    con.close()


@pytest.fixture(scope="module")
def expected(main: Any) -> pd.DataFrame:
    return expected_tickets([*history_tickets(), *generate_tickets()])


# Every module that asks whether the stored aggregates are ready (by the imported name).
READY_USERS = (aggregated, surveys, tickets, effect)


def _raw(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`function` with the stored aggregates switched off: the raw query over the tickets."""
    with pytest.MonkeyPatch.context() as patch:
        for module in READY_USERS:
            patch.setattr(module, "aggregates_ready", lambda con: False)
        return function(*args, **kwargs)


def test_switching_off_reaches_every_reader() -> None:
    """Each module in READY_USERS holds the name, and no other analytics module does (else
    _raw would compare the stored path with itself)."""
    holders = set()
    for path in Path(tickets.__file__).parent.glob("*.py"):
        if "aggregates_ready" in path.read_text(encoding="utf-8"):
            holders.add(path.stem)
    assert holders == {module.__name__.rsplit(".", 1)[1] for module in READY_USERS}


def _filters(period: Filters, scope: Scope, places: dict[str, list[str]]) -> Filters:
    return period.with_selection(**places).within(scope)


def _waiting_read_raw(con: duckdb.DuckDBPyConnection, year: int) -> None:
    """The year's first quarter and the year itself, left for the settle, have no stored rows
    and their KPIs are the raw query's."""
    for filters in (Filters.for_quarter(year, 1), Filters.for_year(year)):
        assert aggregate_rows(con, filters) is None
        _same_kpis(
            tickets.ticket_kpis(con, filters, CONFIG),
            _raw(tickets.ticket_kpis, con, filters, CONFIG),
        )


def _same_kpis(stored: tickets.TicketKpis, raw: tickets.TicketKpis) -> None:
    for field in dataclasses.fields(stored):
        a, b = getattr(stored, field.name), getattr(raw, field.name)
        if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
            continue
        assert a == pytest.approx(b, rel=1e-12) if isinstance(a, float) else a == b, field.name


def _shape_ids(shapes: list[tuple[Scope, dict[str, list[str]]]]) -> list[str]:
    return [f"{s.to_text()}-{'+'.join(p) or 'all'}" for s, p in shapes]


SHAPE_IDS = _shape_ids(SHAPES)


@pytest.mark.parametrize(("scope", "places"), SHAPES, ids=SHAPE_IDS)
def test_kpis_from_the_stored_rows_equal_the_raw_query(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    con, _ = main
    for period in PERIODS:
        filters = _filters(period, scope, places)
        assert aggregate_rows(con, filters) is not None, filters
        stored = tickets.ticket_kpis(con, filters, CONFIG)
        _same_kpis(stored, _raw(tickets.ticket_kpis, con, filters, CONFIG))
    # the shapes are not all empty: the district's quarter has tickets
    assert tickets.ticket_kpis(con, Filters.for_quarter(2025, 1), CONFIG).tickets > 100


@pytest.mark.parametrize(("scope", "places"), SHAPES, ids=SHAPE_IDS)
def test_monthly_series_from_the_stored_rows_equal_the_raw_queries(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    con, _ = main
    for period in (Filters.for_month(2025, 3), Filters.for_year(2025), Filters.for_year(2024)):
        window = _filters(period, scope, places).trend_window()
        assert aggregate_rows(con, window, per_month=True) is not None
        for function in (
            tickets.monthly_trend,
            tickets.percentile_trend,
            surveys.callback_satisfaction_trend,
        ):
            stored = function(con, window, CONFIG)
            pd.testing.assert_frame_equal(stored, _raw(function, con, window, CONFIG))
            assert stored["month"].nunique() == window.month_count


@pytest.mark.parametrize(("scope", "places"), SHAPES, ids=SHAPE_IDS)
def test_unit_tables_from_the_stored_rows_equal_the_raw_query(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    con, _ = main
    served = 0
    for period in PERIODS:
        filters = _filters(period, scope, places)
        for level in UNIT_LEVELS:
            if aggregate_rows(con, filters, units.AGGREGATE_KEYS[level]) is None:
                continue
            served += 1
            stored = units.unit_table(con, filters, CONFIG, level)
            pd.testing.assert_frame_equal(
                stored, _raw(units.unit_table, con, filters, CONFIG, level)
            )
    if not places:  # a scope's own tables are always served from the stored rows
        assert served == len(PERIODS) * len(UNIT_LEVELS)


@pytest.mark.parametrize(
    ("level", "unit"),
    [("street", "甲街道"), ("community", "西社区"), ("property_company", "乐家物业")],
)
def test_the_drill_down_reads_the_stored_rows(main: Any, level: str, unit: str) -> None:
    con, _ = main
    filters = Filters.for_quarter(2025, 1)
    down = units.drill_down(con, filters, CONFIG, level, unit)
    assert aggregate_rows(con, down.filters, units.AGGREGATE_KEYS[down.child_level]) is not None
    raw = _raw(units.drill_down, con, filters, CONFIG, level, unit)
    pd.testing.assert_frame_equal(down.table, raw.table)
    assert len(down.table) > 1


@pytest.mark.parametrize(
    "filters",
    [
        Filters.for_range(date(2025, 1, 1), date(2025, 1, 15)),  # part of a month
        Filters.for_range(date(2025, 1, 1), date(2025, 2, 28)),  # two months as one figure
        Filters.for_quarter(2025, 1).with_selection(category=["电梯"]),
        Filters.for_quarter(2025, 1).with_selection(priority=["紧急"]),
        Filters.for_quarter(2025, 1).with_selection(channel=["小程序/APP"]),
        Filters.for_quarter(2025, 1).with_selection(community=["东社区", "西社区"]),
        Filters.for_quarter(2025, 1).with_selection(compound=["东一小区"]),  # no community
        Filters.for_quarter(2025, 1)
        .with_selection(street=["乙街道"])
        .within(Scope("street", "甲街道")),
    ],
)
def test_other_filters_read_the_tickets(main: Any, filters: Filters) -> None:
    con, _ = main
    assert aggregate_rows(con, filters) is None
    # and still give the raw answer (the same function, one path)
    _same_kpis(
        tickets.ticket_kpis(con, filters, CONFIG), _raw(tickets.ticket_kpis, con, filters, CONFIG)
    )


def test_a_series_needs_whole_months(main: Any) -> None:
    con, _ = main
    assert aggregate_rows(
        con, Filters.for_range(date(2025, 1, 1), date(2025, 3, 31)), per_month=True
    )
    assert (
        aggregate_rows(con, Filters.for_range(date(2025, 1, 2), date(2025, 3, 31)), per_month=True)
        is None
    )
    assert (
        aggregate_rows(con, Filters.for_range(date(2025, 1, 1), date(2025, 3, 30)), per_month=True)
        is None
    )


SURVEY_PERIODS = [Filters.for_year(2025), Filters.for_quarter(2025, 2), Filters.for_year(2024),
                  Filters.for_year(2023), Filters.for_range(date(2023, 6, 1), date(2025, 5, 31))]  # fmt: skip


@pytest.mark.parametrize(("scope", "places"), SHAPES, ids=SHAPE_IDS)
def test_survey_rates_from_the_stored_counts_equal_the_raw_query(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    con, _ = main
    answered = 0
    for period in SURVEY_PERIODS:
        # category and priority do not select survey answers: stored counts serve them too
        filters = _filters(period, scope, places).with_selection(category=["电梯"])
        for level in surveys.SURVEY_LEVELS:
            stored = surveys.survey_item_rates(con, filters, CONFIG, level)
            raw = _raw(surveys.survey_item_rates, con, filters, CONFIG, level)
            pd.testing.assert_frame_equal(stored, raw)
            answered += len(stored)
    assert answered > 0 or places or scope.is_restricted


def test_survey_rates_follow_the_config_threshold(main: Any) -> None:
    """The stored counts are per score, so another satisfied score gives the raw answer."""
    con, _ = main
    strict = dataclasses.replace(CONFIG, satisfied_min_score=5)
    filters = Filters.for_year(2025)
    stored = surveys.survey_item_rates(con, filters, strict, "compound")
    pd.testing.assert_frame_equal(
        stored, _raw(surveys.survey_item_rates, con, filters, strict, "compound")
    )
    overall = stored[(stored["unit"] == "东一小区") & (stored["item"] == "总体满意度")].iloc[0]
    assert (overall["satisfied"], overall["n"]) == (3, 10)  # the fives of (5,5,4,4,4,4,5,4,2,3)


def test_survey_items_hold_each_score_per_wave_compound_and_item(main: Any) -> None:
    """agg_survey_items against the generated survey sheet (survey_rows), counted in pandas."""
    con, _ = main
    sheet = pd.DataFrame(survey_rows(), columns=SURVEY_HEADER)
    words = {"满意": 4, "非常满意": 5}  # the two worded scores of the sheet
    answers = sheet.melt(
        id_vars=["调查批次", "社区", "小区"],
        value_vars=["客户服务", "总体满意度"],
        var_name="item",
        value_name="score",
    ).dropna(subset=["score"])
    answers["score"] = answers["score"].map(lambda s: words.get(s, s)).astype(int)
    wave_keys = {"2023年下半年": 202302, "2024年下半年": 202402, "2025年上半年": 202501}
    answers["wave_key"] = answers["调查批次"].map(wave_keys)
    expected = (
        answers.pivot_table(
            index=["wave_key", "社区", "小区", "item"],
            columns="score",
            values="调查批次",
            aggfunc="count",
            fill_value=0,
        )
        .reindex(columns=range(1, 6), fill_value=0)
        .reset_index()
    )
    stored = con.execute(
        """SELECT wave_key, community, compound, item, score_1, score_2, score_3, score_4,
                  score_5
        FROM agg_survey_items ORDER BY wave_key, community, compound, item"""
    ).fetchall()
    assert stored == [tuple(row) for row in expected.itertuples(index=False)]
    assert len(stored) == 8  # 2 items × 3 compounds of 2025, 1 item in 2024 and in 2023


def _stored(con: duckdb.DuckDBPyConnection, kind: str, level: str) -> pd.DataFrame:
    return con.execute(
        "SELECT * FROM agg_units WHERE period_kind = $kind AND level = $level",
        {"kind": kind, "level": level},
    ).df()


def test_the_first_and_last_days_are_the_tickets_own(main: Any, expected: pd.DataFrame) -> None:
    """The sidebar's and the period picker's bounds, read in the first and last stored months,
    are the generated tickets' first and last acceptance days (and the surveys' for
    data_period), as the scan of every ticket gives them."""
    con, _ = main
    assert aggregated.aggregates_ready(con)
    days = (expected["accepted_at"].min().date(), expected["accepted_at"].max().date())
    assert tickets.ticket_date_range(con) == days == _raw(tickets.ticket_date_range, con)
    surveyed = con.execute(
        "SELECT min(surveyed_on), max(surveyed_on), min(wave_year) FROM survey_responses"
    ).fetchone()
    assert surveyed is not None
    first = min(days[0], surveyed[0], date(surveyed[2], 1, 1))
    assert loads.data_period(con) == (first, max(days[1], surveyed[1]))
    assert loads.data_period(con) == _raw(loads.data_period, con)


def test_stored_figures_match_pandas(main: Any, expected: pd.DataFrame) -> None:
    """Counts and quantiles per compound and quarter, and per month for the district,
    computed here from the generated rows (quantile_cont interpolates as pandas does)."""
    con, _ = main
    stored = _stored(con, "quarter", "compound")
    stored = stored[stored["period_start"] == pd.Timestamp("2025-01-01")]
    rows = select(expected, date(2025, 1, 1), date(2025, 3, 31))
    groups = rows.groupby(["community", "compound"])
    assert len(stored) == groups.ngroups
    for (community, compound), group in groups:
        row = stored[(stored["community"] == community) & (stored["compound"] == compound)]
        assert len(row) == 1
        found = row.iloc[0]
        assert found["tickets"] == len(group)
        assert found["repeat_tickets"] == int(group["is_repeat"].sum())
        assert found["response_n"] == int(group["response_minutes"].notna().sum())
        for column, values in (
            ("response_median_minutes", group["response_minutes"].quantile(0.5)),
            ("response_p90_minutes", group["response_minutes"].quantile(0.9)),
            ("resolution_median_hours", group["resolution_hours"].quantile(0.5)),
            ("resolution_p90_hours", group["resolution_hours"].quantile(0.9)),
        ):
            assert found[column] == pytest.approx(values, rel=1e-9, nan_ok=True), column
        on_time = group["response_status"].isin(["on_time", "late"])
        assert found["response_on_time_n"] == int(on_time.sum())
        assert found["response_on_time"] == int((group["response_status"] == "on_time").sum())

    months = _stored(con, "month", "district").set_index("period_start")
    counts = expected.groupby(expected["accepted_at"].dt.to_period("M")).size()
    assert len(months) == len(counts)
    for month, count in counts.items():
        assert months.loc[pd.Timestamp(month.start_time), "tickets"] == count


# Shapes the stored open tickets serve besides SHAPES': codes, several units of a level.
BACKLOG_SHAPES: list[tuple[Scope, dict[str, list[str]]]] = [
    *SHAPES,
    (Scope.district(), {"category": ["电梯", "水电维修"]}),
    (Scope("street", "甲街道"), {"priority": ["紧急"], "community": ["西社区", "东社区"]}),
    (Scope.district(), {"channel": ["12345转办"], "property_company": ["乐家物业", "安居物业"]}),
]


@pytest.mark.parametrize(
    ("scope", "places"),
    BACKLOG_SHAPES,
    ids=_shape_ids(BACKLOG_SHAPES),
)
def test_the_backlog_from_the_stored_open_tickets_equals_the_raw_query(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    """Open at the period's end, by age, the longest open, by unit and by file: read from the
    month end's stored open tickets (any selection; a period ending after the as-of time's
    month reads its last month end) equal to the condition over every ticket."""
    con, _ = main
    later = Filters.for_range(date(2025, 6, 1), date(2026, 12, 31))
    found = 0
    for period in [*PERIODS, later]:
        filters = _filters(period, scope, places)
        assert backlog_rows(con, filters)[0].startswith("agg_open"), filters
        for query in (tickets.backlog_aging, tickets.longest_open):
            stored = query(con, filters, CONFIG)
            pd.testing.assert_frame_equal(stored, _raw(query, con, filters, CONFIG))
        for level in UNIT_LEVELS:
            stored = bulletin.backlog_by_unit(con, filters, CONFIG, level)
            raw = _raw(bulletin.backlog_by_unit, con, filters, CONFIG, level)
            pd.testing.assert_frame_equal(stored, raw)
        stored = loads.batches_used(con, filters, ("backlog",))
        pd.testing.assert_frame_equal(stored, _raw(loads.batches_used, con, filters, ("backlog",)))
        found += int(tickets.backlog_aging(con, filters, CONFIG)["tickets"].sum())
    if not scope.is_restricted and not places:
        assert found > 10  # the fixture leaves tickets open at these ends


REPEAT_SHAPES: list[tuple[Scope, dict[str, list[str]]]] = [
    *SHAPES,
    (Scope.district(), {"community": ["西社区", "东社区"]}),
    (Scope("street", "甲街道"), {"community": ["西社区", "东社区"]}),
    (Scope.district(), {"category": ["电梯"]}),
]


@pytest.mark.parametrize(
    ("scope", "places"),
    REPEAT_SHAPES,
    ids=_shape_ids(REPEAT_SHAPES),
)
def test_repeat_requests_from_the_stored_months_equal_the_raw_query(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    """By category and the compounds with most repeats: the stored months summed (any whole
    months; street and community selections) equal the raw query over the tickets."""
    con, _ = main
    months = Filters.for_range(date(2024, 11, 1), date(2025, 2, 28))
    served = not set(places) - {"street", "community"}
    for period in [*PERIODS, months]:
        filters = _filters(period, scope, places)
        assert (aggregated.repeat_months(con, filters) is not None) == served, filters
        stored = tickets.repeat_requests(con, filters, CONFIG, top=1000)
        raw = _raw(tickets.repeat_requests, con, filters, CONFIG, top=1000)
        pd.testing.assert_frame_equal(stored.by_category, raw.by_category)
        pd.testing.assert_frame_equal(stored.top_compounds, raw.top_compounds)
    year = tickets.repeat_requests(con, _filters(Filters.for_year(2025), scope, places), CONFIG)
    if not scope.is_restricted and not places:
        assert year.by_category["repeats"].sum() > 0  # the fixture has repeat requests


@pytest.mark.parametrize("by", list(tickets.DISTRIBUTION_COLUMNS))
def test_distributions_from_the_stored_quarters_and_years_equal_the_raw_query(
    main: Any, by: str
) -> None:
    """The response page's distribution of the district's quarter or year is stored (the same
    SQL, so the same exact quantiles); a month, a scope or a selection reads the tickets."""
    con, _ = main
    for period in PERIODS:
        for scope, places in [(Scope.district(), {}), *SHAPES[1:3], SHAPES[8]]:
            filters = _filters(period, scope, places)
            whole = aggregated._whole_period(filters) in ("quarter", "year")
            served = whole and not places and not scope.is_restricted
            assert (aggregated.distribution_rows(con, filters, by) is not None) == served
            stored = tickets.response_distribution(con, filters, CONFIG, by)
            raw = _raw(tickets.response_distribution, con, filters, CONFIG, by)
            pd.testing.assert_frame_equal(stored, raw)
    year = tickets.response_distribution(con, Filters.for_year(2025), CONFIG, by)
    assert len(year) > 1 and year["response_p50"].notna().all()


def test_a_period_ending_within_a_month_reads_the_tickets(main: Any) -> None:
    con, _ = main
    filters = Filters.for_range(date(2025, 1, 1), date(2025, 3, 15))
    assert backlog_rows(con, filters)[0].startswith("tickets")
    assert aggregated.repeat_months(con, filters) is None
    assert (
        aggregated.repeat_months(con, Filters.for_range(date(2025, 1, 2), date(2025, 3, 31)))
        is None
    )


def _agg_rows(db: Path) -> list[tuple[Any, ...]]:
    con = connect_readonly(db)
    try:
        return _agg_rows_of(con)
    finally:
        con.close()


def _agg_rows_of(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    """The stored period figures, repeat counts and distributions."""
    rows = []
    for table in ("agg_units", "agg_repeats", "agg_distributions"):
        rows += con.execute(f"SELECT * FROM {table} ORDER BY ALL").fetchall()
    return rows


def _codes(db: Path, table: str = "agg_ticket_codes") -> list[tuple[Any, ...]]:
    """The sidebar's code combinations per street and community: stored, or the tickets'."""
    return _combinations(db, table, "street, community, category, priority, channel")


def _places(db: Path, table: str = "agg_ticket_places") -> list[tuple[Any, ...]]:
    """The sidebar's place combinations: stored, or the tickets'."""
    return _combinations(db, table, "street, community, compound, property_company")


def _combinations(db: Path, table: str, columns: str) -> list[tuple[Any, ...]]:
    con = connect_readonly(db)
    try:
        return con.execute(f"SELECT DISTINCT {columns} FROM {table} ORDER BY ALL").fetchall()
    finally:
        con.close()


@contextmanager
def _unpublished(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A writer on the published warehouse inside a transaction that is rolled back: what is
    done in it is seen by its own queries and never published."""
    snapshot = current_snapshot(db)
    with lake_of(db).writer() as con:
        con.execute("BEGIN TRANSACTION")
        try:
            yield con
        finally:
            con.execute("ROLLBACK")
    assert current_snapshot(db) == snapshot


def _open_rows(db: Path) -> list[tuple[Any, ...]]:
    """agg_open's rows, by month end and ticket."""
    con = connect_readonly(db)
    try:
        return con.execute(
            f"SELECT end_at, {', '.join(OPEN_COLUMNS)} FROM agg_open ORDER BY end_at, ticket_id"
        ).fetchall()
    finally:
        con.close()


def _next_month(moment: datetime) -> datetime:
    return datetime(moment.year + moment.month // 12, moment.month % 12 + 1, 1)


def _open_by_definition(db: Path) -> list[tuple[Any, ...]]:
    """The tickets open at each month end, computed here from every ticket (DOMAIN's backlog:
    accepted before the end; closed at or after it, or not closed and open), for every month
    end from the first ticket's to the first after the as-of time."""
    con = connect_readonly(db)
    try:
        rows = con.execute(f"SELECT {', '.join(OPEN_COLUMNS)} FROM tickets").fetchall()
        as_of = con.execute("SELECT value FROM warehouse_info WHERE key = 'as_of'").fetchone()
    finally:
        con.close()
    if not rows or as_of is None or as_of[0] is None:
        return []
    accepted, closed, is_open = (
        OPEN_COLUMNS.index(c) for c in ("accepted_at", "closed_at", "is_open")
    )
    first = min(row[accepted] for row in rows)
    end, last = _next_month(first), _next_month(datetime.fromisoformat(as_of[0]))
    expected = []
    while end <= last:
        for row in rows:
            if row[accepted] < end and (
                (row[closed] is not None and row[closed] >= end)
                or (row[closed] is None and row[is_open])
            ):
                expected.append((end, *row))
        end = _next_month(end)
    return sorted(expected, key=lambda row: (row[0], row[1]))


def _full_build(db: Path) -> list[tuple[Any, ...]]:
    """The aggregates a full build gives over the published warehouse (not published)."""
    with _unpublished(db) as con:
        FULL_BUILD(con)
        return _agg_rows_of(con)


def test_loads_one_by_one_refresh_what_a_full_build_gives(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """test_incremental's files: new tickets of known callers in the repeat window, closing
    updates, a moved acceptance time, an as-of time that rises and falls back, a register
    that adds a compound the tickets already name."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    config = shipped_config()
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "step" / "warehouse.duckdb"
    refreshed: list[list[date]] = []
    full_builds: list[str] = []
    touched = aggregates.touched_months

    def recording(con: duckdb.DuckDBPyConnection, *given: list[int]) -> list[date]:
        months = touched(con, *given)
        refreshed.append(months)
        return months

    def counted(con: duckdb.DuckDBPyConnection, budgets: dict[str, int] | None = None) -> None:
        full_builds.append("load")
        FULL_BUILD(con, budgets)

    monkeypatch.setattr(aggregates, "touched_months", recording)
    monkeypatch.setattr(aggregates, "build_all", counted)
    codes: list[int] = []
    open_rows = []
    for path in files:
        assert load_paths([path], db, config, keep_raw=False).ok
        assert _agg_rows(db) == _full_build(db), path.name
        assert _open_rows(db) == _open_by_definition(db), path.name
        open_rows.append(len(_open_rows(db)))
        assert _codes(db) == _codes(db, "tickets"), path.name
        assert _places(db) == _places(db, "tickets"), path.name
        stored, scanned = _callback_files(db)
        assert stored == scanned, path.name
        codes.append(len(_codes(db)))
    assert codes[-1] > codes[1], codes  # later loads added code combinations
    assert len(set(open_rows[1:])) > 1, open_rows  # the loads changed the open tickets
    # only the first load (the register: an empty warehouse) built everything
    assert full_builds == ["load"]
    assert len(refreshed) == len(files) - 1 and all(refreshed), refreshed
    once = tmp_path / "once" / "warehouse.duckdb"
    assert load_paths(files, once, config, keep_raw=False).ok
    assert _agg_rows(db) == _agg_rows(once)
    assert len(_agg_rows(db)) > 50


FULL_BUILD = aggregates.build_all
OPEN_COLUMNS = aggregates.OPEN_COLUMNS


def test_the_sidebars_combinations_follow_corrected_tickets_and_a_filling_register(
    tmp_path: Path,
) -> None:
    """A correction that moves a ticket to another place and code drops the combinations no
    ticket has any more and keeps those another ticket still has; a register that fills a
    ticket's blank places drops the blank combination. After each load the stored
    combinations are the tickets' own, and the sidebar's lists are those read from them."""
    from tests.etl.test_incremental import ADDED, HEADER, REGISTER, REGISTER_HEADER

    def ticket(key: str, category: str, priority: str, community: str, compound: str) -> list:
        return [key, category, priority, community, compound, "2025-01-06 09:00",
                "2025-01-06 09:10", "2025-01-06 15:00", None]  # fmt: skip

    january = [
        HEADER,
        ticket("T1", "电梯", "紧急", "自报社区", "东一小区"),
        ticket("T2", "水电维修", "一般", "西社区", "西一小区"),
        ticket("T3", "水电维修", "一般", "西社区", "西一小区"),
        ticket("T4", "环境卫生", "一般", "", "北一小区"),  # not registered yet
    ]
    correction = [
        HEADER,
        ticket("T1", "环境卫生", "一般", "西社区", "西一小区"),  # its place and codes gone
        ticket("T2", "水电维修", "一般", "东社区", "东二小区"),  # T3 keeps its old ones
    ]
    folder = tmp_path / "in"
    files = [
        write_csv(folder / "台账.csv", [REGISTER_HEADER, *REGISTER], "utf-8-sig"),
        write_csv(folder / "1月.csv", january, "utf-8-sig"),
        write_csv(folder / "更正.csv", correction, "utf-8-sig"),
        write_csv(folder / "台账-新.csv", [REGISTER_HEADER, *REGISTER, ADDED], "utf-8-sig"),
    ]
    west = ("甲街道", "西社区", "西一小区", "乐家物业")
    east_two = ("甲街道", "东社区", "东二小区", None)
    expected_places = [
        {("甲街道", "自报社区", "东一小区", "安居物业"), west, (None, None, "北一小区", None)},
        {west, east_two, (None, None, "北一小区", None)},
        {west, east_two, ("乙街道", "北社区", "北一小区", "北辰物业")},
    ]
    expected_codes = [
        {("甲街道", "自报社区", "电梯", "紧急", None), ("甲街道", "西社区", "水电维修", "一般", None),
         (None, None, "环境卫生", "一般", None)},
        {("甲街道", "西社区", "环境卫生", "一般", None), ("甲街道", "西社区", "水电维修", "一般", None),
         ("甲街道", "东社区", "水电维修", "一般", None), (None, None, "环境卫生", "一般", None)},
        {("甲街道", "西社区", "环境卫生", "一般", None), ("甲街道", "西社区", "水电维修", "一般", None),
         ("甲街道", "东社区", "水电维修", "一般", None), ("乙街道", "北社区", "环境卫生", "一般", None)},
    ]  # fmt: skip
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths(files[:1], db, CONFIG, keep_raw=False).ok
    for path, places, codes in zip(files[1:], expected_places, expected_codes, strict=True):
        assert load_paths([path], db, CONFIG, keep_raw=False).ok
        assert set(_places(db)) == places == set(_places(db, "tickets")), path.name
        assert set(_codes(db)) == codes == set(_codes(db, "tickets")), path.name
        con = connect_readonly(db)
        try:
            assert aggregated.aggregates_ready(con)
            year = Filters.for_year(2025)
            narrowed = dataclasses.replace(year, street=("甲街道",), community=("东社区",))
            for filters in (None, year, year.within(Scope("street", "甲街道")), narrowed):
                options = tickets.filter_options(con, filters)
                assert options == _raw(tickets.filter_options, con, filters), path.name
            categories = tickets.filter_options(con, None)["category"]
            assert ("电梯" in categories) == (path.name == "1月.csv")
            communities = tickets.filter_options(con, None)["community"]
            assert ("自报社区" in communities) == (path.name == "1月.csv")
        finally:
            con.close()


# Each load below changes the figures of one month that no row of that load lies in; only the
# rule of touched_months named beside it can find that month.
SMALL_HEADER = ["工单编号", "问题类别", "紧急程度", "社区", "小区", "受理时间", "首次响应时间",
                "办结时间", "联系电话", "是否有效回访", "满意度"]  # fmt: skip
NO_CALLBACK_HEADER = [*SMALL_HEADER[:9], "满意度"]
PHONE = "13800138000"


def _small(ticket_id: str, accepted: str, closed: str | None, phone: str = "",
           callback: str = "", rating: str = "满意") -> list[str]:  # fmt: skip
    responded = accepted[:-5] + "23:00" if accepted.endswith("09:00") else accepted
    return [ticket_id, "电梯", "一般", "东社区", "东一小区", accepted, responded, closed or "",
            phone, callback, rating if closed else ""]  # fmt: skip


def test_each_rule_of_the_touched_months_is_needed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(KEY_ENV, "a-phone-hash-key-for-this-test")
    config = shipped_config()
    folder = tmp_path / "in"
    folder.mkdir()
    register = write_csv(
        folder / "台账.csv",
        [MAIN_REGISTER_HEADER, *[list(r) for r in MAIN_REGISTER]],
        "utf-8-sig",
    )
    first = write_csv(
        folder / "1.csv",
        [
            SMALL_HEADER,
            # November: closed with a rating, no callback value; its file has callbacks
            _small("Y1", "2024-11-05 09:00", "2024-11-05 12:00"),
            _small("X1", "2024-12-05 09:00", "2024-12-05 12:00", callback="是"),
            _small("J1", "2025-01-20 09:00", "2025-01-20 12:00", phone=PHONE),
            # open, due three days later: not yet due at this file's as-of time (Feb 10)
            _small("F1", "2025-02-09 09:00", None),
            _small("F2", "2025-02-10 09:00", "2025-02-10 10:00"),
        ],
        "utf-8-sig",
    )
    # April tickets move the as-of time past F1's limit: February's on-time counts change
    later = write_csv(
        folder / "2.csv",
        [SMALL_HEADER, _small("A1", "2025-04-02 09:00", "2025-04-02 12:00", callback="是")],
        "utf-8-sig",
    )
    # an earlier call of J1's caller: J1 (January) becomes a repeat
    earlier = write_csv(
        folder / "3.csv",
        [SMALL_HEADER, _small("D1", "2024-12-28 09:00", "2024-12-28 12:00", phone=PHONE)],
        "utf-8-sig",
    )
    # X1 again from a sheet without callback columns: file 1 no longer has a callback value,
    # so its tickets fall back to "closed with a rating" (November's Y1 joins the 三率 base)
    without = write_csv(
        folder / "4.csv",
        [NO_CALLBACK_HEADER, [*_small("X1", "2024-12-05 09:00", "2024-12-05 13:00")[:9], "满意"]],
        "utf-8-sig",
    )
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths([register, first], db, config, keep_raw=False).ok
    for path, month in [(later, "2025-02-01"), (earlier, "2025-01-01"), (without, "2024-11-01")]:
        before = _month_row(db, month)
        assert load_paths([path], db, config, keep_raw=False).ok
        assert _month_row(db, month) != before, path.name  # the month did change
        assert _agg_rows(db) == _full_build(db), path.name
        assert _open_rows(db) == _open_by_definition(db), path.name
        stored, scanned = _callback_files(db)
        assert stored == scanned, path.name
    assert len(stored) == 1  # 1.csv lost its only callback value (X1) to 4.csv: 2.csv remains


def _callback_files(db: Path) -> tuple[list[int], list[int]]:
    """The files with callback columns as the last load kept them, and by a scan of tickets."""
    con = connect_readonly(db)
    try:
        stored = con.execute("SELECT batch_id FROM agg_callback_batches ORDER BY 1").fetchall()
        scanned = con.execute(
            "SELECT DISTINCT batch_id FROM tickets WHERE is_valid_callback IS NOT NULL ORDER BY 1"
        ).fetchall()
    finally:
        con.close()
    return [r[0] for r in stored], [r[0] for r in scanned]


def _month_row(db: Path, month: str) -> tuple[Any, ...]:
    con = connect_readonly(db)
    try:
        row = con.execute(
            """SELECT * EXCLUDE (period_kind, period_start, level) FROM agg_units
            WHERE period_kind = 'month' AND level = 'district' AND period_start = $month""",
            {"month": date.fromisoformat(month)},
        ).fetchone()
    finally:
        con.close()
    assert row is not None
    return tuple(row)


def _survey_rows(db: Path) -> list[tuple[Any, ...]]:
    con = connect_readonly(db)
    try:
        return _survey_rows_of(con)
    finally:
        con.close()


def _survey_rows_of(con: duckdb.DuckDBPyConnection) -> list[tuple[Any, ...]]:
    return [
        *con.execute("SELECT * FROM agg_survey_respondents ORDER BY ALL").fetchall(),
        *con.execute("SELECT * FROM agg_survey_answers ORDER BY ALL").fetchall(),
        *con.execute("SELECT * FROM agg_survey_items ORDER BY ALL").fetchall(),
    ]


def test_survey_loads_refresh_the_waves_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A re-exported wave with one answer changed (same respondents), and a response moved to
    another wave (the wave it left has one respondent fewer): both waves are refreshed."""
    monkeypatch.setenv(KEY_ENV, "a-phone-hash-key-for-this-test")
    config = shipped_config()
    folder = tmp_path / "in"
    folder.mkdir()
    first = survey_rows()
    changed = [list(row) for row in first]
    east_two = next(i for i, r in enumerate(changed) if r[3] == "东二小区")
    changed[east_two][6] = 5  # 总体满意度 2 → 5 (rows of 2025年上半年)
    moved = next(i for i, r in enumerate(changed) if r[1] == "2024年下半年")
    changed[moved][1], changed[moved][4] = "2023年下半年", ""
    files = [
        write_csv(
            folder / "台账.csv",
            [MAIN_REGISTER_HEADER, *[list(r) for r in MAIN_REGISTER]],
            "utf-8-sig",
        ),
        write_xlsx(folder / "问卷1.xlsx", {"问卷": [SURVEY_HEADER, *first]}),
        write_xlsx(
            folder / "问卷2.xlsx", {"问卷": [SURVEY_HEADER, changed[east_two], changed[moved]]}
        ),
    ]
    db = tmp_path / "w" / "warehouse.duckdb"
    previous: list[tuple[Any, ...]] = []
    for index, path in enumerate(files):
        assert load_paths([path], db, config, keep_raw=False).ok
        found = _survey_rows(db)
        assert found != previous or index == 0, path.name
        previous = found
        with _unpublished(db) as con:
            FULL_BUILD(con)
            assert found == _survey_rows_of(con), path.name
    assert len(previous) > 10


def test_quarters_and_years_over_the_load_budget_wait_and_read_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load whose quarters and years are too big to recompute marks them stale: pages read
    them from the tickets (the same figures), months stay stored, and refresh_stale then
    stores what a full build does."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    config = shipped_config()
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths(files[:2], db, config, keep_raw=False).ok
    monkeypatch.setattr(aggregates, "LOAD_ROW_GROUPINGS", 0)
    assert load_paths([files[2]], db, config, keep_raw=False).ok
    con = connect_readonly(db)
    try:
        stale = con.execute("SELECT * FROM agg_stale_periods ORDER BY ALL").fetchall()
        assert ("quarter", date(2025, 1, 1)) in stale and ("year", date(2025, 1, 1)) in stale
        assert all(kind != "month" for kind, _ in stale)
        for filters in (Filters.for_quarter(2025, 1), Filters.for_year(2025)):
            assert aggregate_rows(con, filters) is None
            assert aggregated.distribution_rows(con, filters, "category") is None
            pd.testing.assert_frame_equal(
                tickets.response_distribution(con, filters, config, "category"),
                _raw(tickets.response_distribution, con, filters, config, "category"),
            )
            _same_kpis(
                tickets.ticket_kpis(con, filters, config),
                _raw(tickets.ticket_kpis, con, filters, config),
            )
        january = Filters.for_month(2025, 1)
        assert aggregate_rows(con, january) is not None
        _same_kpis(
            tickets.ticket_kpis(con, january, config),
            _raw(tickets.ticket_kpis, con, january, config),
        )
    finally:
        con.close()
    with _unpublished(db) as con:
        assert aggregates.refresh_stale(con) == len(stale)
        assert con.execute("SELECT count(*) FROM agg_stale_periods").fetchone() == (0,)
        refreshed = _agg_rows_of(con)
    assert refreshed == _full_build(db)


@pytest.mark.parametrize("rebuild", [False, True], ids=["first load", "rebuild"])
def test_a_first_load_leaves_its_quarters_and_years_over_the_budget_to_the_settle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rebuild: bool
) -> None:
    """A load into an empty warehouse (or a rebuild: every figure built anew) spends what any
    load may: its quarters and years over the budget are marked stale and read raw (the same
    figures), its months are stored; the settle then stores what a full build does."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    if rebuild:  # a warehouse with every figure stored, then loaded again from scratch
        assert load_paths(files, db, CONFIG, keep_raw=False).ok
        assert _stale_of(db) == []
    monkeypatch.setattr(aggregates, "LOAD_ROW_GROUPINGS", 0)
    assert load_paths(files, db, CONFIG, keep_raw=False, fresh=rebuild).ok
    periods = _rows_at(
        db,
        """SELECT DISTINCT kind, CAST(date_trunc(kind, accepted_at) AS DATE)
        FROM tickets, (VALUES ('quarter'), ('year')) AS k(kind) ORDER BY ALL""",
    )
    assert len(periods) > 2 and _stale_of(db) == periods
    months = _rows_at(
        db, "SELECT DISTINCT CAST(date_trunc('month', accepted_at) AS DATE) FROM tickets"
    )
    con = connect_readonly(db)
    try:
        for (start,) in months:
            assert aggregate_rows(con, Filters.for_month(start.year, start.month)) is not None
        year = periods[-1][1].year
        _waiting_read_raw(con, year)
    finally:
        con.close()
    done = settle(db, CONFIG, lambda message: None, local_copies=False)
    assert done.warnings == [] and f"{year}年" in done.periods
    assert _stale_of(db) == []
    assert _agg_rows(db) == _full_build(db)


def test_govdash_demo_stores_the_quarters_and_years_its_load_left_to_the_settle(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`govdash demo` loads its files as a first load (quarters and years over the budget wait
    for the settle, here every one) and settles, as `govdash load` does: nothing is left stale
    and the stored figures are a full build's."""
    monkeypatch.setattr(aggregates, "LOAD_ROW_GROUPINGS", 0)
    db = tmp_path / "w" / "warehouse.duckdb"
    out = tmp_path / "demo"
    assert cli.main(["demo", "--tickets", "600", "--out", str(out), "--db", str(db)]) == 0
    refreshed = _rows_at(
        db,
        f"SELECT count(*) FROM {ALIAS}.snapshots() WHERE commit_message = 'refresh'",
    )
    assert refreshed == [(1,)]
    assert _stale_of(db) == []
    assert _agg_rows(db) == _full_build(db)


def test_a_month_far_bigger_than_the_load_waits_for_the_settle_and_reads_raw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load much smaller than its months (here: budgets 0) publishes with them stale: the
    months' own figures and every monthly series over one of them read the tickets (the same
    frames), a series of other months still reads the stored rows, and the settle then stores
    what a full build does."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths(files[:2], db, CONFIG, keep_raw=False).ok
    monkeypatch.setattr(aggregates, "MONTH_ROW_GROUPINGS", 0)
    monkeypatch.setattr(aggregates, "MONTH_LOAD_FACTOR", 0)
    assert load_paths([files[2]], db, CONFIG, keep_raw=False).ok
    stale = _stale_of(db)
    months = [start for kind, start in stale if kind == "month"]
    assert months, stale
    con = connect_readonly(db)
    try:
        first = months[0]
        month = Filters.for_month(first.year, first.month)
        assert aggregate_rows(con, month) is None
        _same_kpis(
            tickets.ticket_kpis(con, month, CONFIG),
            _raw(tickets.ticket_kpis, con, month, CONFIG),
        )
        window = month.trend_window()
        assert aggregate_rows(con, window, per_month=True) is None
        for function in (tickets.monthly_trend, tickets.percentile_trend):
            pd.testing.assert_frame_equal(
                function(con, window, CONFIG), _raw(function, con, window, CONFIG)
            )
        # the sidebar's first and last days: looked for in the first and last months, stale
        # ones included, as a scan of every ticket finds them
        assert tickets.ticket_date_range(con) == _raw(tickets.ticket_date_range, con)
        assert loads.data_period(con) == _raw(loads.data_period, con)
        # repeat requests: a stale month's counts wait for the settle too
        assert aggregated.repeat_months(con, month) is None
        assert aggregated.repeat_months(con, window) is None
        every_group = dataclasses.replace(CONFIG, min_group_size=1)  # a few tickets here
        stored_repeats = tickets.repeat_requests(con, window, every_group, top=1000)
        raw_repeats = _raw(tickets.repeat_requests, con, window, every_group, top=1000)
        assert len(raw_repeats.by_category) > 0
        pd.testing.assert_frame_equal(stored_repeats.by_category, raw_repeats.by_category)
        pd.testing.assert_frame_equal(stored_repeats.top_compounds, raw_repeats.top_compounds)
        # the pickers' places: the stale months' tickets' too
        for filters in (None, Filters.for_year(first.year)):
            assert tickets.filter_options(con, filters) == _raw(
                tickets.filter_options, con, filters
            )
        # a series ending before the first stale month is still read from the stored rows
        before = Filters.for_range(date(first.year - 1, 1, 1), date(first.year - 1, 12, 31))
        assert aggregate_rows(con, before, per_month=True) is not None
    finally:
        con.close()
    done = settle(db, CONFIG, lambda message: None, local_copies=False)
    assert done.warnings == [] and f"{first.year}年{first.month}月" in done.periods
    assert _stale_of(db) == []
    assert _agg_rows(db) == _full_build(db)


def _stale_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, list[Path]]:
    """A warehouse whose last load left its quarters and years stale (budget 0)."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths(files[:2], db, CONFIG, keep_raw=False).ok
    monkeypatch.setattr(aggregates, "LOAD_ROW_GROUPINGS", 0)
    assert load_paths([files[2]], db, CONFIG, keep_raw=False).ok
    return db, files


def _rows_at(
    db: Path, sql: str, params: dict[str, Any] | None = None, snapshot: int | None = None
) -> list[tuple[Any, ...]]:
    """A query's rows on the published warehouse (or a past snapshot of it)."""
    con = connect_readonly(db, snapshot)
    try:
        return con.execute(sql, params or {}).fetchall()
    finally:
        con.close()


def _stale_of(db: Path, snapshot: int | None = None) -> list[tuple[Any, ...]]:
    return _rows_at(db, "SELECT * FROM agg_stale_periods ORDER BY ALL", snapshot=snapshot)


def test_a_period_left_stale_waits_for_the_settle_through_the_next_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load does not count or recompute a period a previous load left stale (the settle
    after it will): those periods stay stale and read raw (the same figures), the periods
    it stores are a full build's, and the settle then stores the rest."""
    budget = aggregates.LOAD_ROW_GROUPINGS
    db, files = _stale_load(tmp_path, monkeypatch)
    stale = _stale_of(db)
    monkeypatch.setattr(aggregates, "LOAD_ROW_GROUPINGS", budget)
    assert load_paths([files[4]], db, CONFIG, keep_raw=False).ok
    assert _stale_of(db) == stale
    full = _full_build(db)
    waiting = {(kind, start) for kind, start in stale}
    assert [row for row in full if (row[0], row[1]) not in waiting] == _agg_rows(db)
    con = connect_readonly(db)
    try:
        _waiting_read_raw(con, 2025)
    finally:
        con.close()
    with _unpublished(db) as con:
        assert aggregates.refresh_stale(con) == len(stale)
        assert _agg_rows_of(con) == full


def test_settle_publishes_the_stale_quarters_and_years_as_a_second_snapshot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a load that left 2025 and its first quarter stale, `settle` publishes one more
    snapshot (`refresh`) holding what a full build stores, with nothing stale; the load's own
    snapshot keeps its marks (time travel); a second settle has nothing to do."""
    db, _ = _stale_load(tmp_path, monkeypatch)
    loaded = current_snapshot(db)
    stale = _stale_of(db)
    assert ("quarter", date(2025, 1, 1)) in stale and ("year", date(2025, 1, 1)) in stale
    said: list[str] = []
    done = settle(db, CONFIG, said.append, "tester", local_copies=False)
    assert done.warnings == []
    assert loaded is not None and done.snapshot == loaded + 1 == current_snapshot(db)
    assert "2025年" in done.periods and "2025年第1季度" in done.periods
    assert any("补算" in line for line in said)
    assert _stale_of(db) == []
    assert _agg_rows(db) == _full_build(db)
    assert _stale_of(db, loaded) == stale
    made = lake_of(db).snapshot(done.snapshot)
    assert made is not None and made.message == "refresh"
    assert made.extra["actor"] == "tester" and "2025年" in made.extra["periods"]
    again = settle(db, CONFIG, said.append, "tester", local_copies=False)
    assert again.snapshot is None and current_snapshot(db) == done.snapshot


def _small_files(db: Path, table: str) -> int:
    sql = "SELECT count(*) FROM ducklake_list_files('lake', $table) WHERE data_file_size_bytes < $s"
    [(found,)] = _rows_at(db, sql, {"table": table, "s": settle_module.SMALL_FILE_BYTES})
    return int(found)


def _tickets_at(db: Path, snapshot: int | None = None) -> list[tuple[Any, ...]]:
    return _rows_at(db, "SELECT * FROM tickets ORDER BY ticket_id", snapshot=snapshot)


def test_settle_merges_small_files_and_every_snapshot_reads_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Once a table has gathered COMPACT_AT_FILES small files (a file of its own per load),
    the settle merges them as one snapshot (`compact`): the tickets and figures read as before,
    so does every earlier snapshot (time travel), and a second settle has nothing to merge."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    monkeypatch.setattr(settle_module, "COMPACT_AT_FILES", 3)
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    snapshots = []
    for path in files:
        assert load_paths([path], db, CONFIG, keep_raw=False).ok
        snapshots.append(current_snapshot(db))
    before = {n: _tickets_at(db, n) for n in snapshots}
    figures, small = _agg_rows(db), _small_files(db, "tickets")
    assert small >= 3 and len(before[snapshots[-1]]) > 200
    said: list[str] = []
    done = settle(db, CONFIG, said.append, "tester", local_copies=False)
    assert done.warnings == [] and "tickets" in done.compacted
    made = lake_of(db).snapshot(current_snapshot(db) or 0)
    assert made is not None and made.message == "compact" and made.snapshot_id > snapshots[-1]
    assert any("合并小文件" in line for line in said)
    assert any(f"快照 #{made.snapshot_id}" in line for line in done.lines)
    assert _small_files(db, "tickets") < small
    assert _tickets_at(db) == before[snapshots[-1]] and _agg_rows(db) == figures
    assert {n: _tickets_at(db, n) for n in snapshots} == before
    again = settle(db, CONFIG, said.append, "tester", local_copies=False)
    assert again.compacted == [] and current_snapshot(db) == made.snapshot_id


def test_a_settle_that_fails_leaves_the_load_and_its_stale_marks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A refresh that fails inside its transaction publishes nothing: the load's snapshot stays
    current with its stale marks (read raw, correct), and the clerk is told why."""
    db, _ = _stale_load(tmp_path, monkeypatch)
    loaded, stale, rows = current_snapshot(db), _stale_of(db), _agg_rows(db)

    def broken(con: duckdb.DuckDBPyConnection) -> int:
        con.execute("DELETE FROM agg_stale_periods")  # half done, then the disk fills
        raise duckdb.IOException("No space left on device")

    monkeypatch.setattr(aggregates, "refresh_stale", broken)
    done = settle(db, CONFIG, lambda message: None, local_copies=False)
    assert done.snapshot is None and len(done.warnings) == 1
    assert "No space left on device" in done.warnings[0] and "下次加载时再补算" in done.warnings[0]
    assert current_snapshot(db) == loaded
    assert _stale_of(db) == stale and _agg_rows(db) == rows


def test_govdash_load_settles_after_publishing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`govdash load` refreshes what its load left stale, as its own snapshot, and says so."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths(files[:2], db, CONFIG, keep_raw=False).ok
    before = current_snapshot(db)
    monkeypatch.setattr(aggregates, "LOAD_ROW_GROUPINGS", 0)
    assert cli.main(["load", str(files[2]), "--db", str(db), "--no-local-copies"]) == 0
    out = capsys.readouterr().out
    assert before is not None and current_snapshot(db) == before + 2
    assert f"发布为快照 #{before + 2}" in out and "2025年第1季度" in out
    assert _stale_of(db) == [] and _stale_of(db, before + 1) != []
    assert _agg_rows(db) == _full_build(db)


def test_migrate_on_a_lake_builds_an_older_releases_figures_anew(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After an upgrade, the stored figures of the older release's definition (another
    version, without a table this release keeps) are read raw; `govdash migrate` builds them
    anew as one snapshot, and a second run has nothing to do."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    with monkeypatch.context() as older:
        older.setattr(aggregates, "AGGREGATES_VERSION", "older")
        assert load_paths(files, db, CONFIG, keep_raw=False).ok
    with lake_of(db).writer() as con:
        con.execute("DROP TABLE agg_ticket_codes")
    con = connect_readonly(db)
    try:
        assert not aggregated.aggregates_ready(con)
    finally:
        con.close()
    before = current_snapshot(db)
    assert cli.main(["migrate", "--db", str(db), "--no-local-copies"]) == 0
    out = capsys.readouterr().out
    assert before is not None and current_snapshot(db) == before + 1
    assert f"已补算全部时段的汇总，发布为快照 #{before + 1}" in out
    con = connect_readonly(db)
    try:
        assert aggregated.aggregates_ready(con)
    finally:
        con.close()
    assert _agg_rows(db) == _full_build(db) and len(_agg_rows(db)) > 50
    assert _codes(db) == _codes(db, "tickets") != []
    assert cli.main(["migrate", "--db", str(db), "--no-local-copies"]) == 0
    assert current_snapshot(db) == before + 1


@pytest.mark.parametrize("version", ["4", "5", "6"])
@pytest.mark.parametrize("by", ["load", "settle"])
def test_an_earlier_versions_figures_gain_only_the_tables_it_lacks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, version: str, by: str
) -> None:
    """A warehouse whose figures an earlier version made (without the tables it lacks) is
    read raw until the next load or settle builds those tables from all tickets, keeping the
    rest (a city's every period is not computed again): then it equals a full build."""
    monkeypatch.setenv(KEY_ENV, "the-same-phone-hash-key-for-both")
    files, _ = incremental_files(tmp_path / "in")
    db = tmp_path / "w" / "warehouse.duckdb"
    assert load_paths(files[:3], db, CONFIG, keep_raw=False).ok
    lacking = {
        "4": ["agg_open", "agg_repeats", "agg_distributions", "agg_ticket_places"],
        "5": ["agg_repeats", "agg_distributions", "agg_ticket_places"],
        "6": ["agg_ticket_places"],
    }[version]
    with lake_of(db).writer() as con:
        for table in lacking:
            con.execute(f"DELETE FROM {table}")
        con.execute(
            "UPDATE warehouse_info SET value = $v WHERE key = $key",
            {"v": version, "key": aggregates.VERSION_KEY},
        )
    con = connect_readonly(db)
    try:
        assert not aggregated.aggregates_ready(con)
    finally:
        con.close()

    def no_full_build(con: duckdb.DuckDBPyConnection) -> None:
        raise AssertionError("an earlier version's figures were built anew")

    monkeypatch.setattr(aggregates, "build_all", no_full_build)
    if by == "load":
        assert load_paths([files[3]], db, CONFIG, keep_raw=False).ok
    else:
        assert settle(db, CONFIG, lambda message: None, local_copies=False).snapshot
    monkeypatch.setattr(aggregates, "build_all", FULL_BUILD)
    con = connect_readonly(db)
    try:
        assert aggregated.aggregates_ready(con)
    finally:
        con.close()
    assert _agg_rows(db) == _full_build(db)
    assert _open_rows(db) == _open_by_definition(db) != []
    assert _places(db) == _places(db, "tickets") != []


@pytest.mark.parametrize(("scope", "places"), SHAPES, ids=SHAPE_IDS)
def test_filter_options_from_the_stored_places_equal_the_tickets(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    """The pickers' lists (places narrowed by the chosen streets and communities, in the
    scope) read from the stored month rows equal those read from the tickets."""
    con, _ = main
    filters = _filters(Filters.for_year(2025), scope, places)
    stored = tickets.filter_options(con, filters)
    assert stored == _raw(tickets.filter_options, con, filters)
    assert stored["category"] and (stored["street"] or scope.is_restricted)


def test_filter_options_list_the_places_of_the_register_and_the_tickets(main: Any) -> None:
    """Unfiltered, each list is every value the register or any ticket holds, sorted."""
    con, _ = main
    options = tickets.filter_options(con, None)
    for column in ("street", "community", "compound", "property_company"):
        values = {
            row[0]
            for table in ("compounds", "tickets")
            for row in con.execute(f"SELECT DISTINCT {column} FROM {table}").fetchall()
            if row[0] is not None
        }
        assert options[column] == sorted(values), column


@pytest.mark.parametrize(("scope", "places"), SHAPES, ids=SHAPE_IDS)
def test_effect_panels_from_the_stored_rows_equal_the_raw_queries(
    main: Any, scope: Scope, places: dict[str, list[str]]
) -> None:
    """治理成效's compound figures (the period's, and every month's for the before/after
    panel) and its survey counts per compound × wave, stored against raw."""
    con, _ = main
    everything = dataclasses.replace(
        _filters(Filters.for_year(2025), scope, places),
        start=date(1900, 1, 1),
        end=date(2999, 12, 31),
        period_kind="range",
    )
    for filters, by_month in ((_filters(Filters.for_year(2025), scope, places), False),
                              (everything, True)):  # fmt: skip
        if not places:  # a scope's own panel is read from the stored rows
            assert aggregate_rows(con, filters, ("community", "compound"), by_month) is not None
        stored = effect.compound_ticket_figures(con, filters, CONFIG, by_month)
        raw = _raw(effect.compound_ticket_figures, con, filters, CONFIG, by_month)
        pd.testing.assert_frame_equal(stored, raw, check_exact=True)
        assert len(stored) > 0 or places or scope.is_restricted
    for keys in (None, surveys.wave_keys_in_period(con, Filters.for_year(2025))):
        stored = effect.compound_survey_figures(con, everything, CONFIG, keys)
        raw = _raw(effect.compound_survey_figures, con, everything, CONFIG, keys)
        pd.testing.assert_frame_equal(stored, raw, check_exact=True)


def test_effect_figures_read_the_tickets_where_two_stored_rows_meet(main: Any) -> None:
    """Tickets without a community are matched to a register compound by name beside the
    compound's own tickets: two stored rows for one compound, whose quantiles cannot be
    combined, so the figures come from the tickets (and still equal the raw query)."""
    con, _ = main
    filters = Filters.for_year(2025)
    stored = effect._stored_compound_figures(con, filters, by_month=False)
    nameless = con.execute(
        """SELECT count(*) FROM tickets AS t JOIN compounds AS reg ON reg.compound = t.compound
        WHERE t.community IS NULL AND year(t.accepted_at) = 2025"""
    ).fetchone()
    if nameless and nameless[0]:
        assert stored is None
    else:
        assert stored is not None
    pd.testing.assert_frame_equal(
        effect.compound_ticket_figures(con, filters, CONFIG, False),
        _raw(effect.compound_ticket_figures, con, filters, CONFIG, False),
        check_exact=True,
    )


def test_the_monthly_panel_reads_a_compounds_nameless_tickets_row_where_it_is_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tickets without a community whose compound's name two communities share (so the loader
    cannot fill it in) count for each register compound of that name. In a month where they are
    a compound's only tickets, their stored row is the compound's month, and 治理成效's monthly
    panel reads it; once the compound has tickets of its own in such a month, two stored rows
    meet it (quantiles do not combine) and the panel is read from the tickets. Either way the
    panel equals the raw figures."""
    monkeypatch.setenv(KEY_ENV, "a-phone-hash-key-for-this-test")
    folder = tmp_path / "in"
    shared_name = ("甲街道", "西社区", "东一小区", 150, "乐家物业")
    register = write_csv(
        folder / "台账.csv",
        [MAIN_REGISTER_HEADER, *[list(r) for r in [*MAIN_REGISTER, shared_name]]],
        "utf-8-sig",
    )

    def nameless(ticket: str, accepted: str, closed: str) -> list[str]:
        row = _small(ticket, accepted, closed)
        row[3] = ""
        return row

    def west(ticket: str, accepted: str, closed: str) -> list[str]:
        row = _small(ticket, accepted, closed)
        row[3:5] = ["西社区", "西一小区"]
        return row

    first = write_csv(
        folder / "1.csv",
        [
            SMALL_HEADER,
            _small("N1", "2025-01-05 09:00", "2025-01-05 12:00"),
            _small("N2", "2025-01-06 09:00", "2025-01-06 15:00"),
            nameless("N3", "2025-02-05 09:00", "2025-02-05 11:00"),  # 东一小区's only one
            nameless("N4", "2025-02-07 09:00", "2025-02-08 09:00"),
            west("N5", "2025-02-05 09:00", "2025-02-05 10:00"),
        ],
        "utf-8-sig",
    )
    # a nameless ticket in January, beside 东一小区's own: two rows meet it
    second = write_csv(
        folder / "2.csv",
        [SMALL_HEADER, nameless("N6", "2025-01-09 09:00", "2025-01-09 10:00")],
        "utf-8-sig",
    )
    db = tmp_path / "w" / "warehouse.duckdb"
    everything = Filters.for_range(date(1900, 1, 1), date(2999, 12, 31))
    figures = list(effect.PANEL_FIGURES)
    for files, alone in (([register, first], True), ([second], False)):
        assert load_paths(files, db, CONFIG, keep_raw=False).ok
        con = connect_readonly(db)
        try:
            panel = effect._stored_monthly_panel(con, everything, CONFIG, effect.PANEL_FIGURES)
            raw = _raw(effect.compound_ticket_figures, con, everything, CONFIG, True)
            units = effect.compound_register(con, everything, "agreement")["unit"].to_numpy()
        finally:
            con.close()
        months = pd.to_datetime(raw["month"])
        raw = raw.assign(period=months.dt.year * 12 + months.dt.month - 1)
        assert set(raw["unit"]) == {"东社区/东一小区", "西社区/东一小区", "西社区/西一小区"}
        nameless_rows = _rows_at(db, "SELECT count(*) FROM tickets WHERE community IS NULL")
        assert nameless_rows == [(2 if alone else 3,)]
        assert (panel is not None) == alone, files
        if panel is None:
            continue
        named = panel.assign(unit=units[panel["position"].to_numpy()])
        pd.testing.assert_frame_equal(
            named[["unit", "period", *figures]].reset_index(drop=True),
            raw[["unit", "period", *figures]].reset_index(drop=True),
            check_dtype=False,
        )
